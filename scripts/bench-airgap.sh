#!/usr/bin/env bash
# Bundle create and apply of N secrets (default 10,000) with the release binary: one store
# filled by `import`, a bundle of all of it encrypted to a second store, applied there.
# Each figure is the whole command (process start, unlock with an insecure KDF, the work,
# the commit). Usage: cargo build --release && bash scripts/bench-airgap.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
bin="${TRESOR_BIN:-target/release/tresor}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export TRESOR_SOCKET="$dir/none.sock" # never a running daemon: the file, in this process
printf 'bench passphrase\n' >"$dir/pass"
chmod 600 "$dir/pass"
t() { "$bin" --store "$dir/$1" --passphrase-file "$dir/pass" "${@:2}" 2>/dev/null; }
python3 - "$n" >"$dir/secrets.env" <<'PY'
import os, sys
for i in range(int(sys.argv[1])):
    print(f"SECRET_{i:06d}={os.urandom(75).hex()}")  # 150-byte values, as SPEC §10
PY
t a.tresor init --insecure-kdf
t b.tresor init --insecure-kdf
t a.tresor import --format dotenv "$dir/secrets.env" >/dev/null
recipient="$(t b.tresor inbox key)"
now() { date +%s.%N; }
s0=$(now); t a.tresor bundle create --to "$recipient" --all -o "$dir/bundle.age"; s1=$(now)
t b.tresor bundle apply "$dir/bundle.age" >/dev/null; s2=$(now)
size=$(stat -c %s "$dir/bundle.age")
python3 - "$n" "$s0" "$s1" "$s2" "$size" <<'PY'
import sys
n, s0, s1, s2, size = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
print(f"bundle create: {n} secrets in {s1-s0:.3f} s = {n/(s1-s0):,.0f} secrets/s ({size/1e6:.2f} MB)")
print(f"bundle apply:  {n} secrets in {s2-s1:.3f} s = {n/(s2-s1):,.0f} secrets/s")
PY

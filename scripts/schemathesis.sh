#!/usr/bin/env bash
# Schemathesis over the daemon's OpenAPI document: starts tresord on a temp store (insecure
# KDF, unlocked, a few secrets), a loopback bridge (127.0.0.1 → the Unix socket; the daemon
# sees this user, the store's owner, as the peer), runs `schemathesis run openapi.json` with
# the checks below, stops everything and exits non-zero on any failure. Installs schemathesis
# into a venv under target/ (pinned below); run it from anywhere.
#
# The checks are the acceptance point of issue 7: no 5xx, no answer that contradicts the
# document (status code, content type, body schema, headers), and every schema-valid request
# accepted. `negative_data_rejection` (and the other checks of `--checks all`) are not run:
# the daemon does not yet refuse every schema-violating request with 400 (e.g. a PUT of a
# secret without a body is taken as an empty set). Run them with ST_CHECKS=all.
# `bundleCreate` and `bundleApply` are left out: their inputs are cryptographic objects no
# schema can describe (age recipients with a checksum, signed age files), so a schema-valid
# random one is refused with 400, as it must be; the fuzz target `bundle` and tests/bundle.rs
# cover them. `not_a_server_error` accepts 503 `unavailable`: the providers schemathesis creates point at
# made-up addresses, and an unreachable upstream is 503 by design (SPEC); 500 and every other
# 5xx still fail the run.
#
#   bash scripts/schemathesis.sh                    # short run (CI): 20 examples per operation
#   ST_EXAMPLES=200 ST_MAX_TIME=600 bash scripts/schemathesis.sh   # longer run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${ST_EXAMPLES:-20}"
CHECKS="${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,positive_data_acceptance}"
MAX_TIME="${ST_MAX_TIME:-300}"
PORT="${ST_PORT:-$((20000 + RANDOM % 20000))}"
PYTHON="${PYTHON:-python3}"
VENV=target/pyenv-st

if [ ! -x "$VENV/bin/schemathesis" ]; then
    mkdir -p target
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# `cargo test` (scripts/test.sh) has built the binaries with the same features already.
if [ ! -x target/debug/tresord ] || [ ! -x target/debug/tresor ]; then
    cargo build --locked --bin tresord --bin tresor
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

printf 'schemathesis passphrase\n' >"$WORK/pass"
chmod 600 "$WORK/pass"
STORE="$WORK/store.tresor"
SOCK="$WORK/run/tresord.sock"
export TRESOR_SOCKET="$SOCK"
tresor() { "$ROOT/target/debug/tresor" --store "$STORE" --passphrase-file "$WORK/pass" "$@"; }
tresor init --insecure-kdf >/dev/null 2>&1
printf 'v1' | tresor set k >/dev/null 2>&1
printf 'v2' | tresor set k >/dev/null 2>&1
printf '{"password":"pw"}' >"$WORK/fields.json"
printf 'dsn' | tresor set db --fields-from "$WORK/fields.json" >/dev/null 2>&1

"$ROOT/target/debug/tresord" --store "$STORE" --socket "$SOCK" --passphrase-file "$WORK/pass" \
    2>"$WORK/tresord.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "error: tresord did not start" >&2; cat "$WORK/tresord.log" >&2; exit 1; }

"$VENV/bin/python" scripts/unix_bridge.py "$SOCK" "$PORT" &
PIDS+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

cat >"$WORK/schemathesis.toml" <<'TOML'
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

TOML

status=0
# Run from the temp dir: schemathesis leaves a .schemathesis/ directory where it runs.
(cd "$WORK" && "$ROOT/$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$ROOT/openapi.json" \
    --url "http://127.0.0.1:$PORT" \
    --checks "$CHECKS" \
    --max-examples "$EXAMPLES" \
    --max-time "$MAX_TIME" \
    --seed "${ST_SEED:-1}" \
    --generation-database none \
    --workers 1 \
    --no-color \
    --exclude-operation-id lock \
    --exclude-operation-id bundleCreate \
    --exclude-operation-id bundleApply \
    --report junit --report-dir "$ROOT/target/schemathesis" \
    "$@") || status=$?
if grep -q "panicked" "$WORK/tresord.log"; then
    echo "error: tresord panicked:" >&2
    grep -A3 panicked "$WORK/tresord.log" >&2
    status=1
fi
exit "$status"

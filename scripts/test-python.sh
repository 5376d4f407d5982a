#!/usr/bin/env bash
# Python client tests against a real tresord: a venv under target/pyenv (reused when present),
# the package installed from clients/python, then pytest. The binaries come from
# $TRESOR_BIN_DIR (default: target/debug; run `cargo build` first).
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
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pytest ./clients/python
# Build artefacts of the install must not land in the source tree.
rm -rf clients/python/build clients/python/*.egg-info
exec "$VENV/bin/python" -m pytest -q clients/python/tests "$@"

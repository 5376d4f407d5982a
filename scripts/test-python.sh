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
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check pytest ./clients/python
# Build artefacts of the install must not land in the source tree.
rm -rf clients/python/build clients/python/*.egg-info
exec "$VENV/bin/python" -m pytest -q clients/python/tests "$@"

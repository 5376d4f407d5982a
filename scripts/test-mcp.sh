#!/bin/sh
# The MCP tests: `tresor mcp` driven by the official Python MCP SDK against a real tresord.
# Needs the binaries (`cargo build`, or TRESOR_BIN_DIR); the venv is kept in target/.
set -eu
cd "$(dirname "$0")/.."
venv=target/pyenv-mcp
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q pytest mcp
exec "$venv/bin/pytest" -q tests/mcp "$@"

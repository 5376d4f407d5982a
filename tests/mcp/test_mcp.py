"""`tresor mcp` driven by the official Python MCP SDK, against a real tresord.

Every byte exchanged with the server (its stdin, its stdout, and its stderr) is recorded by a
small tee wrapper, and each test asserts that no secret value appears in any of them: not in
tool lists, results, errors or logs, also when the command prints a value in pieces or asks
for a secret that is missing.

Binaries come from $TRESOR_BIN_DIR (default: <repo>/target/debug); build them with
`cargo build` first.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket as socketlib
import subprocess
import tempfile
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TRESOR_BIN_DIR", REPO / "target" / "debug"))
TRESOR = BIN / "tresor"
TRESORD = BIN / "tresord"

# Records what passes through: stdin to IN, stdout to OUT (stderr goes to the SDK's errlog).
TEE = """#!/bin/sh
in="$1"; out="$2"; shift 2
tee -a "$in" | "$@" | tee -a "$out"
"""


def _require_binaries() -> None:
    for b in (TRESOR, TRESORD, BIN / "tresor-mcp"):
        if not b.is_file():
            pytest.fail(f"{b} is missing: run `cargo build` first (or set TRESOR_BIN_DIR)")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRESOR_")}
    env.pop("RUST_LOG", None)
    env.update(extra)
    return env


class World:
    """A store with secrets, a daemon on a temp socket, and the values to look out for."""

    def __init__(self, root: Path, daemon: bool) -> None:
        self.root = root
        self.store = root / "store.tresor"
        self.passfile = root / "pass"
        self.passfile.write_text("correct horse battery staple\n")
        self.passfile.chmod(0o600)
        self.socket = root / "run" / "tresord.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        # Alphanumeric values: JSON never escapes them, so a leak shows as the bytes themselves.
        self.values = {
            "api-token": "tok" + secrets.token_hex(16),
            "db-password": "pw" + secrets.token_hex(12),
            "short": "q7z",
        }
        self.tresor("init", "--insecure-kdf")
        self.set("api-token", "--type", "token", "--integration", "github")
        self.set("db-password", "--type", "credentials")
        self.set("short")
        if daemon:
            self.start_daemon()

    def tresor(self, *args: str, stdin: str = "", direct: bool = True) -> str:
        cmd = [str(TRESOR), "--store", str(self.store)]
        if direct:
            cmd += ["--passphrase-file", str(self.passfile)]
        env = _clean_env(TRESOR_SOCKET=str(self.socket if not direct else self.root / "none"))
        r = subprocess.run(cmd + list(args), input=stdin.encode(), capture_output=True, env=env)
        assert r.returncode == 0, f"tresor {' '.join(args)}: {r.stderr.decode()}"
        return r.stdout.decode()

    def set(self, name: str, *extra: str) -> None:
        self.tresor("set", name, *extra, stdin=self.values[name])

    def start_daemon(self) -> None:
        self.socket.parent.mkdir(mode=0o700, exist_ok=True)
        cmd = [
            str(TRESORD),
            "--store", str(self.store),
            "--socket", str(self.socket),
            "--passphrase-file", str(self.passfile),
        ]
        self.log = open(self.root / "tresord.log", "wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=_clean_env()
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socketlib.socket(socketlib.AF_UNIX) as s:
                    s.connect(str(self.socket))
                break
            except OSError:
                assert self.proc.poll() is None, "tresord exited at start"
                assert time.monotonic() < deadline, "tresord did not start"
                time.sleep(0.05)

    def via_daemon(self, *args: str) -> str:
        return self.tresor(*args, direct=False)

    def audit(self) -> list[dict]:
        out = self.via_daemon("audit", "--json") if self.proc else self.tresor("audit", "--json")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.log.close()


@pytest.fixture(scope="module")
def world():
    _require_binaries()
    root = Path(tempfile.mkdtemp(prefix="tresor-mcp-"))
    w = World(root, daemon=True)
    try:
        yield w
    finally:
        w.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def direct_world():
    _require_binaries()
    root = Path(tempfile.mkdtemp(prefix="tresor-mcp-direct-"))
    try:
        yield World(root, daemon=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Recorded:
    """One `tresor mcp` session whose bytes are all kept."""

    def __init__(self, world: World, tag: str) -> None:
        self.world = world
        self.dir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=world.root))
        self.stdin = self.dir / "stdin"
        self.stdout = self.dir / "stdout"
        self.stderr = self.dir / "stderr"
        self.tee = self.dir / "tee.sh"
        self.tee.write_text(TEE)
        self.tee.chmod(0o700)

    def bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in (self.stdin, self.stdout, self.stderr) if p.exists())

    def assert_no_value(self) -> None:
        seen = self.bytes()
        # The recorder saw the conversation both ways.
        assert b'"initialize"' in self.stdin.read_bytes(), "the client's bytes were not recorded"
        assert b'"jsonrpc"' in self.stdout.read_bytes(), "the server's bytes were not recorded"
        for name, value in self.world.values.items():
            assert value.encode() not in seen, f"the value of {name} was exchanged"


@contextlib.asynccontextmanager
async def mcp_session(world: World, tag: str, direct: bool = False, token: str | None = None):
    rec = Recorded(world, tag)
    args = [str(rec.stdin), str(rec.stdout), str(TRESOR), "--store", str(world.store)]
    env = {"TRESOR_STORE": str(world.store)}
    if direct:
        args += ["--passphrase-file", str(world.passfile)]
        env["TRESOR_SOCKET"] = str(world.root / "no-daemon.sock")
    else:
        env["TRESOR_SOCKET"] = str(world.socket)
    if token:
        env["TRESOR_TOKEN"] = token
    args.append("mcp")
    params = StdioServerParameters(command=str(rec.tee), args=args, env=env)
    with open(rec.stderr, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    rec.assert_no_value()


def result(r) -> dict:
    """The structured result of a tool call (rmcp also sends it as JSON text)."""
    if r.structured_content is not None:
        return r.structured_content
    return json.loads(r.content[0].text)


def run(coro):
    return anyio.run(lambda: coro)


SPLIT = 'printf %s "${API_TOKEN%????}"; sleep 0.3; printf %s "${API_TOKEN#${API_TOKEN%????}}"'


def test_tools_are_listed(world):
    async def go():
        async with mcp_session(world, "list-tools") as s:
            tools = (await s.list_tools()).tools
            names = {t.name for t in tools}
            assert names == {"list_secrets", "check_secrets", "run_with_secrets"}
            run_tool = next(t for t in tools if t.name == "run_with_secrets")
            assert "command" in run_tool.input_schema["properties"]
            assert run_tool.input_schema.get("required") == ["command"]

    anyio.run(go)


def test_list_secrets_gives_metadata_with_filters(world):
    async def go():
        async with mcp_session(world, "list") as s:
            everything = result(await s.call_tool("list_secrets", {}))
            names = sorted(m["name"] for m in everything["secrets"])
            assert names == ["api-token", "db-password", "short"]
            tokens = result(await s.call_tool("list_secrets", {"type": "token"}))
            assert [m["name"] for m in tokens["secrets"]] == ["api-token"]
            github = result(await s.call_tool("list_secrets", {"integration": "github"}))
            assert [m["name"] for m in github["secrets"]] == ["api-token"]
            q = result(await s.call_tool("list_secrets", {"q": "pass", "scope": "org"}))
            assert [m["name"] for m in q["secrets"]] == ["db-password"]
            bad = await s.call_tool("list_secrets", {"type": "no-such-type"})
            assert bad.is_error
            assert result(bad)["error"]["code"] == "invalid_argument"

    anyio.run(go)


def test_check_secrets_reports_present_and_missing(world):
    async def go():
        async with mcp_session(world, "check") as s:
            r = result(await s.call_tool("check_secrets", {"required": ["api-token", "nope"]}))
            assert r == {"ok": False, "present": ["api-token"], "missing": ["nope"]}
            r = result(await s.call_tool("check_secrets", {"required": ["db-password"]}))
            assert r["ok"] is True

    anyio.run(go)


def test_run_masks_values_whole_and_in_pieces(world):
    script = f'echo "token=$API_TOKEN"; {SPLIT}; echo; echo "pw=$DB" >&2'
    async def go():
        async with mcp_session(world, "run") as s:
            r = await s.call_tool(
                "run_with_secrets",
                {"command": ["sh", "-c", script], "secrets": ["api-token", "db-password=DB"]},
            )
            assert not r.is_error
            out = result(r)
            assert out["exit_code"] == 0 and out["signal"] is None and not out["timed_out"]
            assert out["stdout"] == "token=***\n***\n"
            assert out["stderr"] == "pw=***\n"

    anyio.run(go)


def test_run_reports_exit_codes_timeouts_and_caps(world):
    async def go():
        async with mcp_session(world, "run-limits") as s:
            r = result(await s.call_tool("run_with_secrets", {"command": ["sh", "-c", "exit 7"]}))
            assert r["exit_code"] == 7
            r = result(await s.call_tool(
                "run_with_secrets",
                {"command": ["sleep", "30"], "timeout_secs": 1, "secrets": ["api-token"]},
            ))
            assert r["timed_out"] and r["exit_code"] is None and r["signal"] == 15
            big = f'i=0; while [ $i -lt 500 ]; do echo "$API_TOKEN"; i=$((i+1)); done'
            r = result(await s.call_tool(
                "run_with_secrets",
                {"command": ["sh", "-c", big], "secrets": ["api-token"], "max_output_bytes": 100},
            ))
            assert r["stdout"].startswith("***\n***\n")
            assert r["stdout_truncated_bytes"] == 500 * 4 - 100
            assert "[output truncated: 1900 more bytes]" in r["stdout"]
            r = await s.call_tool("run_with_secrets", {"command": ["/nonexistent/prog"]})
            assert r.is_error and result(r)["error"]["code"] == "not_found"
            r = await s.call_tool("run_with_secrets", {"command": ["true"], "timeout_secs": 601})
            assert r.is_error and result(r)["error"]["code"] == "invalid_argument"

    anyio.run(go)


def test_missing_and_unmaskable_secrets_are_named_not_run(world):
    marker = world.root / "ran"
    async def go():
        async with mcp_session(world, "missing") as s:
            r = await s.call_tool(
                "run_with_secrets",
                {"command": ["touch", str(marker)], "secrets": ["api-token", "nope"]},
            )
            assert r.is_error
            err = result(r)["error"]
            assert err["code"] == "not_found" and "nope" in err["message"]
            r = await s.call_tool(
                "run_with_secrets", {"command": ["touch", str(marker)], "secrets": ["short"]}
            )
            assert r.is_error
            err = result(r)["error"]
            assert err["code"] == "invalid_argument" and "SHORT" in err["message"]
    anyio.run(go)
    assert not marker.exists()


def test_an_agent_token_limits_the_tools_to_its_grants(world):
    token = world.via_daemon("principal", "add", "mcp-bot", "--role", "agent", "--token").strip()
    world.via_daemon("principal", "grant", "mcp-bot", "api-token")
    async def go():
        async with mcp_session(world, "agent", token=token) as s:
            listed = result(await s.call_tool("list_secrets", {}))
            assert [m["name"] for m in listed["secrets"]] == ["api-token"]
            r = result(await s.call_tool(
                "run_with_secrets",
                {"command": ["sh", "-c", SPLIT], "secrets": ["api-token=T", "api-token"]},
            ))
            assert r["stdout"] == "***"
            r = await s.call_tool(
                "run_with_secrets", {"command": ["true"], "secrets": ["db-password"]}
            )
            assert r.is_error
            err = result(r)["error"]
            assert err["code"] in ("permission_denied", "not_found")
            assert "db-password" in err["message"]
    anyio.run(go)
    reads = [a for a in world.audit() if a["action"] == "read" and a["principal"] == "mcp-bot"]
    assert any(a["name"] == "api-token" and a["outcome"] == "ok" for a in reads)
    assert all(a["exe"].endswith("/tresor-mcp") for a in reads)


def test_audit_records_show_the_mcp_executable(world):
    async def go():
        async with mcp_session(world, "audit") as s:
            r = result(await s.call_tool(
                "run_with_secrets", {"command": ["true"], "secrets": ["db-password"]}
            ))
            assert r["exit_code"] == 0
            r = await s.call_tool("run_with_secrets", {"command": ["true"], "secrets": ["gone"]})
            assert r.is_error
    anyio.run(go)
    records = world.audit()
    reads = [a for a in records if a["action"] == "read" and a["channel"] == "socket"]
    ok = [a for a in reads if a["name"] == "db-password" and a["outcome"] == "ok"]
    assert ok and all(a["exe"].endswith("/tresor-mcp") for a in ok)
    missing = [a for a in reads if a["name"] == "gone"]
    assert missing and missing[-1]["outcome"] == "not_found"
    assert missing[-1]["exe"].endswith("/tresor-mcp")
    dump = json.dumps(records)
    for value in world.values.values():
        assert value not in dump


def test_direct_mode_without_a_daemon(direct_world):
    w = direct_world
    async def go():
        async with mcp_session(w, "direct", direct=True) as s:
            listed = result(await s.call_tool("list_secrets", {}))
            assert len(listed["secrets"]) == 3
            for _ in range(2):  # the unlock secret is read once and reused
                r = result(await s.call_tool(
                    "run_with_secrets",
                    {"command": ["sh", "-c", SPLIT], "secrets": ["api-token"]},
                ))
                assert r["stdout"] == "***"
    anyio.run(go)
    reads = [a for a in w.audit() if a["action"] == "read" and a["name"] == "api-token"]
    assert len(reads) == 2
    assert all(a["channel"] == "direct" and a["exe"].endswith("/tresor-mcp") for a in reads)

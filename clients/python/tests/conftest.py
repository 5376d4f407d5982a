"""Fixtures: a real tresord on a temp socket, over a temp insecure-KDF store made with the CLI.

The binaries come from ``$TRESOR_BIN_DIR`` (default ``<repo>/target/debug``); when they are
missing the tests fail (they do not skip) and say to run ``cargo build``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import pytest

REPO = Path(__file__).resolve().parents[3]
PASS = "correct horse battery staple"


def bin_dir() -> Path:
    env = os.environ.get("TRESOR_BIN_DIR")
    return Path(env) if env else REPO / "target" / "debug"


def binaries() -> Dict[str, Path]:
    d = bin_dir()
    out = {name: d / name for name in ("tresor", "tresord")}
    missing = [str(p) for p in out.values() if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(
            f"tresor binaries not found: {', '.join(missing)}. Run `cargo build` in {REPO} "
            "first, or point TRESOR_BIN_DIR at a directory holding `tresor` and `tresord`.",
            pytrace=False,
        )
    return out


class TresorEnv:
    """A temp directory with a store, a passphrase file and (once started) a daemon."""

    def __init__(self, socket_group: Optional[str] = None) -> None:
        bins = binaries()
        self.tresor = str(bins["tresor"])
        self.tresord = str(bins["tresord"])
        # Short paths: a Unix socket path is limited to 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="tresor-py-"))
        self.store = self.dir / "store.tresor"
        self.passfile = self.dir / "pass"
        self.passfile.write_text(PASS + "\n")
        os.chmod(self.passfile, 0o600)
        self.socket = self.dir / "run" / "tresord.sock"
        self.socket_group = socket_group
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = self.dir / "tresord.log"

    # -- CLI ---------------------------------------------------------------------------

    def env(self) -> Dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith("TRESOR_")}
        e["TRESOR_SOCKET"] = str(self.socket)
        e["TRESOR_STORE"] = str(self.store)
        e["XDG_DATA_HOME"] = str(self.dir / "xdg")
        return e

    def cli(
        self,
        *args: str,
        stdin: Union[bytes, str, None] = None,
        direct: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """``tresor --store S [--passphrase-file P] ARGS``: through the daemon when it runs."""
        cmd: List[str] = [self.tresor, "--store", str(self.store), "--socket", str(self.socket)]
        if direct or self.proc is None:
            cmd += ["--passphrase-file", str(self.passfile)]
        cmd += list(args)
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        r = subprocess.run(cmd, input=data, capture_output=True, env=self.env(), timeout=60)
        if check and r.returncode != 0:
            # stderr never carries a value; stdout might, so it is not shown.
            raise AssertionError(
                f"tresor {' '.join(args)} exited {r.returncode}: {r.stderr.decode(errors='replace')}"
            )
        return r

    def init(self) -> "TresorEnv":
        self.cli("init", "--insecure-kdf")
        return self

    def set(self, name: str, value: Union[bytes, str], *flags: str) -> None:
        self.cli("set", name, *flags, stdin=value)

    def agent(self, name: str, *patterns: str) -> str:
        """Adds an agent with a bearer token, grants it `patterns`, returns the token."""
        import json

        r = self.cli("principal", "add", name, "--role", "agent", "--token", "--json")
        token = json.loads(r.stdout)["token"]
        for p in patterns:
            self.cli("principal", "grant", name, p)
        return str(token)

    # -- daemon ------------------------------------------------------------------------

    def start(self, unlock: bool = True) -> "TresorEnv":
        cmd = [self.tresord, "--store", str(self.store), "--socket", str(self.socket)]
        if self.socket_group:
            cmd += ["--socket-group", self.socket_group]
        if unlock:
            cmd += ["--passphrase-file", str(self.passfile)]
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env()
        )
        log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"tresord exited {self.proc.returncode} at start: {self.log.read_text()}"
                )
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.socket))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"tresord did not start: {self.log.read_text()}")
                time.sleep(0.02)
            finally:
                s.close()
        return self

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, **kw: object) -> "tresor.Client":  # noqa: F821
        import tresor

        return tresor.Client(socket=str(self.socket), **kw)  # type: ignore[arg-type]

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# A certificate valid until 2099-12-31 and one that expired on 2020-01-02 (made with openssl,
# committed so that the tests need no openssl and their expected output never moves).
CERT_DIR = Path(__file__).resolve().parent / "data"


def seed(env: TresorEnv) -> None:
    """The standard data set of these tests."""
    env.set("github-pat", "ghp_example_token_0123456789", "--type", "token",
            "--integration", "github", "--description", "GitHub personal access token")
    env.set("db/main", "postgres://app:hunter2@db/app", "--type", "url",
            "--integration", "postgres", "--description", "main database, read-write")
    env.set("aws/access-key-id", "AKIAEXAMPLE", "--type", "credentials",
            "--integration", "aws", "--max-age-days", "0")
    env.set("blob", "AAEC/w==", "--base64", "--description", "four raw bytes")
    env.set("greeting", "grüß dich, 世界 🔐", "--description", "unicode text")
    env.set("tls/api", (CERT_DIR / "valid-2099.pem").read_bytes(), "--type", "certificate")
    env.set("tls/old", (CERT_DIR / "expired-2020.pem").read_bytes(), "--type", "certificate")
    env.set("slack-token", "xoxb-example", "--type", "bearer", "--integration", "slack",
            "--scope", "user:root")
    fields = env.dir / "fields.json"
    fields.write_text('{"username": "svc", "password": "p\u00e4ss w\u00f6rd"}')
    env.set("svc/login", "", "--type", "credentials", "--fields-from", str(fields),
            "--description", "service login with fields")
    env.set("rotating", "first", "--description", "has two versions")
    env.set("rotating", "second")


@pytest.fixture(scope="session")
def shared() -> Iterator[TresorEnv]:
    """One daemon with the standard data set, for the tests that only read."""
    env = TresorEnv()
    try:
        env.init()
        seed(env)
        env.start()
        yield env
    finally:
        env.cleanup()


@pytest.fixture()
def fresh() -> Iterator[TresorEnv]:
    """A daemon of its own with the standard data set, for tests that stop or lock it."""
    env = TresorEnv()
    try:
        env.init()
        seed(env)
        env.start()
        yield env
    finally:
        env.cleanup()


def run_python(args: Sequence[str], env: Dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)

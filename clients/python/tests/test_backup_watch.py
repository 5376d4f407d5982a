"""``client.backup(path)`` (``GET /v1/backup``) and ``client.secrets.watch(...)``
(``GET /v1/watch``) against a real tresord."""

from __future__ import annotations

import stat
import subprocess
import threading
import time
import pytest

from tresor import PermissionDenied

from conftest import TresorEnv


def test_backup_is_a_new_0600_file_that_opens_with_the_passphrase(fresh: TresorEnv) -> None:
    out = fresh.dir / "copy.tresor"
    n = fresh.client().backup(out)
    assert n == out.stat().st_size > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert b"hunter2" not in out.read_bytes()
    r = subprocess.run(
        [fresh.tresor, "--store", str(out), "--passphrase-file", str(fresh.passfile),
         "--direct", "get", "db/main"],
        env=fresh.env(), capture_output=True, check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"postgres://app:hunter2@db/app"
    with pytest.raises(FileExistsError):
        fresh.client().backup(out)


def test_backup_is_for_owners_only(fresh: TresorEnv) -> None:
    token = fresh.agent("py-backup-bot", "db/*")
    out = fresh.dir / "agent.tresor"
    with pytest.raises(PermissionDenied):
        fresh.client(token=token).backup(out)
    assert not out.exists()


def test_watch_answers_on_a_new_version(fresh: TresorEnv) -> None:
    c = fresh.client()
    first = c.secrets.watch(["github-pat", "org/rotating", "nope"])
    assert [s.get("version") for s in first["secrets"]] == [1, 2, None]
    t = time.monotonic()
    same = c.secrets.watch("github-pat", since=first["generation"], timeout=0.3)
    assert time.monotonic() - t >= 0.3
    assert same["generation"] == first["generation"]

    got = {}

    def wait() -> None:
        got["answer"] = fresh.client().secrets.watch(
            "github-pat", since=first["generation"], timeout=8
        )

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    fresh.set("github-pat", "ghp_rotated")
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert got["answer"]["secrets"][0]["version"] == 2
    assert got["answer"]["generation"] != first["generation"]

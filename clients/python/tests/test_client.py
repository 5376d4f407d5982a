"""The Python client against a real tresord (see conftest.py for the fixtures)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

import tresor
from tresor import (
    Client,
    DaemonUnavailable,
    Locked,
    NotFound,
    PermissionDenied,
    TresorError,
    Unauthenticated,
)
from tresor._errors import error_from_body

from conftest import PASS, TresorEnv

# Every metadata field of SPEC §1 that the API returns in a listing.
META_FIELDS = {
    "name", "scope", "type", "description", "integration", "meta", "created_at", "created_by",
    "updated_at", "updated_by", "last_used", "version", "max_age_days",
}
ORG_NAMES = [
    "aws/access-key-id", "blob", "db/main", "github-pat", "greeting", "rotating", "svc/login",
    "tls/api", "tls/old",
]
VALUES = {
    "github-pat": "ghp_example_token_0123456789",
    "db/main": "postgres://app:hunter2@db/app",
    "greeting": "grüß dich, 世界 🔐",
}


# -- status, list, show ----------------------------------------------------------------


def test_status(shared: TresorEnv) -> None:
    s = shared.client().status()
    assert s["locked"] is False
    assert s["api"] == 1
    assert s["principal"] == "root" and s["role"] == "owner"
    assert s["secrets"] == len(ORG_NAMES) + 1


def test_list_unwraps_and_returns_metadata_only(shared: TresorEnv) -> None:
    secrets = shared.client().secrets.list()
    assert isinstance(secrets, list)
    assert [s["name"] for s in secrets if s["scope"] == "org"] == ORG_NAMES
    assert [(s["scope"], s["name"]) for s in secrets if s["scope"] != "org"] == [
        ("user:root", "slack-token")
    ]
    for s in secrets:
        assert META_FIELDS <= set(s), s["name"]
        assert "value" not in s and "value_base64" not in s
    blob = json.dumps(secrets, ensure_ascii=False)
    for v in VALUES.values():
        assert v not in blob


def test_list_follows_next_through_pages(shared: TresorEnv, monkeypatch) -> None:
    import tresor._client as impl

    whole = shared.client().secrets.list()
    assert len(whole) > 3
    monkeypatch.setattr(impl, "_LIST_PAGE", 2)
    c = shared.client()
    pages = []
    real = c.request

    def counting(method, path, *args, **kwargs):
        answer = real(method, path, *args, **kwargs)
        pages.append(len(answer["secrets"]))
        return answer

    monkeypatch.setattr(c, "request", counting)
    paged = c.secrets.list()
    assert [(s["scope"], s["name"]) for s in paged] == [(s["scope"], s["name"]) for s in whole]
    assert len(pages) == (len(whole) + 1) // 2 and max(pages) == 2, pages


def test_list_filters(shared: TresorEnv) -> None:
    c = shared.client()
    assert [s["name"] for s in c.secrets.list(type="certificate")] == ["tls/api", "tls/old"]
    assert [s["name"] for s in c.secrets.list(integration="github")] == ["github-pat"]
    assert [s["name"] for s in c.secrets.list(q="/")] == [
        "aws/access-key-id", "db/main", "svc/login", "tls/api", "tls/old"
    ]
    assert [s["name"] for s in c.secrets.list(scope="user:root")] == ["slack-token"]
    assert c.secrets.list(q="no-such-thing") == []


def test_show_name_with_slash_and_description_with_spaces(shared: TresorEnv) -> None:
    m = shared.client().secrets.show("db/main")
    assert m["name"] == "db/main" and m["scope"] == "org" and m["type"] == "url"
    assert m["description"] == "main database, read-write"
    assert m["integration"] == "postgres"
    assert [v["version"] for v in m["versions"]] == [1]
    assert "value" not in m
    r = shared.client().secrets.show("rotating", scope="org")
    assert r["version"] == 2 and [v["version"] for v in r["versions"]] == [1, 2]


# -- values ----------------------------------------------------------------------------


def test_get_value_text_slash_and_unicode(shared: TresorEnv) -> None:
    c = shared.client()
    for name, value in VALUES.items():
        v = c.secrets.get_value(name=name)
        assert v["value"] == value and isinstance(v["value"], str)
        assert v["name"] == name and v["scope"] == "org" and v["version"] == 1
        assert set(v) == {"name", "value", "type", "scope", "version", "retrieved_at"}
        assert v["retrieved_at"].endswith("Z")
    assert c.secrets.get_value(name="db/main")["type"] == "url"


def test_get_value_binary_is_bytes(shared: TresorEnv) -> None:
    v = shared.client().secrets.get_value(name="blob")
    assert v["value"] == b"\x00\x01\x02\xff"


def test_get_value_version_field_scope(shared: TresorEnv) -> None:
    c = shared.client()
    assert c.secrets.get_value(name="rotating")["value"] == "second"
    old = c.secrets.get_value(name="rotating", version=1)
    assert old["value"] == "first" and old["version"] == 1
    login = c.secrets.get_value(name="svc/login")
    assert login["value"] == ""
    assert login["fields"] == {"username": "svc", "password": "päss wörd"}
    assert c.secrets.get_value(name="svc/login", field="password")["value"] == "päss wörd"
    assert c.secrets.get_value(name="svc/login#username")["value"] == "svc"
    assert c.secrets.get_value(name="slack-token", scope="user:root")["value"] == "xoxb-example"
    # Without a scope the lookup resolves user:<caller> first.
    assert c.secrets.get_value(name="slack-token")["scope"] == "user:root"


def test_not_found(shared: TresorEnv) -> None:
    c = shared.client()
    with pytest.raises(NotFound) as e:
        c.secrets.get_value(name="db/missing")
    assert e.value.code == "not_found" and e.value.status == 404
    assert "not found" in str(e.value) and "db/missing" in str(e.value)
    with pytest.raises(NotFound):
        c.secrets.show("nope")
    with pytest.raises(NotFound):
        c.secrets.get_value(name="rotating", version=9)


def test_raw_slash_in_path_is_a_route_404(shared: TresorEnv) -> None:
    """The daemon's known gap: a raw `/` reaches no route. The client always encodes."""
    with pytest.raises(NotFound) as e:
        shared.client().request("GET", "/v1/secrets/db/main/value")
    assert e.value.details.get("what") == "route"


def test_check(shared: TresorEnv) -> None:
    c = shared.client()
    assert c.secrets.check(["db/main", "nope", "svc/login#password", "svc/login#x"]) == {
        "present": ["db/main", "svc/login#password"],
        "missing": ["nope", "svc/login#x"],
    }
    assert c.secrets.check("github-pat") == {"present": ["github-pat"], "missing": []}


def test_env(shared: TresorEnv) -> None:
    c = shared.client()
    env = c.secrets.env(["github-pat", "db/main=DATABASE_URL", "blob", "svc/login#password"])
    assert env == {
        "GITHUB_PAT": VALUES["github-pat"],
        "DATABASE_URL": VALUES["db/main"],
        "BLOB": b"\x00\x01\x02\xff",
        "SVC_LOGIN_PASSWORD": "päss wörd",
    }
    assert c.secrets.env([{"name": "rotating", "version": 1, "env": "OLD"}]) == {"OLD": "first"}
    with pytest.raises(NotFound):
        c.secrets.env(["github-pat", "nope"])


def test_use(shared: TresorEnv) -> None:
    c = shared.client()
    with c.secrets.use("greeting") as v:
        assert v == VALUES["greeting"]
    with c.secrets.use("blob") as b:
        assert b == b"\x00\x01\x02\xff"
    with pytest.raises(RuntimeError):
        with c.secrets.use("github-pat"):
            raise RuntimeError("inside")
    with pytest.raises(NotFound):
        with c.secrets.use("nope"):
            pass  # pragma: no cover


# -- connections -----------------------------------------------------------------------


def test_one_connection_kept_alive(shared: TresorEnv) -> None:
    c = shared.client()
    for _ in range(20):
        c.status()
        c.secrets.get_value(name="github-pat")
        c.secrets.check(["db/main"])
    assert c.connections_opened == 1


def test_reconnects_after_the_daemon_closed_an_idle_connection(shared: TresorEnv) -> None:
    c = shared.client()
    c.status()
    time.sleep(6)  # past the daemon's 5 s header timeout: it closes the idle connection
    assert c.secrets.get_value(name="github-pat")["value"] == VALUES["github-pat"]
    assert c.connections_opened == 2
    time.sleep(6)
    # Not idempotent (POST): sent again only because the close was seen before sending.
    assert c.secrets.check(["db/main"])["present"] == ["db/main"]
    assert c.connections_opened == 3


def test_no_daemon_is_daemon_unavailable_naming_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "none.sock")
    with pytest.raises(DaemonUnavailable) as e:
        Client(socket=path).status()
    assert path in str(e.value) and e.value.socket_path == path
    assert isinstance(e.value, TresorError) and e.value.status is None


def test_daemon_stopped_while_connected(fresh: TresorEnv) -> None:
    c = fresh.client()
    assert c.status()["locked"] is False
    fresh.stop()
    with pytest.raises(DaemonUnavailable) as e:
        c.secrets.get_value(name="github-pat")
    assert str(fresh.socket) in str(e.value)
    with pytest.raises(DaemonUnavailable):
        c.secrets.check(["github-pat"])
    # A new daemon on the same socket: the same client carries on.
    fresh.start()
    assert c.secrets.get_value(name="github-pat")["value"] == VALUES["github-pat"]


def test_locked(fresh: TresorEnv) -> None:
    c = fresh.client()
    c.status()
    assert c.lock()["locked"] is True
    assert c.status()["locked"] is True
    for call in (
        lambda: c.secrets.get_value(name="github-pat"),
        lambda: c.secrets.list(),
        lambda: c.secrets.check(["github-pat"]),
    ):
        with pytest.raises(Locked) as e:
            call()
        assert e.value.code == "locked" and e.value.status == 423 and "locked" in str(e.value)
    with pytest.raises(Unauthenticated):
        c.unlock("wrong passphrase")
    assert c.unlock(PASS)["locked"] is False
    assert c.secrets.get_value(name="github-pat")["value"] == VALUES["github-pat"]


def test_locked_by_the_cli(fresh: TresorEnv) -> None:
    c = fresh.client()
    c.status()
    fresh.cli("lock")
    with pytest.raises(Locked):
        c.secrets.get_value(name="db/main")


# -- principals ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent_token(shared: TresorEnv) -> str:
    return shared.agent("py-bot", "db/*", "github-pat")


def test_agent_reads_only_granted_values(shared: TresorEnv, agent_token: str) -> None:
    c = shared.client(token=agent_token)
    s = c.status()
    assert s["principal"] == "py-bot" and s["role"] == "agent"
    assert [m["name"] for m in c.secrets.list()] == ["db/main", "github-pat"]
    assert c.secrets.get_value(name="db/main")["value"] == VALUES["db/main"]
    assert c.secrets.env(["github-pat"]) == {"GITHUB_PAT": VALUES["github-pat"]}
    for name in ("greeting", "svc/login", "blob"):
        with pytest.raises((PermissionDenied, NotFound)) as e:
            c.secrets.get_value(name=name)
        assert e.value.status in (403, 404)
        for v in VALUES.values():
            assert v not in str(e.value) and v not in repr(e.value)
    with pytest.raises((PermissionDenied, NotFound)):
        c.secrets.env(["greeting"])
    with pytest.raises((PermissionDenied, NotFound)):
        c.secrets.show("greeting")


def test_agent_token_from_environment(shared: TresorEnv, agent_token: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRESOR_TOKEN", agent_token)
    monkeypatch.setenv("TRESOR_SOCKET", str(shared.socket))
    c = Client()
    assert c.status()["principal"] == "py-bot"
    assert agent_token not in repr(c)


def test_wrong_token_is_unauthenticated(shared: TresorEnv) -> None:
    with pytest.raises(Unauthenticated) as e:
        shared.client(token="tresor_not-a-real-token").status()
    assert e.value.status == 401 and "tresor_not-a-real-token" not in str(e.value)


MEMBER_USER = "tresor-py-member"
MEMBER_SCRIPT = r"""
import json, sys
import tresor
c = tresor.Client()
out = {"status": c.status()}
out["names"] = [s["name"] for s in c.secrets.list()]
out["check"] = c.secrets.check(["db/main", "nope"])
for name in ("db/main", "greeting"):
    try:
        c.secrets.get_value(name=name)
        out["get_" + name] = "ok"
    except tresor.TresorError as e:
        out["get_" + name] = [type(e).__name__, e.code, e.status]
print(json.dumps(out))
"""


def _member_uid_gid() -> "tuple[int, int]":
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs useradd and setpriv to run a client as a second Unix user")
    try:
        pw = pwd.getpwnam(MEMBER_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", MEMBER_USER], check=True)
        pw = pwd.getpwnam(MEMBER_USER)
    return pw.pw_uid, pw.pw_gid


def test_member_reads_metadata_not_values() -> None:
    if os.geteuid() != 0:
        msg = "the member test creates a second Unix user: run as root"
        print(f"SKIP: {msg}")
        pytest.skip(msg)
    uid, gid = _member_uid_gid()
    env = TresorEnv(socket_group=MEMBER_USER)
    try:
        env.init()
        env.set("db/main", VALUES["db/main"], "--description", "main database")
        env.set("greeting", VALUES["greeting"])
        env.cli("principal", "add", "py-member", "--role", "member", "--uid", str(uid))
        os.chmod(env.dir, 0o711)
        env.start()
        # The package, where the member can read it; an interpreter it may run.
        pkg = env.dir / "pkg"
        shutil.copytree(Path(tresor.__file__).parent, pkg / "tresor")
        for p in [pkg, *pkg.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        (pkg / "member.py").write_text(MEMBER_SCRIPT)
        os.chmod(pkg / "member.py", 0o644)
        as_member = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        child_env = {"PATH": "/usr/bin:/bin", "TRESOR_SOCKET": str(env.socket),
                     "PYTHONPATH": str(pkg), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/"}
        python = None
        for cand in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
            ok = subprocess.run([*as_member, cand, "-c", "import sys; assert sys.version_info >= (3, 9)"],
                                capture_output=True, env=child_env)
            if ok.returncode == 0:
                python = cand
                break
        if python is None:
            msg = "no Python >= 3.9 that the second user may run"
            print(f"SKIP: {msg}")
            pytest.skip(msg)
        r = subprocess.run([*as_member, python, str(pkg / "member.py")], capture_output=True,
                           text=True, env=child_env, timeout=60)
        assert r.returncode == 0, r.stderr
        out: Dict[str, Any] = json.loads(r.stdout)
        assert out["status"]["principal"] == "py-member" and out["status"]["role"] == "member"
        assert out["names"] == ["db/main", "greeting"]
        assert out["check"] == {"present": ["db/main"], "missing": ["nope"]}
        assert out["get_db/main"] == ["PermissionDenied", "permission_denied", 403]
        assert out["get_greeting"] == ["PermissionDenied", "permission_denied", 403]
        assert VALUES["db/main"] not in r.stdout + r.stderr
    finally:
        env.cleanup()


# -- offline units: errors, discovery, encoding ------------------------------------------


@pytest.mark.parametrize(
    "code,status,cls",
    [
        ("not_found", 404, tresor.NotFound),
        ("permission_denied", 403, tresor.PermissionDenied),
        ("unauthenticated", 401, tresor.Unauthenticated),
        ("locked", 423, tresor.Locked),
        ("invalid_argument", 400, tresor.InvalidArgument),
        ("conflict", 409, tresor.Conflict),
        ("ambiguous", 409, tresor.Ambiguous),
        ("payload_too_large", 413, tresor.PayloadTooLarge),
        ("too_many_requests", 429, tresor.TooManyRequests),
        ("integrity", 500, tresor.Integrity),
        ("internal", 500, tresor.Internal),
        ("unavailable", 503, tresor.Unavailable),
    ],
)
def test_error_codes_map_to_classes(code: str, status: int, cls: type) -> None:
    e = error_from_body(status, {"error": {"code": code, "message": f"{code} happened", "name": "x"}})
    assert type(e) is cls and isinstance(e, TresorError)
    assert e.code == code and e.status == status and f"{code} happened" in str(e)
    assert e.details == {"name": "x"}


def test_error_fallbacks() -> None:
    e = error_from_body(418, {"error": {"code": "brand_new", "message": "m"}})
    assert type(e) is TresorError and e.code == "brand_new" and e.status == 418
    e = error_from_body(403, None)
    assert isinstance(e, PermissionDenied) and "403" in str(e)
    t = error_from_body(429, {"error": {"code": "too_many_requests", "message": "slow down",
                                        "retry_after_ms": 1500}})
    assert isinstance(t, tresor.TooManyRequests) and t.retry_after == 1.5


def test_socket_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRESOR_SOCKET", "/x/explicit.sock")
    assert Client().socket_path == "/x/explicit.sock"
    assert Client(socket="/y/arg.sock").socket_path == "/y/arg.sock"
    monkeypatch.setenv("TRESOR_SOCKET", "")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert tresor.default_socket_path() == "/run/tresor/tresord.sock"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert tresor.default_socket_path() == "/run/user/1000/tresor/tresord.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")
    assert tresor.default_socket_path() == "/tmp/tresor-1000/tresord.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert tresor.default_socket_path() == "/tmp/tresor-1000/tresord.sock"


def test_bad_token_is_refused_without_echo() -> None:
    with pytest.raises(tresor.InvalidArgument) as e:
        Client(socket="/nonexistent", token="has space")
    assert "has space" not in str(e.value)


def test_names_are_percent_encoded() -> None:
    from tresor._client import _secret_path

    assert _secret_path("db/main", "/value", "?scope=team%3Aops") == "/v1/secrets/db%2Fmain/value?scope=team%3Aops"
    assert _secret_path("a b#c") == "/v1/secrets/a%20b%23c"

"""The five examples in clients/python/examples, each run against a real tresord."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import TresorEnv

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET_VALUES = ["ghp_example_token_0123456789", "postgres://app:hunter2@db/app", "AKIAEXAMPLE",
                 "xoxb-example", "päss wörd", "BEGIN CERTIFICATE"]


def run(env: TresorEnv, script: str, *args: str, token: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    e: Dict[str, str] = env.env()
    e.pop("TRESOR_STORE", None)
    if token:
        e["TRESOR_TOKEN"] = token
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                       text=True, env=e, timeout=60)
    for v in SECRET_VALUES:  # an example never prints a value
        assert v not in r.stdout and v not in r.stderr, f"{script} printed a value"
    return r


@pytest.fixture(scope="module")
def bot(shared: TresorEnv) -> str:
    return shared.agent("example-bot", "db/*", "github-pat")


def test_inventory(shared: TresorEnv) -> None:
    r = run(shared, "inventory.py")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("Secret inventory: 10 secret(s)\n")
    by_type = out.split("By type:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[:2] for line in by_type] == [
        ["bearer", "1"], ["certificate", "2"], ["credentials", "2"], ["plain", "3"],
        ["token", "1"], ["url", "1"],
    ]
    assert re.search(r"^  certificate +2  tls/api, tls/old$", out, re.M)
    assert re.search(r"^  org +9  aws/access-key-id, blob, db/main, ", out, re.M)
    assert re.search(r"^  user:root +1  slack-token$", out, re.M)
    assert re.search(r"^  aws +1  aws/access-key-id$", out, re.M)
    assert re.search(r"^  \(none\) +6  ", out, re.M)
    assert "  org/db/main: main database, read-write\n" in out
    r = run(shared, "inventory.py", "--integration", "github")
    assert r.stdout.startswith("Secret inventory: 1 secret(s)\n") and "github-pat" in r.stdout


def test_inventory_as_agent_sees_granted_only(shared: TresorEnv, bot: str) -> None:
    r = run(shared, "inventory.py", token=bot)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Secret inventory: 2 secret(s)\n")
    assert re.search(r"^  org +2  db/main, github-pat$", r.stdout, re.M)


def test_validate_required(shared: TresorEnv) -> None:
    r = run(shared, "validate_required.py")
    assert (r.returncode, r.stdout) == (0, "  ok      github-pat\n  ok      db/main\nall 2 required secret(s) present\n")
    r = run(shared, "validate_required.py", "github-pat", "aws/secret-access-key", "svc/login#password")
    assert r.returncode == 1
    assert r.stdout == (
        "  ok      github-pat\n"
        "  MISSING aws/secret-access-key\n"
        "  ok      svc/login#password\n"
        "missing 1 of 3 required secret(s): aws/secret-access-key\n"
    )


def test_validate_required_daemon_down(tmp_path: Path) -> None:
    e = dict(os.environ, TRESOR_SOCKET=str(tmp_path / "none.sock"))
    e.pop("TRESOR_TOKEN", None)
    r = subprocess.run([sys.executable, str(EXAMPLES / "validate_required.py")],
                       capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode == 2 and str(tmp_path / "none.sock") in r.stderr


def test_scoped_access(shared: TresorEnv, bot: str) -> None:
    args = ["--allow", "github-*", "--allow", "db/*", "--allow", "greeting",
            "github-pat", "db/main", "blob", "greeting", "db/nope"]
    r = run(shared, "scoped_access.py", *args, token=bot)
    assert r.returncode == 1
    assert r.stdout == (
        "github-pat: read, 28 chars\n"
        "db/main: read, 29 chars\n"
        "blob: refused by the accessor (not in --allow)\n"
        "greeting: refused by tresor (permission denied)\n"
        "db/nope: not found\n"
    )
    # As the owner every allowed name is readable; binary values are bytes.
    r = run(shared, "scoped_access.py", "--allow", "*", "blob", "greeting")
    assert (r.returncode, r.stdout) == (0, "blob: read, 4 bytes (binary)\ngreeting: read, 15 chars\n")


def _rotation_lines(out: str) -> Dict[str, List[str]]:
    rows: Dict[str, List[str]] = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) +(\S+) \((\w+)\): (.*)$", line)
        if m:
            rows[m.group(2)] = [m.group(1), m.group(3), m.group(4)]
    return rows


def test_rotation_check(shared: TresorEnv) -> None:
    r = run(shared, "rotation_check.py")
    assert r.returncode == 1, r.stderr
    rows = _rotation_lines(r.stdout)
    assert rows["org/aws/access-key-id"] == ["DUE", "credentials", "age 0d, max_age_days 0"]
    assert rows["org/github-pat"] == ["OK", "token", "age 0d, token default 60 days, due in 60d"]
    assert rows["user:root/slack-token"] == ["OK", "bearer", "age 0d, bearer default 60 days, due in 60d"]
    assert rows["org/svc/login"] == ["OK", "credentials", "age 0d, credentials default 90 days, due in 90d"]
    assert rows["org/tls/old"] == ["DUE", "certificate", "certificate expired 2020-01-02"]
    status, typ, reason = rows["org/tls/api"]
    assert (status, typ) == ("OK", "certificate")
    assert re.fullmatch(r"certificate expires 2099-12-31, due in \d+d", reason)
    assert rows["org/db/main"] == ["-", "url", "age 0d, no rotation policy"]
    assert r.stdout.splitlines()[-1] == "summary: DUE 2, SOON 0, OK 4, - 4, ? 0"
    # A wider warning window: the 60- and 90-day defaults fall in it.
    rows = _rotation_lines(run(shared, "rotation_check.py", "--warn-days", "75").stdout)
    assert rows["org/github-pat"][0] == "SOON" and rows["org/svc/login"][0] == "OK"


def test_rotation_check_agrees_with_the_cli(shared: TresorEnv) -> None:
    cli = json.loads(shared.cli("report", "rotation", "--json").stdout)
    due_cli = sorted(f"{i['scope']}/{i['name']}" for i in cli)
    rows = _rotation_lines(run(shared, "rotation_check.py").stdout)
    assert sorted(k for k, v in rows.items() if v[0] == "DUE") == due_cli


def test_rotation_check_as_agent_cannot_read_certificates(shared: TresorEnv) -> None:
    token = shared.agent("cert-bot", "tls/*")
    r = run(shared, "rotation_check.py", token=token)
    rows = _rotation_lines(r.stdout)
    assert set(rows) == {"org/tls/api", "org/tls/old"}
    assert rows["org/tls/old"][0] == "DUE"
    shared.cli("principal", "revoke", "cert-bot", "tls/*")
    shared.cli("principal", "grant", "cert-bot", "tls/api")
    rows = _rotation_lines(run(shared, "rotation_check.py", token=token).stdout)
    assert list(rows) == ["org/tls/api"] and rows["org/tls/api"][0] == "OK"


def test_integration_check(shared: TresorEnv, tmp_path: Path) -> None:
    r = run(shared, "integration_check.py")
    assert r.returncode == 1
    assert r.stdout == (
        "aws: NOT READY (1/2 present, 1 tagged aws); missing: aws/secret-access-key\n"
        "github: ready (1/1 present, 1 tagged github)\n"
        "postgres: ready (1/1 present, 1 tagged postgres)\n"
        "1 of 3 integration(s) not ready: aws\n"
    )
    reqs = tmp_path / "reqs.json"
    reqs.write_text(json.dumps({"github": ["github-pat"], "login": ["svc/login#username", "svc/login#password"]}))
    r = run(shared, "integration_check.py", "-f", str(reqs))
    assert (r.returncode, r.stdout) == (0, (
        "github: ready (1/1 present, 1 tagged github)\n"
        "login: ready (2/2 present, 0 tagged login)\n"
        "all 2 integration(s) ready\n"
    ))

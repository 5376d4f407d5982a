#!/usr/bin/env python3
"""Rotation age: which secrets are due (or soon due) for rotation.

Port of the Kubiya SDK Secrets Service "rotation checker" example, with tresor's policy (the
same as ``tresor report rotation``): a secret's ``max_age_days`` when set, else its type's
default (``token``/``bearer`` 60 days, ``credentials``/``oauth`` 90); for a ``certificate`` the
X.509 notAfter of its PEM value (read with the standard library only). Age counts from the
current version's creation. Certificate values are read (audited); nothing is printed of them.

    python rotation_check.py [--warn-days N]     # exit 1 when something is due
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import ssl
import subprocess
import sys
import tempfile
from typing import Dict, Optional, Tuple, Union

from tresor import Client, TresorError

DEFAULT_MAX_AGE = {"token": 60, "bearer": 60, "credentials": 90, "oauth": 90}
UTC = dt.timezone.utc


def parse_time(s: str) -> dt.datetime:
    """RFC 3339 UTC as the API writes it (up to nanoseconds; Python 3.9 safe)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")


def not_after(pem: Union[str, bytes]) -> dt.datetime:
    """The notAfter of the first certificate in a PEM value."""
    data = pem.encode() if isinstance(pem, str) else pem
    fd, path = tempfile.mkstemp(suffix=".pem")  # 0600, removed below
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
        if decode is not None:
            text = decode(path)["notAfter"]
        else:  # pragma: no cover - CPython has it; fall back to the openssl CLI
            out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                                 capture_output=True, text=True, check=True).stdout
            text = out.strip().split("=", 1)[1]
        return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
    except (ssl.SSLError, OSError, KeyError, ValueError, subprocess.CalledProcessError):
        raise ValueError("the value is not a PEM certificate") from None
    finally:
        os.unlink(path)


def current_version_at(meta: dict) -> dt.datetime:
    for v in meta.get("versions") or []:
        if v.get("version") == meta.get("version"):
            return parse_time(v["created_at"])
    return parse_time(meta["updated_at"])


def assess(client: Client, meta: dict, now: dt.datetime, warn_days: int) -> Tuple[str, str]:
    """(status, reason): status is DUE, SOON, OK or '-' (no policy) or '?' (unknown)."""
    age = (now - current_version_at(meta)).days
    limit: Optional[int] = meta.get("max_age_days")
    why = f"max_age_days {limit}" if limit is not None else None
    if limit is None and meta["type"] in DEFAULT_MAX_AGE:
        limit = DEFAULT_MAX_AGE[meta["type"]]
        why = f"{meta['type']} default {limit} days"
    due_in = None if limit is None else limit - age
    reason = f"age {age}d, {why}" if why else f"age {age}d, no rotation policy"
    if meta["type"] == "certificate":
        try:
            with client.secrets.use(meta["name"], scope=meta["scope"]) as pem:
                end = not_after(pem)
        except (TresorError, ValueError) as e:
            return "?", f"certificate expiry unknown: {e}"
        left = (end - now).days
        if due_in is None or left < due_in:
            word = "expired" if end < now else "expires"
            due_in, reason = left, f"certificate {word} {end:%Y-%m-%d}"
    if due_in is None:
        return "-", reason
    if due_in <= 0:
        return "DUE", reason
    if due_in <= warn_days:
        return "SOON", f"{reason}, due in {due_in}d"
    return "OK", f"{reason}, due in {due_in}d"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warn-days", type=int, default=30)
    args = ap.parse_args()
    client = Client()
    now = dt.datetime.now(UTC)
    try:
        secrets = client.secrets.list()
    except TresorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts: Dict[str, int] = {}
    for meta in secrets:
        status, reason = assess(client, meta, now, args.warn_days)
        counts[status] = counts.get(status, 0) + 1
        print(f"{status:<5} {meta['scope']}/{meta['name']} ({meta['type']}): {reason}")
    print("summary: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("DUE", "SOON", "OK", "-", "?")))
    return 1 if counts.get("DUE") else 0


if __name__ == "__main__":
    sys.exit(main())

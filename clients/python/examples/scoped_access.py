#!/usr/bin/env python3
"""Scoped value access: an accessor that reads only the secrets a workload declared, and never
lets a value reach a log.

Port of the Kubiya SDK Secrets Service "secure secret accessor" example. Two fences: this
accessor's own allow-list (``--allow`` globs), checked before any request, and tresor's
grants, checked by the daemon (an agent's ``TRESOR_TOKEN`` reads only what it is granted).
Values are used inside ``client.secrets.use(...)`` and only their length is printed.

    python scoped_access.py --allow 'github-*' --allow 'db/*' NAME...
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from typing import Callable, List, Optional, TypeVar, Union

from tresor import Client, NotFound, PermissionDenied, TresorError

T = TypeVar("T")


class AccessRefused(Exception):
    """The accessor's allow-list does not cover the name (nothing was asked of tresor)."""


class SecureSecretAccessor:
    def __init__(self, client: Client, allowed: List[str], scope: Optional[str] = None) -> None:
        self.client = client
        self.allowed = allowed
        self.scope = scope

    def allows(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.allowed)

    def with_secret(self, name: str, fn: Callable[[Union[str, bytes]], T]) -> T:
        """Runs ``fn(value)`` and drops the value; raises AccessRefused or TresorError."""
        if not self.allows(name):
            raise AccessRefused(name)
        with self.client.secrets.use(name, scope=self.scope) as value:
            return fn(value)


def describe(value: Union[str, bytes]) -> str:
    return f"{len(value)} bytes (binary)" if isinstance(value, bytes) else f"{len(value)} chars"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allow", action="append", default=[], metavar="GLOB")
    ap.add_argument("--scope")
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()

    accessor = SecureSecretAccessor(Client(), args.allow, args.scope)
    failures = 0
    for name in args.names:
        try:
            print(f"{name}: read, {accessor.with_secret(name, describe)}")
        except AccessRefused:
            failures += 1
            print(f"{name}: refused by the accessor (not in --allow)")
        except PermissionDenied:
            failures += 1
            print(f"{name}: refused by tresor (permission denied)")
        except NotFound:
            failures += 1
            print(f"{name}: not found")
        except TresorError as e:
            failures += 1
            print(f"{name}: error {e.code}: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

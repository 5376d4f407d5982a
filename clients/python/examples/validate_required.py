#!/usr/bin/env python3
"""Required-secrets validation: fail fast, before a workload starts, when a secret is missing.

Port of the Kubiya SDK Secrets Service "required secrets validator" example. It uses
``client.secrets.check`` (``POST /v1/check``), which reads no value and needs no grant on the
values: members and agents may run it.

    python validate_required.py NAME [NAME#field ...]      # exit 0 when all present, else 1
"""

from __future__ import annotations

import sys
from typing import List

from tresor import Client, TresorError

DEFAULT_REQUIRED = ["github-pat", "db/main"]


def validate(client: Client, required: List[str]) -> bool:
    result = client.secrets.check(required)
    for name in required:
        mark = "ok     " if name in result["present"] else "MISSING"
        print(f"  {mark} {name}")
    if result["missing"]:
        print(f"missing {len(result['missing'])} of {len(required)} required secret(s): "
              f"{', '.join(result['missing'])}")
        return False
    print(f"all {len(required)} required secret(s) present")
    return True


def main() -> int:
    required = sys.argv[1:] or DEFAULT_REQUIRED
    try:
        return 0 if validate(Client(), required) else 1
    except TresorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

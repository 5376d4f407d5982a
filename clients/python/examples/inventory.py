#!/usr/bin/env python3
"""Secret inventory: every secret you may see, grouped by type, scope and integration.

Port of the Kubiya SDK Secrets Service "inventory" example: only the constructor changed
(``Client()`` finds tresord's socket like the CLI; ``$TRESOR_TOKEN`` selects an agent).
Metadata only: no value is read.

    python inventory.py [--scope S] [--type T] [--integration I]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Dict, List

from tresor import Client, TresorError


def group(secrets: List[dict], key: str) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = defaultdict(list)
    for s in secrets:
        out[s.get(key) or "(none)"].append(s["name"])
    return dict(sorted(out.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scope")
    ap.add_argument("--type")
    ap.add_argument("--integration")
    args = ap.parse_args()

    client = Client()
    try:
        secrets = client.secrets.list(scope=args.scope, type=args.type, integration=args.integration)
    except TresorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    print(f"Secret inventory: {len(secrets)} secret(s)")
    for title, key in (("type", "type"), ("scope", "scope"), ("integration", "integration")):
        print(f"\nBy {title}:")
        for k, names in group(secrets, key).items():
            print(f"  {k:<14} {len(names):>3}  {', '.join(sorted(names))}")
    described = [s for s in secrets if s.get("description")]
    print(f"\nDescribed: {len(described)} of {len(secrets)}")
    for s in described:
        print(f"  {s['scope']}/{s['name']}: {s['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

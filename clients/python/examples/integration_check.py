#!/usr/bin/env python3
"""Integration requirements: is each integration a workload uses ready to run?

Port of the Kubiya SDK Secrets Service "integration checker" example. Requirements come from a
JSON file (``{"github": ["github-pat"], "aws": ["aws/access-key-id", ...]}``) or the built-in
map below; each integration is checked with ``client.secrets.check`` (no value read) and the
secrets tagged with it are counted with ``client.secrets.list(integration=...)``.

    python integration_check.py [-f requirements.json]     # exit 1 when one is not ready
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List

from tresor import Client, TresorError

REQUIREMENTS: Dict[str, List[str]] = {
    "github": ["github-pat"],
    "postgres": ["db/main"],
    "aws": ["aws/access-key-id", "aws/secret-access-key"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-f", "--file", help="a JSON object: integration -> [secret names]")
    args = ap.parse_args()
    reqs = REQUIREMENTS
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            reqs = json.load(f)
    client = Client()
    not_ready = []
    try:
        for integration, required in sorted(reqs.items()):
            result = client.secrets.check(required)
            tagged = len(client.secrets.list(integration=integration))
            have = f"{len(result['present'])}/{len(required)} present, {tagged} tagged {integration}"
            if result["missing"]:
                not_ready.append(integration)
                print(f"{integration}: NOT READY ({have}); missing: {', '.join(result['missing'])}")
            else:
                print(f"{integration}: ready ({have})")
    except TresorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not_ready:
        print(f"{len(not_ready)} of {len(reqs)} integration(s) not ready: {', '.join(not_ready)}")
        return 1
    print(f"all {len(reqs)} integration(s) ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())

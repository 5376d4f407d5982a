#!/usr/bin/env python3
"""get_value round trips per second: one kept-alive connection vs a new connection per call.

    python clients/python/bench.py [-n 2000] [--socket PATH --name NAME]

Without --socket it makes a temp insecure-KDF store with the CLI, starts its own tresord from
$TRESOR_BIN_DIR (default <repo>/target/debug; `cargo build` first) and stops it at the end.
Every get_value is an audited read (its record is committed before the answer); status is
shown too, as the cost of the transport alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run from a checkout without installing

from tresor import Client  # noqa: E402

REPO = HERE.parents[1]


def temp_daemon() -> Tuple[str, Callable[[], None]]:
    bins = Path(os.environ.get("TRESOR_BIN_DIR") or REPO / "target" / "debug")
    tresor, tresord = bins / "tresor", bins / "tresord"
    if not (tresor.is_file() and tresord.is_file()):
        sys.exit(f"no tresor/tresord in {bins}: run `cargo build` or set TRESOR_BIN_DIR")
    d = Path(tempfile.mkdtemp(prefix="tresor-bench-"))
    store, pw, sock = d / "store.tresor", d / "pass", d / "run" / "tresord.sock"
    pw.write_text("bench passphrase\n")
    os.chmod(pw, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRESOR_")}
    base = [str(tresor), "--store", str(store), "--socket", str(sock), "--passphrase-file", str(pw)]
    subprocess.run(base + ["init", "--insecure-kdf"], check=True, capture_output=True, env=env)
    subprocess.run(base + ["set", "bench/token", "--type", "token"], input=b"x" * 40,
                   check=True, capture_output=True, env=env)
    proc = subprocess.Popen([str(tresord), "--store", str(store), "--socket", str(sock),
                             "--passphrase-file", str(pw)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(str(sock))
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("tresord did not start")
            time.sleep(0.02)
        finally:
            s.close()

    def stop() -> None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)

    return str(sock), stop


def measure(n: int, call: Callable[[], object]) -> Tuple[float, List[float]]:
    for _ in range(min(50, n)):  # warm up
        call()
    lat: List[float] = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t)
    return n / (time.perf_counter() - t0), lat


def row(label: str, rate: float, lat: List[float]) -> str:
    lat = sorted(lat)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6  # noqa: E731
    return (f"{label:<38} {rate:>9.0f}/s   p50 {p(0.50):>7.0f} µs   p99 {p(0.99):>7.0f} µs   "
            f"mean {statistics.fmean(lat) * 1e6:>7.0f} µs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="calls per measurement")
    ap.add_argument("--socket", help="an existing daemon (else a temp one is started)")
    ap.add_argument("--name", default="bench/token", help="the secret to read")
    args = ap.parse_args()
    stop: Optional[Callable[[], None]] = None
    sock = args.socket
    if sock is None:
        sock, stop = temp_daemon()
    try:
        kept = Client(socket=sock)

        def fresh_value() -> object:
            with Client(socket=sock) as c:
                return c.secrets.get_value(name=args.name)

        def fresh_status() -> object:
            with Client(socket=sock) as c:
                return c.status()

        print(f"python {sys.version.split()[0]}, {args.n} calls each, socket {sock}")
        r, lat = measure(args.n, lambda: kept.secrets.get_value(name=args.name))
        print(row("get_value, one kept-alive connection", r, lat))
        r, lat = measure(args.n, fresh_value)
        print(row("get_value, new connection per call", r, lat))
        r, lat = measure(args.n, kept.status)
        print(row("status, one kept-alive connection", r, lat))
        r, lat = measure(args.n, fresh_status)
        print(row("status, new connection per call", r, lat))
        print(f"connections opened by the kept-alive client: {kept.connections_opened}")
    finally:
        if stop:
            stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

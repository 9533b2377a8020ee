"""Restart: how soon `settlewatch up` has a SIGKILLed service back (SPEC §2: a new process
within 2 s), and how soon it is ready again.

`settlewatch up` runs on embedded parts on free ports. Each service is killed with SIGKILL
`--kills` times, each time after it has run long enough to count as healthy (a service that
dies young is restarted with backoff: a crash loop); for each kill the figures are the time
until `up` wrote the new process's PID and the time until its /readyz answers 200 again.
Reference measured in the same run: how long the same services took to become ready when `up`
started them cold. Last line:
``RESULT restart_ready_ratio=<p50 kill→ready / cold start→ready>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from pathlib import Path

import httpx

from bench.parts import settlewatch_up
from settlewatch.common.backoff import Backoff


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def pid(run_dir: Path, service: str) -> int | None:
    try:
        return int((run_dir / f"{service}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=5, help="kills per service")
    args = parser.parse_args()
    started = time.monotonic()
    with settlewatch_up() as stack:
        cold = cold_start(stack.ports, started)
        respawn, back = kills(stack.run_dir, stack.ports, args.kills)
    print(f"cold start → every service ready: {cold:.2f} s")
    print(
        f"SIGKILL → new process: p50 {statistics.median(respawn):.2f} s, "
        f"max {max(respawn):.2f} s (SPEC: within 2 s)"
    )
    print(f"SIGKILL → ready again: p50 {statistics.median(back):.2f} s, max {max(back):.2f} s")
    print(f"RESULT restart_ready_ratio={statistics.median(back) / cold:.2f}")


def cold_start(ports: dict[str, int], started: float) -> float:
    while not all(ready(port) for port in ports.values()):
        if time.monotonic() - started > 120:
            raise SystemExit("the stack did not come up in 120 s")
        time.sleep(0.05)
    return time.monotonic() - started


def kills(run_dir: Path, ports: dict[str, int], count: int) -> tuple[list[float], list[float]]:
    respawn: list[float] = []
    back: list[float] = []
    for _ in range(count):
        time.sleep(Backoff().stable)  # every service has run long enough to count as healthy
        for service, port in ports.items():
            old = pid(run_dir, service)
            assert old is not None
            os.kill(old, signal.SIGKILL)
            killed = time.monotonic()
            while pid(run_dir, service) in (None, old):
                time.sleep(0.005)
            respawn.append(time.monotonic() - killed)
            while not ready(port):
                time.sleep(0.02)
            back.append(time.monotonic() - killed)
    return respawn, back


if __name__ == "__main__":
    main()

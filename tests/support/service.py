"""One service as a real OS process (``settlewatch serve <name>``), for tests over real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port


@contextmanager
def served(name: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """Run the service until the block ends; yields its base URL once /readyz answers 200."""
    port = free_port()
    port_var = f"{name.upper()}_PORT"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "serve", name],
            env=os.environ | env | {port_var: str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} not ready:\n{log.read_text()}"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(15)


def spawn(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``settlewatch serve <name>`` on a free port, appending its output to `log`; the
    caller stops (or kills) it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "serve", name],
            env=os.environ | env | {f"{name.upper()}_PORT": str(free_port())},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

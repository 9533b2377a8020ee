"""The end-to-end fixture: ``settlewatch up`` as a real subprocess on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from settlewatch.cli.commands import SERVICES
from tests.support.ports import free_port


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    ports: dict[str, int]
    broker_port: int | None
    stdout: Path
    stderr: Path
    env: dict[str, str] = field(repr=False)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def pid(self, service: str) -> int:
        return int((self.data_dir / "run" / f"{service}.pid").read_text())

    def ready(self, service: str) -> bool:
        try:
            return httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until every service answers /readyz 200 and `up` printed its banner."""
        started = time.monotonic()
        pending = set(SERVICES)
        while pending or "Press Ctrl-C" not in self.stdout.read_text():
            if self.process.poll() is not None:
                pytest.fail(f"settlewatch up exited with {self.process.returncode}:\n{self.logs()}")
            pending = {name for name in pending if not self.ready(name)}
            if pending and time.monotonic() - started > timeout:
                pytest.fail(f"not ready after {timeout}s: {sorted(pending)}\n{self.logs()}")
            time.sleep(0.05)
        return time.monotonic() - started

    def logs(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()[-4000:]

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)


StartStack = Callable[..., RunningStack]


def launch(data_dir: Path, logs: Path, env: dict[str, str] | None = None) -> RunningStack:
    """Start ``settlewatch up`` on free ports, its output in `logs`; embedded parts unless
    DATABASE_URL etc. are passed in `env`."""
    ports = {name: free_port() for name in SERVICES}
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SETTLEWATCH_API_TOKENS")
    }
    full_env = base | {
        "SETTLEWATCH_DATA_DIR": str(data_dir),
        "INGEST_PORT": str(ports["ingest"]),
        "MATCHER_PORT": str(ports["matcher"]),
        "ALERTS_PORT": str(ports["alerts"]),
        "RECON_PORT": str(ports["recon"]),
        "CONSOLE_PORT": str(ports["console"]),
        "SETTLEWATCH_TOPIC_PARTITIONS": "4",
        # A consumer that (re)joins gets its partitions after about half of this.
        "MATCHER_SESSION_TIMEOUT": "PT2S",
        "ALERTS_SESSION_TIMEOUT": "PT2S",
    }
    broker_port = None
    if not (env and "KAFKA_BOOTSTRAP_SERVERS" in env):
        broker_port = free_port()
        full_env["BROKER_PORT"] = str(broker_port)
    full_env |= env or {}
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("up*.out")))
    stdout, stderr = logs / f"up{n}.out", logs / f"up{n}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "up"],
            env=full_env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    return RunningStack(process, data_dir, ports, broker_port, stdout, stderr, full_env)


@pytest.fixture
def start_stack(data_dir: Path, tmp_path: Path) -> Iterator[StartStack]:
    """Start ``settlewatch up``; embedded parts unless DATABASE_URL etc. are passed in `env`."""
    started: list[RunningStack] = []

    def start(env: dict[str, str] | None = None) -> RunningStack:
        stack = launch(data_dir, tmp_path, env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        if stack.process.poll() is None:
            stack.stop(signal.SIGTERM)

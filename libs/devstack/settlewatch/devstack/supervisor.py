"""Runs one service as an OS process and restarts it when it dies.

A service that dies after running a while is restarted at once (well within SPEC §2's 2 s); one
that keeps dying young is restarted with exponential backoff so a crash loop does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from settlewatch.common.backoff import Backoff
from settlewatch.devstack.processes import die_with_parent

__all__ = ["SupervisedProcess"]

_log = logging.getLogger(__name__)


class SupervisedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        pid_file: Path,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self._argv = list(argv)
        self._env = dict(env)
        self.pid_file = pid_file
        self._backoff = backoff or Backoff()
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._allowed = asyncio.Event()  # cleared while held (a dependency being restarted)
        self._allowed.set()
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0  # since `up` started: a crash loop shows as a growing count

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self._argv,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            # Own process group: a terminal Ctrl-C reaches only `up`, which stops us in order.
            process_group=0,
            preexec_fn=die_with_parent,
        )
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(f"{process.pid}\n")
        tmp.replace(self.pid_file)  # readers never see a half-written file
        _log.info("service started", extra={"child": self.name, "pid": process.pid})
        return process

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._allowed.wait()
            if self._stopping.is_set():
                break
            started = time.monotonic()
            self._process = await self._spawn()
            if self._stopping.is_set():  # stop() came while we were spawning
                self._signal(signal.SIGTERM)
            code = await self._process.wait()
            if self._stopping.is_set():
                break
            if not self._allowed.is_set():
                continue  # stopped on purpose by hold(): not a crash
            delay = self._backoff.next_delay(time.monotonic() - started)
            self.restarts += 1
            _log.warning(
                "service died; restarting",
                extra={
                    "child": self.name,
                    "exit_code": code,
                    "restart_in_s": delay,
                    "restarts": self.restarts,
                },
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def hold(self) -> None:
        """Stop the process (SIGKILL: the services are crash-safe) and do not restart it until
        release(): while `up` restarts a dependency the service needs to start afresh."""
        self._allowed.clear()
        self._signal(signal.SIGKILL)
        if self._process is not None:
            await self._process.wait()

    def release(self) -> None:
        self._allowed.set()

    def _signal(self, signum: int) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signum)

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the service drains and closes), SIGKILL if it outstays ``timeout``."""
        self._stopping.set()
        self._allowed.set()
        self._signal(signal.SIGTERM)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                _log.error("service ignored SIGTERM; killing", extra={"child": self.name})
                self.kill()
                await self._task
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Second Ctrl-C: no more waiting."""
        self._stopping.set()
        self._signal(signal.SIGKILL)

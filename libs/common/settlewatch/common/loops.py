"""A service's long-running loops, kept running: one that fails is restarted with backoff.

Crash-only per loop rather than per process: a loop that raises (its database or broker went
away, it lost its partitions, a bug) is logged with its stack, counted
(``settlewatch_loop_restarts_total``) and run again after a backoff (1 s, doubling while it keeps
failing young, at most 30 s), resuming from what it saved. The process stays up, so its metrics
and ``/readyz`` tell what is wrong: a loop is *failing* from its failure until a new run has lasted
``stable`` seconds, and ``/readyz`` answers 503 naming it meanwhile. A record that makes a loop
fail is never the reason (the loops dead-letter such records), so a loop that keeps failing is
an infrastructure fault or a bug, and pages (SettlewatchLoopFailing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from settlewatch.common.backoff import Backoff
from settlewatch.common.metrics import LOOP_FAILING, LOOP_RESTARTS

__all__ = ["Alarm", "Loops"]

_log = logging.getLogger(__name__)


@dataclass
class _Loop:
    name: str
    run: Callable[[], Awaitable[None]]
    backoff: Backoff
    running_since: float | None = None  # None while it waits to be restarted
    error: str | None = None  # of the last failure, until a run outlasts `stable`
    task: asyncio.Task[None] | None = None


class Loops:
    def __init__(
        self,
        *,
        first: float = 1.0,
        cap: float = 30.0,
        stable: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first, self._cap, self._stable = first, cap, stable
        self._clock = clock
        self._loops: dict[str, _Loop] = {}

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run()` in a task until stop(); a new call of `run` after each failure."""
        loop = _Loop(name, run, Backoff(self._first, self._cap, self._stable))
        self._loops[name] = loop
        LOOP_FAILING.labels(name).set_function(lambda: 0 if self._failing(loop) is None else 1)
        loop.task = asyncio.create_task(self._keep(loop), name=name)

    async def _keep(self, loop: _Loop) -> None:
        while True:
            loop.running_since = self._clock()
            try:
                await loop.run()
                raise RuntimeError("the loop returned")  # loops run until cancelled
            except Exception as exc:
                uptime = self._clock() - loop.running_since
                loop.running_since = None
                delay = loop.backoff.next_delay(uptime)
                loop.error = f"{type(exc).__name__}: {exc}"[:300]
                LOOP_RESTARTS.labels(loop.name).inc()
                _log.error(
                    "loop failed; restarting",
                    extra={"loop": loop.name, "uptime_s": round(uptime, 3), "restart_in_s": delay},
                    exc_info=exc,
                )
                await asyncio.sleep(delay)

    def _failing(self, loop: _Loop) -> str | None:
        since = loop.running_since
        if loop.error is not None and since is not None and self._clock() - since >= self._stable:
            loop.error = None  # a run outlasted `stable` since the last failure
        return loop.error

    def health(self) -> dict[str, str]:
        """Each loop's state for /readyz: ``ok``, or ``failing: <the last error>``."""
        return {
            name: "ok" if (error := self._failing(loop)) is None else f"failing: {error}"
            for name, loop in self._loops.items()
        }

    async def stop(self) -> None:
        """Cancel every loop and wait for them to finish their cleanup."""
        tasks = [loop.task for loop in self._loops.values() if loop.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in self._loops:
            LOOP_FAILING.remove(name)
        self._loops.clear()


class Alarm:
    """How a loop with nothing to do waits for its next round: `seconds`, or until `wake()` (new
    work was committed elsewhere in the process). A wake during a round is kept: the next round
    follows at once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # arrives as the event is set, and the loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()  # before the round it starts: a wake from now on is another round

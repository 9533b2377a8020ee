"""Restart delays for something that keeps failing: a service process, a service loop."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Restart delay: ``first`` after a failure, doubling while each run fails within ``stable``
    seconds of its start, capped at ``cap``; reset once a run outlives ``stable``."""

    def __init__(self, first: float = 0.1, cap: float = 30.0, stable: float = 10.0) -> None:
        self.first, self.cap, self.stable = first, cap, stable
        self._failures = 0

    def next_delay(self, uptime: float) -> float:
        self._failures = 1 if uptime >= self.stable else self._failures + 1
        return min(self.first * 2.0 ** (self._failures - 1), self.cap)

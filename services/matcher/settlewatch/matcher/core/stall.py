"""``pipeline.stalled`` (SPEC §5): the matcher clock stopped while the wall clock moved on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from settlewatch.matcher.core.model import Finding

__all__ = ["STALL_AFTER", "StallWatch"]

STALL_AFTER = timedelta(seconds=60)


@dataclass
class StallWatch:
    """Fed the matcher clock and the wall clock now and then; reports once when the matcher
    clock has not advanced for `after`, and resolves that when it moves again. Each stall is
    named after the clock it stopped at, so a later stall is a finding of its own."""

    subject: str
    after: timedelta = STALL_AFTER
    _clock: datetime | None = None
    _progress_at: datetime | None = None  # wall time of the last advance
    _stalled: bool = False
    _stalled_at: datetime | None = None  # the matcher clock the current stall stopped at

    def observe(self, clock: datetime | None, wall: datetime) -> Finding | None:
        if self._progress_at is None or (
            clock is not None and (self._clock is None or clock > self._clock)
        ):
            advanced = self._clock is not None and clock is not None and clock > self._clock
            self._clock, self._progress_at = clock, wall
            if self._stalled and advanced:
                self._stalled = False
                return self._finding("resolved", wall)
            return None
        if not self._stalled and wall - self._progress_at > self.after:
            self._stalled, self._stalled_at = True, self._clock
            return self._finding("open", wall)
        return None

    def _finding(self, state: str, wall: datetime) -> Finding:
        stopped = self._stalled_at.isoformat() if self._stalled_at else "never"
        return Finding(
            id=f"pipeline.stalled:{self.subject}:{stopped}",
            type="pipeline.stalled",
            state="open" if state == "open" else "resolved",
            at=wall,
            merchant_id=None,
            txn_id=None,
            evidence={
                "matcher_clock": self._stalled_at.isoformat() if self._stalled_at else None,
                "last_progress_at": self._progress_at.isoformat() if self._progress_at else None,
            },
        )

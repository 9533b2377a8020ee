"""Per-token rate limits (SPEC §14): a token that goes over `SETTLEWATCH_RATE_LIMIT` gets 429
with `Retry-After` until its window has room again. Counted per service process, in memory
(the `limits` library's sliding-window counter): with N instances behind a balancer a token gets
up to N times the limit. Health, readiness and metrics take no token and are never limited."""

from __future__ import annotations

import math
import time

from fastapi import HTTPException
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

__all__ = ["RateLimits", "parse_rate_limit"]


def parse_rate_limit(text: str) -> RateLimitItem:
    """`1000/second`, `100 per minute`… (the `limits` notation); a clear error otherwise."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate such as 1000/second or 60/minute") from exc


class RateLimits:
    def __init__(self, rate: RateLimitItem) -> None:
        self._rate = rate
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, token_id: str, cost: int = 1) -> None:
        """Count a request of the token — one, or as many as its work costs (never more than the
        whole rate, which would refuse it for good); 429 when it is over its rate."""
        if self._limiter.hit(self._rate, token_id, cost=min(cost, self._rate.amount)):
            return
        reset = self._limiter.get_window_stats(self._rate, token_id).reset_time
        raise HTTPException(
            429,
            f"this token is over its rate limit ({self._rate}); retry later",
            headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))},
        )

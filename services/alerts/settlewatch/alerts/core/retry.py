"""When to try a webhook delivery again (SPEC §7).

2xx is delivered. Anything else, or no answer within the attempt's deadline
(SETTLEWATCH_WEBHOOK_TIMEOUT), is retried 5 s, 5 min, 30 min, 2 h,
5 h, 10 h and 10 h after the attempt that failed; after the eighth attempt the delivery is
`failed` (still retryable by hand). A `Retry-After` on 429/503 is honoured: the next attempt is
never earlier than the receiver asked. 410 Gone disables the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = ["SCHEDULE", "Outcome", "next_step", "retry_after"]

SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# A receiver asking for more than the longest step is asked to wait only that long.
_MAX_RETRY_AFTER = SCHEDULE[-1]


@dataclass(frozen=True)
class Outcome:
    """What one attempt leads to: `delivered`, `retry` (at `next_attempt_at`), `failed`, or
    `disabled` (410: the endpoint is switched off, and this delivery failed)."""

    status: Literal["delivered", "retry", "failed", "disabled"]
    next_attempt_at: datetime | None = None


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The `Retry-After` header (delta seconds or an HTTP date) as a delay; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def next_step(
    attempts: int, status_code: int | None, now: datetime, retry_after_header: str | None = None
) -> Outcome:
    """The outcome of attempt number `attempts` (1 for the first), answered with `status_code`
    (None: no answer — timeout or connection error) at `now`."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome("delivered")
    if status_code == 410:
        return Outcome("disabled")
    if attempts > len(SCHEDULE):
        return Outcome("failed")
    delay = SCHEDULE[attempts - 1]
    if status_code in (429, 503):
        asked = retry_after(retry_after_header, now)
        if asked is not None:
            delay = max(delay, min(asked, _MAX_RETRY_AFTER))
    return Outcome("retry", now + delay)

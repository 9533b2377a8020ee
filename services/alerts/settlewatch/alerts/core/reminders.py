"""Reminders (SPEC §12): an open `settlement.overdue` or `settlement.failed` alert is re-sent to
its merchant every SETTLEWATCH_REMIND_EVERY, one digest per merchant, until it is resolved or its
payment expires.

Time is cut into periods of that length from the Unix epoch (P1D: each UTC midnight, 08:00 in
Beijing). At the start of a period a merchant's digest holds its alerts still open that were
created a whole period or more before: the first reminder comes one to two periods after the
alert, never minutes after it. The digest's id is the merchant's and the period's, so it is made
once per period whatever restarts or instances there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from settlewatch.common.events import EXPIRY
from settlewatch.common.findings import KINDS

__all__ = [
    "REMINDED",
    "Digest",
    "Open",
    "digest_id",
    "digests",
    "period_start",
]

REMINDED = frozenset(t for t, k in KINDS.items() if k.reminded)
MAX_ALERTS = 500  # per digest; `alert_count` says how many there were
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Open:
    """An unresolved alert of a merchant with a webhook, of a reminded type."""

    alert_id: str
    merchant_id: str
    created_at: datetime
    due_at: datetime | None  # its payment's deadline, from the evidence


@dataclass(frozen=True)
class Digest:
    delivery_id: str
    merchant_id: str
    period: datetime
    alert_ids: list[str]  # oldest first, at most MAX_ALERTS
    alert_count: int


def period_start(now: datetime, every: timedelta) -> datetime:
    """The start of the period `now` is in."""
    return _EPOCH + every * ((now - _EPOCH) // every)


def digest_id(merchant_id: str, period: datetime) -> str:
    """The webhook-id of a merchant's digest for a period: the same on every instance."""
    return f"rem_{merchant_id}_{period.strftime('%Y%m%dT%H%M%SZ')}"


def digests(alerts: Iterable[Open], now: datetime, every: timedelta) -> list[Digest]:
    """The digests of the period `now` is in, one per merchant with alerts to remind."""
    period = period_start(now, every)
    due: dict[str, list[Open]] = {}
    for alert in alerts:
        expired = alert.due_at is not None and period >= alert.due_at + EXPIRY
        if alert.created_at <= period - every and not expired:
            due.setdefault(alert.merchant_id, []).append(alert)
    result = []
    for merchant_id, mine in sorted(due.items()):
        mine.sort(key=lambda a: (a.created_at, a.alert_id))
        result.append(
            Digest(
                delivery_id=digest_id(merchant_id, period),
                merchant_id=merchant_id,
                period=period,
                alert_ids=[a.alert_id for a in mine[:MAX_ALERTS]],
                alert_count=len(mine),
            )
        )
    return result

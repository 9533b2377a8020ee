"""Grouping merchant alerts into webhook deliveries (SPEC §7).

Alerts of one merchant and type created within the group wait of the first one go out in one
delivery, at most 500 to a delivery: a bank outage sends a merchant one message, not hundreds.
A group is sent when its wait is over; alerts created after that start the next group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

__all__ = ["MAX_ALERTS", "Pending", "ready_groups"]

MAX_ALERTS = 500


@dataclass(frozen=True)
class Pending:
    """An alert waiting for its delivery."""

    alert_id: str
    merchant_id: str
    type: str
    created_at: datetime


def ready_groups(
    pending: Iterable[Pending], now: datetime, wait: timedelta, limit: int = MAX_ALERTS
) -> list[list[Pending]]:
    """The groups whose wait is over, each at most `limit` alerts, oldest first."""
    ready: list[list[Pending]] = []
    ordered = sorted(pending, key=lambda p: (p.merchant_id, p.type, p.created_at, p.alert_id))
    for _, alerts in groupby(ordered, key=lambda p: (p.merchant_id, p.type)):
        queue = list(alerts)
        closes: datetime | None = None  # end of the current group's wait
        while queue:
            if closes is None or queue[0].created_at > closes:
                if queue[0].created_at + wait > now:
                    break  # this group is still gathering
                closes = queue[0].created_at + wait
            group = [p for p in queue[:limit] if p.created_at <= closes]
            ready.append(group)
            queue = queue[len(group) :]
    return ready

"""`probable_cause` of a merchant alert (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

__all__ = ["Window", "probable_cause"]

Window = tuple[datetime, datetime]  # an announced maintenance window: starts_at, ends_at


def probable_cause(
    windows: Iterable[Window], since: datetime, now: datetime, incident_open: bool
) -> str:
    """`bank_maintenance` when the bank had an announced window between the transaction
    (`since`) and `now`, `bank_incident` when the bank has an open incident, else `unknown`."""
    if any(start <= now and end >= since for start, end in windows):
        return "bank_maintenance"
    if incident_open:
        return "bank_incident"
    return "unknown"

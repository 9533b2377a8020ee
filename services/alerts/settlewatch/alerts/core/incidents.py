"""`bank.incident` (SPEC §6): for one bank, at least max(20, 5 %) of the payments that fell due
in the last hour are overdue; it resolves when the overdue count drops below half that
threshold. Judged on the matcher's clock, so a lagging pipeline never opens one early."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

__all__ = ["SLIDING_WINDOW", "BankDue", "judge", "threshold"]

SLIDING_WINDOW = timedelta(hours=1)
MIN_OVERDUE = 20
RATIO = 0.05


@dataclass(frozen=True)
class BankDue:
    """Of one bank's payments that fell due in the sliding hour, how many are overdue now."""

    bank_code: str
    fell_due: int
    overdue: int


def threshold(fell_due: int) -> float:
    return max(MIN_OVERDUE, RATIO * fell_due)


def judge(due: BankDue, incident_open: bool) -> Literal["open", "resolve"] | None:
    """Open an incident, resolve the open one, or leave things as they are (hysteresis: the
    resolve threshold is half the open one, so a bank hovering at the line does not flap)."""
    limit = threshold(due.fell_due)
    if not incident_open and due.overdue >= math.ceil(limit):
        return "open"
    if incident_open and due.overdue < limit / 2:
        return "resolve"
    return None

"""A report line beside the payments it could be (SPEC §15: "what agrees and what differs"):
pure, from the line's evidence and the payments as the matcher's API returns them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from settlewatch.console.clients.matcher import Payment

__all__ = ["Comparison", "compare"]

Field = Literal["amount", "rrn", "terminal", "time"]
# A bank's line and the terminal's record of one sale are stamped by different clocks.
SAME_TIME = timedelta(minutes=10)


@dataclass(frozen=True)
class Comparison:
    field: Field
    line: Any  # the line's value (None: the bank did not say)
    payment: Any
    agrees: bool | None  # None: nothing to compare (one side does not say)


def compare(line: dict[str, Any], payment: Payment) -> list[Comparison]:
    """Amount (the line's gross, unsigned, in the same currency), RRN, terminal, time."""
    amount = abs(payment["amount_minor"]) if line.get("currency") == payment["currency"] else None
    pairs: list[tuple[Field, Any, Any]] = [
        ("amount", line.get("amount_minor"), amount),
        ("rrn", line.get("rrn"), payment["rrn"]),
        ("terminal", line.get("terminal_id"), payment["terminal_id"]),
    ]
    rows = [Comparison(f, a, b, None if a is None or b is None else a == b) for f, a, b in pairs]
    at = line.get("occurred_at")
    close = None
    if at:
        gap = datetime.fromisoformat(at) - datetime.fromisoformat(payment["occurred_at"])
        close = abs(gap) <= SAME_TIME
    rows.append(Comparison("time", at, payment["occurred_at"], close))
    return rows

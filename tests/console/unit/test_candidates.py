"""A line beside a candidate payment: what agrees, what differs, what one side does not say."""

from __future__ import annotations

from typing import Any

from settlewatch.console.candidates import compare
from settlewatch.console.clients.matcher import Payment

PAYMENT: dict[str, Any] = {
    "txn_id": "T1",
    "amount_minor": 12800,
    "currency": "CNY",
    "rrn": "532410283771",
    "terminal_id": "POS-1",
    "occurred_at": "2026-11-20T10:02:31+08:00",
}


def verdicts(line: dict[str, Any], payment: dict[str, Any] = PAYMENT) -> dict[str, bool | None]:
    return {c.field: c.agrees for c in compare(line, Payment(**payment))}  # type: ignore[typeddict-item]


def test_a_line_of_the_same_sale_agrees_on_everything_it_says() -> None:
    line = {
        "amount_minor": 12800,
        "currency": "CNY",
        "rrn": "532410283771",
        "terminal_id": "POS-1",
        "occurred_at": "2026-11-20T02:05:00+00:00",  # three minutes later, another clock
    }
    assert verdicts(line) == {"amount": True, "rrn": True, "terminal": True, "time": True}


def test_what_differs_is_named_and_what_a_side_does_not_say_is_neither() -> None:
    line = {"amount_minor": 12700, "currency": "CNY", "terminal_id": "POS-9"}
    assert verdicts(line) == {"amount": False, "rrn": None, "terminal": False, "time": None}
    later = {"occurred_at": "2026-11-20T11:02:31+08:00", "currency": "CNY"}
    assert verdicts(later)["time"] is False


def test_a_refund_compares_by_its_size_and_another_currency_not_at_all() -> None:
    refund = PAYMENT | {"amount_minor": -12800}
    assert verdicts({"amount_minor": 12800, "currency": "CNY"}, refund)["amount"] is True
    assert verdicts({"amount_minor": 12800, "currency": "USD"})["amount"] is None

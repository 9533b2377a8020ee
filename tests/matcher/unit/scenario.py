"""Building blocks for matcher core tests: events as the core receives them, and a runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from settlewatch.common.events import (
    CalendarYearLoaded,
    MaintenanceWindow,
    MerchantChanged,
    MerchantProfile,
    Settlement,
    TerminalChanged,
    Transaction,
)
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import Finding, PartitionState

Event = (
    Transaction
    | Settlement
    | MerchantChanged
    | MaintenanceWindow
    | CalendarYearLoaded
    | TerminalChanged
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def merchant(merchant_id: str = "M1", **profile: Any) -> MerchantChanged:
    fields = {"name": merchant_id, "settlement_bank": "ICBC", "settlement_cycle": "T1"} | profile
    return MerchantChanged(
        merchant_id=merchant_id,
        profile=MerchantProfile.model_validate_json(__import__("json").dumps(fields)),
    )


def terminal(terminal_id: str, merchant_id: str = "M1", **fields: Any) -> TerminalChanged:
    return TerminalChanged(terminal_id=terminal_id, merchant_id=merchant_id, **fields)


def sale(txn_id: str, occurred: str = "2025-11-20T10:00+08:00", **changes: Any) -> Transaction:
    txn: dict[str, Any] = {
        "txn_id": txn_id,
        "merchant_id": "M1",
        "terminal_id": "POS-1",
        "type": "sale",
        "amount_minor": 12800,
        "currency": "CNY",
        "occurred_at": at(occurred),
        "card_fingerprint": f"fp-{txn_id}",
        "rrn": "532410283771",
    }
    return txn | changes  # type: ignore[return-value]


def void(txn_id: str, original: str, occurred: str = "2025-11-20T10:05+08:00") -> Transaction:
    return sale(txn_id, occurred, type="void", original_txn_id=original)


def settlement(
    settlement_id: str,
    lines: list[tuple[str, int, int, int]],
    *,
    status: str = "settled",
    occurred: str = "2025-11-21T09:00+08:00",
    reason: str | None = None,
) -> Settlement:
    body: dict[str, Any] = {
        "settlement_id": settlement_id,
        "merchant_id": "M1",
        "bank_code": "ICBC",
        "status": status,
        "occurred_at": at(occurred),
        "items": [
            {"txn_id": t, "gross_minor": g, "fee_minor": f, "net_minor": n} for t, g, f, n in lines
        ],
    }
    if reason:
        body["failure_reason"] = reason
    return body  # type: ignore[return-value]


def paid(txn_id: str, **kwargs: Any) -> Settlement:
    """The on-time, right-amount settlement of a 128.00 CNY sale at 60 bps."""
    return settlement(f"S-{txn_id}", [(txn_id, 12800, 77, 12723)], **kwargs)


@dataclass
class Run:
    """A matcher fed interval by interval; `findings` collects everything it reported."""

    matcher: Matcher = field(default_factory=lambda: Matcher(PartitionState()))
    findings: list[Finding] = field(default_factory=list)

    def feed(self, *events: Event) -> Run:
        for event in events:
            apply(self.matcher, event)
        return self

    def tick(self, now: str | datetime) -> list[Finding]:
        new = self.matcher.tick(at(now) if isinstance(now, str) else now)
        self.findings += new
        return new

    def status(self, txn_id: str) -> str:
        payment = self.matcher.state.payments.get(txn_id)
        return payment.status if payment else "gone"

    def kinds(self) -> list[tuple[str, str]]:
        return [(f.type, f.state) for f in self.findings]


def apply(matcher: Matcher, event: Event) -> None:
    if isinstance(event, MerchantChanged):
        matcher.apply_merchant(event)
    elif isinstance(event, MaintenanceWindow):
        matcher.apply_window(event)
    elif isinstance(event, CalendarYearLoaded):
        matcher.apply_calendar(event)
    elif isinstance(event, TerminalChanged):
        matcher.apply_terminal(event)
    elif "settlement_id" in event:
        matcher.apply_settlement(event)  # type: ignore[arg-type]
    else:
        matcher.apply_transaction(event)  # type: ignore[arg-type]


ONE_SECOND = timedelta(seconds=1)

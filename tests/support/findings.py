"""Findings as the matcher publishes them, for tests and benchmarks of the alerts service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def overdue_finding(
    txn_id: str, merchant_id: str = "M1", bank: str = "ICBC", state: str = "open", **evidence: Any
) -> dict[str, Any]:
    """A `settlement.overdue` finding of a 128.00 CNY T+1 sale, with the evidence the matcher
    attaches."""
    return {
        "id": f"settlement.overdue:{txn_id}",
        "type": "settlement.overdue",
        "state": state,
        "at": datetime.now(UTC).isoformat(),
        "merchant_id": merchant_id,
        "txn_id": txn_id,
        "evidence": {
            "txn_id": txn_id,
            "terminal_id": "POS-1",
            "rrn": "532410283771",
            "stan": "000123",
            "auth_code": "A1B2C3",
            "occurred_at": "2026-11-20T02:02:00+00:00",
            "amount_minor": 12800,
            "currency": "CNY",
            "bank_code": bank,
            "settlement_cycle": "T1",
            "due_at": "2026-11-21T16:00:00+00:00",
            "settlement_id": None,
            "failure_reason": None,
        }
        | evidence,
    }

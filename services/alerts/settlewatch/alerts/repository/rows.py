"""Rows as the repositories return them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from settlewatch.alerts.core.lifecycle import AlertStatus, Note
from settlewatch.alerts.core.retry import Outcome
from settlewatch.alerts.repository.database import Row, loads

__all__ = ["ALERT_COLUMNS", "AlertRow", "Attempt", "AttemptRow", "DeliveryRow", "Job"]

ALERT_COLUMNS = (
    "alert_id, type, status, merchant_id, txn_id, txn_ids, bank_code, probable_cause, summary, "
    "evidence, notes, delivery_id, created_at, updated_at, pushed_at"
)
DeliveryStatus = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class AlertRow:
    alert_id: str
    type: str
    status: AlertStatus
    merchant_id: str | None
    txn_id: str | None
    txn_ids: list[str] | None
    bank_code: str | None
    probable_cause: str | None
    summary: str
    evidence: dict[str, Any]
    notes: list[Note]
    delivery_id: str | None
    created_at: datetime
    updated_at: datetime
    pushed_at: datetime | None  # last pushed to Alertmanager (on-call alerts)

    @classmethod
    def of(cls, r: Row) -> AlertRow:
        """From a row of ALERT_COLUMNS."""
        return cls(
            alert_id=r["alert_id"],
            type=r["type"],
            status=r["status"],
            merchant_id=r["merchant_id"],
            txn_id=r["txn_id"],
            txn_ids=loads(r["txn_ids"]),
            bank_code=r["bank_code"],
            probable_cause=r["probable_cause"],
            summary=r["summary"],
            evidence=loads(r["evidence"]),
            notes=loads(r["notes"]),
            delivery_id=r["delivery_id"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            pushed_at=r["pushed_at"],
        )


@dataclass(frozen=True)
class DeliveryRow:
    delivery_id: str
    merchant_id: str
    type: str
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    alert_ids: list[str]
    attempts: list[AttemptRow]


@dataclass(frozen=True)
class AttemptRow:
    attempt: int
    at: datetime
    url: str | None
    status_code: int | None
    latency_ms: float
    error: str | None


@dataclass(frozen=True)
class Job:
    """A delivery claimed for one attempt."""

    delivery_id: str
    merchant_id: str
    body: bytes
    attempt: int  # the number of this attempt, 1 for the first
    first_alert_at: datetime
    url: str | None  # None: the merchant has no webhook any more
    secrets: tuple[str, ...]  # the current secret first; a replaced one while it still signs
    disabled: bool  # the endpoint answered 410 Gone before


@dataclass(frozen=True)
class Attempt:
    """What became of a claimed delivery: an attempt made (`status_code` None: no answer), or
    none (`made` False: no webhook or a disabled endpoint), and the outcome."""

    job: Job
    outcome: Outcome
    made: bool
    at: datetime | None = None  # when the attempt was sent
    status_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = None

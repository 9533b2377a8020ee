"""The JSON the API and the webhooks show of alerts and deliveries (SPEC §4, §7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from settlewatch.alerts.core.grouping import Pending
from settlewatch.alerts.core.reminders import Digest
from settlewatch.alerts.repository.rows import AlertRow, DeliveryRow
from settlewatch.common.catalogue import DIGEST_TYPE, TEST_TYPE

__all__ = ["alert_json", "delivery_json", "digest_body", "test_body", "webhook_body"]


def alert_json(alert: AlertRow) -> dict[str, Any]:
    """An alert as the API and the webhooks show it."""
    return {
        "alert_id": alert.alert_id,
        "type": alert.type,
        "status": alert.status,
        "merchant_id": alert.merchant_id,
        "txn_id": alert.txn_id,
        "txn_ids": alert.txn_ids,
        "bank_code": alert.bank_code,
        "created_at": alert.created_at.isoformat(),
        "updated_at": alert.updated_at.isoformat(),
        "probable_cause": alert.probable_cause,
        "summary": alert.summary,
        "evidence": alert.evidence,
        "notes": alert.notes,
        "delivery_id": alert.delivery_id,
    }


def webhook_body(first: Pending, alerts: Sequence[AlertRow], now: datetime) -> bytes:
    """A delivery's body (Standard Webhooks): its alerts, of one merchant and type."""
    return orjson.dumps(
        {
            "type": first.type,
            "timestamp": now.isoformat(),
            "data": {"merchant_id": first.merchant_id, "alerts": [alert_json(a) for a in alerts]},
        }
    )


def digest_body(digest: Digest, alerts: Sequence[AlertRow], now: datetime) -> bytes:
    """A reminder's body: the merchant's alerts still open (at most 500; `alert_count` says how
    many there are)."""
    return orjson.dumps(
        {
            "type": DIGEST_TYPE,
            "timestamp": now.isoformat(),
            "data": {
                "merchant_id": digest.merchant_id,
                "alert_count": digest.alert_count,
                "alerts": [alert_json(a) for a in alerts],
            },
        }
    )


def test_body(merchant_id: str, now: datetime) -> bytes:
    """A test message's body: a delivery's shape with no alert, so that a merchant's endpoint
    can check its signature handling before a real alert comes."""
    return orjson.dumps(
        {
            "type": TEST_TYPE,
            "timestamp": now.isoformat(),
            "data": {"merchant_id": merchant_id, "alerts": []},
        }
    )


def delivery_json(delivery: DeliveryRow) -> dict[str, Any]:
    """A delivery with its alerts' ids and its attempts, as the delivery log shows it."""
    pending = delivery.status == "pending"
    return {
        "delivery_id": delivery.delivery_id,
        "merchant_id": delivery.merchant_id,
        "type": delivery.type,
        "status": delivery.status,
        "alert_ids": delivery.alert_ids,
        "created_at": delivery.created_at.isoformat(),
        "updated_at": delivery.updated_at.isoformat(),
        "next_attempt_at": _iso(delivery.next_attempt_at) if pending else None,
        "delivered_at": _iso(delivery.delivered_at),
        "last_error": delivery.last_error,
        "attempts": [
            {
                "attempt": a.attempt,
                "at": a.at.isoformat(),
                "url": a.url,
                "status_code": a.status_code,
                "latency_ms": round(a.latency_ms, 1),
                "error": a.error,
            }
            for a in delivery.attempts
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

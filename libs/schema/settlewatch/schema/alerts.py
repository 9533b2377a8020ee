"""The alerts service's tables (created by migration 0005; reminders' alert_ids by 0012)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from settlewatch.schema.reference import metadata

__all__ = ["alerts", "attempts", "deliveries", "disabled_endpoints"]


def _at(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("merchant_id", Text),
    Column("txn_id", Text),
    Column("txn_ids", JSONB),
    Column("bank_code", Text),
    Column("probable_cause", Text),
    Column("summary", Text, nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("notes", JSONB, nullable=False, server_default="[]"),
    Column("notify", Boolean, nullable=False),  # goes to the merchant's webhook
    Column("oncall", Boolean, nullable=False),  # goes to Alertmanager
    Column("delivery_id", Text),  # the one delivery it goes out in
    _at("created_at"),
    _at("updated_at"),
    _at("pushed_at", nullable=True),  # last push to Alertmanager while active
    _at("ends_pushed_at", nullable=True),  # its resolution (endsAt) was pushed
    info={"owner": "alerts"},
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("delivery_id", Text, primary_key=True),  # also the webhook-id
    Column("merchant_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending, delivered, failed
    Column("body", LargeBinary, nullable=False),  # signed as is by every attempt
    Column("alert_count", Integer, nullable=False),
    _at("first_alert_at"),
    _at("created_at"),
    _at("updated_at"),
    _at("next_attempt_at", nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _at("delivered_at", nullable=True),
    Column("last_error", Text),
    # A reminder's alerts (they stay in the deliveries that first told them); NULL otherwise.
    Column("alert_ids", ARRAY(Text)),
    info={"owner": "alerts"},
)

attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "delivery_id",
        Text,
        ForeignKey("deliveries.delivery_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt", Integer, primary_key=True),
    _at("at"),
    Column("url", Text, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text),
    info={"owner": "alerts"},
)

disabled_endpoints = Table(
    "disabled_endpoints",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("url", Text, primary_key=True),
    _at("disabled_at"),
    Column("delivery_id", Text, nullable=False),  # the delivery answered 410 Gone
    info={"owner": "alerts"},
)

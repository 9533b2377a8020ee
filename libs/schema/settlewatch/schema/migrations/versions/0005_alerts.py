"""The alerts service: alerts, webhook deliveries with a row per attempt, disabled endpoints;
and an index that lets on-call count a bank's payments by the time they fell due.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text),
        sa.Column("txn_id", sa.Text),
        sa.Column("txn_ids", JSONB),
        sa.Column("bank_code", sa.Text),
        sa.Column("probable_cause", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("notes", JSONB, nullable=False, server_default="[]"),
        sa.Column("notify", sa.Boolean, nullable=False),
        sa.Column("oncall", sa.Boolean, nullable=False),
        sa.Column("delivery_id", sa.Text),
        _at("created_at"),
        _at("updated_at"),
        _at("pushed_at", nullable=True),
        _at("ends_pushed_at", nullable=True),
    )
    op.execute("CREATE INDEX alerts_newest ON alerts (created_at DESC, alert_id DESC)")
    op.execute(
        "CREATE INDEX alerts_by_merchant ON alerts (merchant_id, created_at DESC, alert_id DESC)"
    )
    op.execute(
        "CREATE INDEX alerts_to_group ON alerts (created_at) WHERE notify AND delivery_id IS NULL"
    )
    op.execute(  # retention: resolved alerts are forgotten oldest first
        "CREATE INDEX alerts_resolved ON alerts (updated_at) WHERE status = 'resolved'"
    )
    op.execute(
        "CREATE INDEX alerts_by_delivery ON alerts (delivery_id) WHERE delivery_id IS NOT NULL"
    )
    # One open incident per bank, whichever alerts instance judges first.
    op.execute(
        "CREATE UNIQUE INDEX alerts_one_open_incident ON alerts (bank_code) "
        "WHERE type = 'bank.incident' AND status <> 'resolved'"
    )
    op.execute(
        "CREATE INDEX alerts_oncall_active ON alerts (bank_code) "
        "WHERE oncall AND ends_pushed_at IS NULL"
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.Text, primary_key=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("alert_count", sa.Integer, nullable=False),
        _at("first_alert_at"),
        _at("created_at"),
        _at("updated_at"),
        _at("next_attempt_at", nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _at("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text),
    )
    op.execute(
        "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX deliveries_newest ON deliveries (created_at DESC, delivery_id DESC)")
    op.execute("CREATE INDEX deliveries_ended ON deliveries (updated_at) WHERE status <> 'pending'")
    op.execute(
        "CREATE INDEX deliveries_by_merchant "
        "ON deliveries (merchant_id, created_at DESC, delivery_id DESC)"
    )
    op.create_table(
        "delivery_attempts",
        sa.Column(
            "delivery_id",
            sa.Text,
            sa.ForeignKey("deliveries.delivery_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attempt", sa.Integer, primary_key=True),
        _at("at"),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "disabled_endpoints",
        sa.Column("merchant_id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, primary_key=True),
        _at("disabled_at"),
        sa.Column("delivery_id", sa.Text, nullable=False),
    )
    # bank.incident counts, per bank, the payments that fell due in the sliding hour.
    op.execute(
        "CREATE INDEX matcher_payments_fell_due ON matcher_payments (due_at) "
        "INCLUDE (bank_code, status)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX matcher_payments_fell_due")
    for table in ("disabled_endpoints", "delivery_attempts", "deliveries", "alerts"):
        op.drop_table(table)

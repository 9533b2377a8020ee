"""Windowed matcher state: payments partitioned by business date (one table per day, dropped
whole when its window closes), reference data saved apart from the per-batch partition state.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = """
    txn_id           text        NOT NULL,
    business_date    date        NOT NULL,
    partition        integer     NOT NULL,
    merchant_id      text        NOT NULL,
    kind             text        NOT NULL,
    status           text        NOT NULL,
    bank_code        text        NOT NULL,
    currency         text        NOT NULL,
    amount_minor     bigint      NOT NULL,
    occurred_at      timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    card_fingerprint text        NOT NULL,
    body             jsonb       NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, business_date)
"""


def upgrade() -> None:
    op.execute("ALTER TABLE matcher_payments RENAME TO matcher_payments_0003")
    for index in ("by_partition", "by_merchant", "due"):
        op.execute(f"DROP INDEX matcher_payments_{index}")
    op.execute(f"CREATE TABLE matcher_payments ({_COLUMNS}) PARTITION BY RANGE (business_date)")
    # The timer's deadline index, the expiry index, the summary's, and recent sales by time.
    op.execute(
        "CREATE INDEX matcher_payments_due ON matcher_payments (partition, due_at) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX matcher_payments_unsettled ON matcher_payments (partition, due_at) "
        "WHERE status IN ('overdue', 'failed')"
    )
    op.execute(
        "CREATE INDEX matcher_payments_by_merchant ON matcher_payments (merchant_id, status)"
    )
    op.execute(
        "CREATE INDEX matcher_payments_sales ON matcher_payments (partition, occurred_at) "
        "WHERE kind = 'sale'"
    )
    conn = op.get_bind()
    days = conn.execute(sa.text("SELECT DISTINCT business_date FROM matcher_payments_0003"))
    for (day,) in days:
        op.execute(
            f"CREATE TABLE matcher_payments_d{day:%Y%m%d} PARTITION OF matcher_payments "
            f"FOR VALUES FROM ('{day}') TO ('{day}'::date + 1)"
        )
    op.execute(
        """
        INSERT INTO matcher_payments
        SELECT txn_id, business_date, partition, merchant_id, body->>'kind', status, bank_code,
               currency, amount_minor, occurred_at, due_at, body->>'card_fingerprint', body,
               updated_at
        FROM matcher_payments_0003
        """
    )
    op.execute("DROP TABLE matcher_payments_0003")

    op.add_column(
        "matcher_partitions",
        sa.Column("reference", sa.dialects.postgresql.JSONB, nullable=False, server_default="{}"),
    )
    rows = conn.execute(sa.text("SELECT partition, body, clock FROM matcher_partitions"))
    for partition, body, clock in rows.all():
        reference = {"merchants": body.pop("merchants", {}), "windows": body.pop("windows", {})}
        body.pop("conflicts", None)  # now kept on each payment; re-reports dedupe in the outbox
        body["reported_duplicates"] = []  # ditto
        body["early_cancellations"] = {
            original: [void, (clock.isoformat() if clock else "1970-01-01T00:00:00+00:00")]
            for original, void in body.get("early_cancellations", {}).items()
        }
        conn.execute(
            sa.text(
                "UPDATE matcher_partitions SET body = CAST(:body AS jsonb), "
                "reference = CAST(:reference AS jsonb) WHERE partition = :partition"
            ),
            {"body": json.dumps(body), "reference": json.dumps(reference), "partition": partition},
        )


def downgrade() -> None:
    raise NotImplementedError("the windowed state is not converted back; restore a backup")

"""Terminals (SPEC §12): the registry written by ingest, and the matcher's read function of a
merchant's books for a day, per terminal: what was expected from each terminal's own payments,
and what the bank settled under each terminal (its report's terminal, else the payment's). And
the settlement-file lines of a payment, by its txn_id, for its evidence.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# A payment's row as the matcher stores it (matcher.codec: the Payment dataclass as JSON); its
# bank's last word is the settlement with the latest confirmation time (Payment.latest_settlement).
BOOKS = """
CREATE FUNCTION matcher_read_books(merchant text, day date)
RETURNS TABLE (terminal_id text, currency text, sales_count bigint, sales_minor bigint,
               refunds_count bigint, refunds_minor bigint, fees_minor bigint,
               expected_net_minor bigint, settled_net_minor bigint, unsettled_count bigint)
LANGUAGE sql STABLE AS $$
WITH p AS (
    SELECT m.kind, m.status, m.currency, m.amount_minor,
           (m.body ->> 'expected_net_minor')::bigint AS expected_net,
           (m.body -> 'evidence') ->> 'terminal_id' AS own_terminal,
           s.net AS settled_net, s.terminal AS booked_terminal
    FROM matcher_payments m
    LEFT JOIN LATERAL (
        SELECT CASE WHEN f ->> 'status' = 'settled' THEN (f ->> 'net_minor')::bigint END AS net,
               f ->> 'terminal_id' AS terminal
        FROM jsonb_each(m.body -> 'settlements') AS e(id, f)
        ORDER BY (f ->> 'occurred_at')::timestamptz DESC, e.id DESC LIMIT 1
    ) s ON true
    WHERE m.merchant_id = merchant AND m.business_date = day
), sides AS (
    SELECT own_terminal AS terminal_id, currency,
           (kind = 'sale')::int AS sale,
           CASE WHEN kind = 'sale' THEN amount_minor END AS sale_minor,
           (kind = 'refund')::int AS refund,
           CASE WHEN kind = 'refund' THEN amount_minor END AS refund_minor,
           CASE WHEN kind = 'sale' THEN amount_minor - expected_net END AS fee,
           coalesce(expected_net, amount_minor) AS expected, NULL::bigint AS settled,
           (settled_net IS NULL)::int AS unsettled
    FROM p WHERE status <> 'cancelled'
    UNION ALL
    SELECT coalesce(booked_terminal, own_terminal), currency, 0, NULL, 0, NULL, NULL, NULL,
           settled_net, 0
    FROM p WHERE settled_net IS NOT NULL
)
SELECT terminal_id, currency, sum(sale)::bigint, coalesce(sum(sale_minor), 0)::bigint,
       sum(refund)::bigint, coalesce(sum(refund_minor), 0)::bigint, coalesce(sum(fee), 0)::bigint,
       coalesce(sum(expected), 0)::bigint, coalesce(sum(settled), 0)::bigint,
       sum(unsettled)::bigint
FROM sides GROUP BY terminal_id, currency ORDER BY terminal_id, currency
$$
"""


def upgrade() -> None:
    op.create_table(
        "terminals",
        sa.Column("terminal_id", sa.Text, primary_key=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("region", sa.Text),
        sa.Column("replaces", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("terminals_by_merchant", "terminals", ["merchant_id"])
    op.execute(BOOKS)
    op.create_index(
        "settlement_file_records_by_txn",
        "settlement_file_records",
        ["txn_id"],
        postgresql_where=sa.text("txn_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("settlement_file_records_by_txn", "settlement_file_records")
    op.execute("DROP FUNCTION matcher_read_books(text, date)")
    op.drop_table("terminals")

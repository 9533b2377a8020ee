"""Settlement files (SPEC §9): settlement accounts, CSV mappings, files and their records,
payouts; the matcher's read view of payments by their card-network references
(``matcher_read_payments``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _times() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "settlement_accounts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("number", sa.Text, nullable=False, unique=True),
        sa.Column("body", JSONB, nullable=False),
        *_times(),
    )
    op.create_table(
        "file_mappings",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("mapping", JSONB, nullable=False),
        *_times(),
    )
    op.create_table(
        "settlement_files",
        sa.Column("file_id", sa.Text, primary_key=True),
        sa.Column("sha256", sa.Text, nullable=False, unique=True),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("summary", JSONB, nullable=False, server_default="{}"),
        sa.Column("errors", JSONB, nullable=False, server_default="[]"),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "settlement_file_records",
        sa.Column("file_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("problems", JSONB, nullable=False, server_default="[]"),
        sa.Column("match_status", sa.Text),
        sa.Column("match_rule", sa.Text),
        sa.Column("txn_id", sa.Text),
        sa.Column("merchant_id", sa.Text),
        sa.Column("matched_at", sa.DateTime(timezone=True)),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    # The matching loop's work: lines still to match, and matches still to publish.
    op.create_index(
        "settlement_file_records_unmatched",
        "settlement_file_records",
        ["file_id", "seq"],
        postgresql_where=sa.text("match_status = 'unmatched'"),
    )
    op.create_index(
        "settlement_file_records_unpublished",
        "settlement_file_records",
        ["file_id", "seq"],
        postgresql_where=sa.text("match_status = 'matched' AND published_at IS NULL"),
    )
    op.create_table(
        "payouts",
        sa.Column("payout_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("file_id", sa.Text, nullable=False),
        sa.Column("merchant_id", sa.Text),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("value_date", sa.Date),
        sa.Column("reference", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("due_on", sa.Date),
        sa.Column("credit_id", sa.Text, unique=True),
        sa.Column("credit", JSONB),
        *_times(),
    )
    op.create_index(
        "payouts_open", "payouts", ["due_on"], postgresql_where=sa.text("status = 'expected'")
    )
    op.create_index("payouts_by_merchant", "payouts", ["merchant_id", "value_date"])
    # The matcher's read interface for matching report lines (SPEC §9 rules): a payment by its
    # card-network references. Expression indexes on the partitioned table reach every day's
    # table; PostgreSQL inlines the view, so they serve its queries.
    op.execute(
        "CREATE INDEX matcher_payments_by_rrn ON matcher_payments "
        "(((body -> 'evidence') ->> 'rrn'))"
    )
    op.execute(
        "CREATE INDEX matcher_payments_by_stan ON matcher_payments "
        "(((body -> 'evidence') ->> 'stan'))"
    )
    op.execute(
        "CREATE VIEW matcher_read_payments AS SELECT txn_id, merchant_id, business_date, "
        "bank_code, currency, amount_minor, status, "
        "(body -> 'evidence') ->> 'terminal_id' AS terminal_id, "
        "(body -> 'evidence') ->> 'rrn' AS rrn, "
        "(body -> 'evidence') ->> 'auth_code' AS auth_code, "
        "(body -> 'evidence') ->> 'stan' AS stan "
        "FROM matcher_payments"
    )


def downgrade() -> None:
    op.execute("DROP VIEW matcher_read_payments")
    op.execute("DROP INDEX matcher_payments_by_stan")
    op.execute("DROP INDEX matcher_payments_by_rrn")
    op.drop_table("payouts")
    op.drop_table("settlement_file_records")
    op.drop_table("settlement_files")
    op.drop_table("file_mappings")
    op.drop_table("settlement_accounts")

"""Settlement files' exceptions queue and findings outbox (SPEC §9).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_exceptions",
        sa.Column("exception_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("file_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer),
        sa.Column("payout_id", sa.Text),
        sa.Column("merchant_id", sa.Text),
        sa.Column("currency", sa.Text),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("finding_ids", JSONB, nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("history", JSONB, nullable=False, server_default="[]"),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The queue as an operator reads it: by status and age.
    op.create_index("file_exceptions_queue", "file_exceptions", ["status", "opened_at"])
    op.create_table(
        "file_findings",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("merchant_id", sa.Text),
        sa.Column("body", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "file_findings_unpublished",
        "file_findings",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("file_findings")
    op.drop_table("file_exceptions")

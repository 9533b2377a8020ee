"""Settlement files (SPEC §9): settlement accounts, CSV mappings, files and their records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _times() -> list[sa.Column]:  # type: ignore[type-arg]
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
    )


def downgrade() -> None:
    op.drop_table("settlement_file_records")
    op.drop_table("settlement_files")
    op.drop_table("file_mappings")
    op.drop_table("settlement_accounts")

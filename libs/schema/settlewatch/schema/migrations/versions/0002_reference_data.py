"""Reference data the acquirer pushes: merchant profiles and bank maintenance windows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.Text, primary_key=True),
        sa.Column("settlement_bank", sa.Text, nullable=False),
        sa.Column("profile", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("merchants_by_bank", "merchants", ["settlement_bank"])
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("bank_code", sa.Text, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "maintenance_windows_by_bank", "maintenance_windows", ["bank_code", "starts_at"]
    )


def downgrade() -> None:
    op.drop_table("maintenance_windows")
    op.drop_table("merchants")

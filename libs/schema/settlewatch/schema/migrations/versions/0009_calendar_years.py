"""Loaded calendar years, every version kept (SPEC §10).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_years",
        sa.Column("calendar", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("holidays", ARRAY(sa.Date), nullable=False),
        sa.Column("workdays", ARRAY(sa.Date), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("loaded_by", sa.Text, nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("calendar_years")

"""Findings decided in the database (the deadline fast path) are published and marked published
by range: each outbox row gets an ordinal (`seq`) and the partition that wrote it, so one
statement marks a round's findings, whatever their number.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "matcher_outbox",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
    )
    op.add_column("matcher_outbox", sa.Column("partition", sa.Integer))
    op.create_index("matcher_outbox_by_seq", "matcher_outbox", ["partition", "seq"])


def downgrade() -> None:
    op.drop_index("matcher_outbox_by_seq", "matcher_outbox")
    op.drop_column("matcher_outbox", "partition")
    op.drop_column("matcher_outbox", "seq")

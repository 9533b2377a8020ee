"""Reminders (SPEC §12): a digest is a delivery whose alerts stay in the deliveries that first
told them, so it lists its alerts itself (`alert_ids`); the open alerts to remind are found by a
partial index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("alert_ids", ARRAY(sa.Text)))
    op.create_index(
        "alerts_to_remind",
        "alerts",
        ["merchant_id", "created_at"],
        postgresql_where=sa.text(
            "notify AND status <> 'resolved' "
            "AND type IN ('settlement.overdue', 'settlement.failed')"
        ),
    )


def downgrade() -> None:
    op.drop_index("alerts_to_remind", "alerts")
    op.drop_column("deliveries", "alert_ids")

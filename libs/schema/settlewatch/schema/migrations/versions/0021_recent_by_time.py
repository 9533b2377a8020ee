"""Recent sales and refunds by time: the matcher's duplicate and region indexes no longer hold a
txn_id per transaction (issue 32) but when it occurred, and the tick reads the sales and refunds
of those times. The index of sales by time becomes one of sales and refunds (a refund shows its
terminal's region too); it also serves the restart's read of the last hour's.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX matcher_payments_recent ON matcher_payments (partition, occurred_at) "
        "WHERE kind IN ('sale', 'refund')"
    )
    op.execute("DROP INDEX matcher_payments_sales")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX matcher_payments_sales ON matcher_payments (partition, occurred_at) "
        "WHERE kind = 'sale'"
    )
    op.execute("DROP INDEX matcher_payments_recent")

"""Indexes for the payment search of the ops desk (SPEC §12): newest first, by merchant, by
terminal and overall (the rrn one exists, 0007); on the partitioned table, so every day's table
has them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The expression is the one the search queries use, character for character, so that the
# planner matches them (matcher.search).
TERMINAL = "((body -> 'evidence') ->> 'terminal_id')"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX matcher_payments_newest ON matcher_payments (occurred_at DESC, txn_id DESC)"
    )
    op.execute(
        "CREATE INDEX matcher_payments_newest_by_merchant ON matcher_payments "
        "(merchant_id, occurred_at DESC, txn_id DESC)"
    )
    op.execute(
        "CREATE INDEX matcher_payments_newest_by_terminal ON matcher_payments "
        f"({TERMINAL}, occurred_at DESC, txn_id DESC)"
    )


def downgrade() -> None:
    for name in ("newest_by_terminal", "newest_by_merchant", "newest"):
        op.execute(f"DROP INDEX matcher_payments_{name}")

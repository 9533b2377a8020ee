"""The matcher's read interface for other services: views over its tables, so that on-call
(alerts service) reads what it needs without depending on how the matcher stores payments.

- ``matcher_read_clock(clock)``: how far the settlement feed is known to be complete (the
  oldest partition clock).
- ``matcher_read_due(bank_code, due_at, overdue)``: every payment that can fall due (cancelled
  ones cannot), with whether it is overdue now. The index ``matcher_payments_fell_due`` (0005)
  serves its queries by ``due_at``; PostgreSQL inlines the view, so it still applies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE VIEW matcher_read_clock AS SELECT min(clock) AS clock FROM matcher_partitions"
    )
    op.execute(
        "CREATE VIEW matcher_read_due AS "
        "SELECT bank_code, due_at, status = 'overdue' AS overdue FROM matcher_payments "
        "WHERE status <> 'cancelled'"
    )


def downgrade() -> None:
    op.execute("DROP VIEW matcher_read_due")
    op.execute("DROP VIEW matcher_read_clock")

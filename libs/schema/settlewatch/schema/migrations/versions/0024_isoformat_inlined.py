"""``matcher_isoformat`` (0014) declared STABLE, as what it calls is (``to_char`` depends on the
session's settings): PostgreSQL inlines an SQL function only when its body is no more volatile
than it is declared, so the IMMUTABLE one was called as a function, ≈ 4 µs a time against ≈ 1 µs
inlined — twice for each finding the deadline fast path writes (docs/benchmarks.md).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER FUNCTION matcher_isoformat(timestamptz, integer) STABLE")


def downgrade() -> None:
    op.execute("ALTER FUNCTION matcher_isoformat(timestamptz, integer) IMMUTABLE")

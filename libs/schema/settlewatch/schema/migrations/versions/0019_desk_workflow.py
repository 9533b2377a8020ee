"""The desk's workflow (issue 31, SPEC §16): an exception can be given to a person (a free-text
name, with an index for the open ones of each), and a write-off above the approval limit waits
for a second token, the proposer's kept to refuse it approving its own.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("file_exceptions", sa.Column("assignee", sa.Text, nullable=True))
    op.add_column("file_exceptions", sa.Column("proposed_by", sa.Text, nullable=True))
    op.create_index(
        "file_exceptions_open_assignee",
        "file_exceptions",
        ["assignee", "exception_id"],
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    # A write-off waiting for its approval goes back to the queue: the earlier code knows no
    # such status.
    op.execute("UPDATE file_exceptions SET status = 'open' WHERE status = 'pending_approval'")
    op.drop_index("file_exceptions_open_assignee", "file_exceptions")
    op.drop_column("file_exceptions", "proposed_by")
    op.drop_column("file_exceptions", "assignee")

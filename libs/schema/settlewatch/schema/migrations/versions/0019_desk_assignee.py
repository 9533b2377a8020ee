"""An exception can be assigned to a person (issue 31, SPEC §16): a free-text name, filtered on
by the desk, an index for the open ones of each person.

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
    op.create_index(
        "file_exceptions_open_assignee",
        "file_exceptions",
        ["assignee", "exception_id"],
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("file_exceptions_open_assignee", "file_exceptions")
    op.drop_column("file_exceptions", "assignee")

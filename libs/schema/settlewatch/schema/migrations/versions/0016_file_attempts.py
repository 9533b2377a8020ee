"""A rejected settlement file may be sent again (issue 28): only an imported file is one per
SHA-256; each later attempt at the same bytes is a row of its own, linked to the one before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("settlement_files", sa.Column("previous_file_id", sa.Text, nullable=True))
    op.drop_constraint("settlement_files_sha256_key", "settlement_files", type_="unique")
    op.create_index(
        "settlement_files_imported_sha256",
        "settlement_files",
        ["sha256"],
        unique=True,
        postgresql_where=sa.text("status = 'imported'"),
    )
    op.create_index("settlement_files_sha256", "settlement_files", ["sha256"])


def downgrade() -> None:
    # Only the latest attempt at each file's bytes can stay: the earlier ones are rejections
    # that a later one replaced.
    op.execute(
        "DELETE FROM settlement_files f WHERE EXISTS (SELECT 1 FROM settlement_files later "
        "WHERE later.previous_file_id = f.file_id)"
    )
    op.drop_index("settlement_files_sha256", "settlement_files")
    op.drop_index("settlement_files_imported_sha256", "settlement_files")
    op.create_unique_constraint("settlement_files_sha256_key", "settlement_files", ["sha256"])
    op.drop_column("settlement_files", "previous_file_id")

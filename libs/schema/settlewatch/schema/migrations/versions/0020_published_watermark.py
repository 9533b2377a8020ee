"""Findings published by watermark (issue 32): a partition's outbox rows are written by one
owner at a time, in `seq` order, and published in that order, so "published" is one number per
partition — the highest `seq` sent — instead of a row update per finding (≈ 8 µs each of a
million-deadline storm). Rows without a partition (the stall watch's, a few a day, written by
any instance) keep `published_at`. `matcher_read_unpublished` says what is still to send, for
readers outside the matcher (the dev stack's key rotation waits for it to be empty): a range of
the (partition, seq) index per partition, so asking whether it is empty costs a probe each.

The watermark starts below the partition's first unpublished row, so nothing written before the
migration is skipped; the index of unpublished rows now covers only the partition-less ones.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matcher_published",
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.execute(
        """
        INSERT INTO matcher_published (partition, seq)
        SELECT partition, coalesce(min(seq) FILTER (WHERE published_at IS NULL) - 1, max(seq))
        FROM matcher_outbox WHERE partition IS NOT NULL GROUP BY partition
        """
    )
    op.drop_index("matcher_outbox_unpublished", "matcher_outbox")
    op.create_index(
        "matcher_outbox_unpublished",
        "matcher_outbox",
        ["seq"],
        postgresql_where=sa.text("partition IS NULL AND published_at IS NULL"),
    )
    op.execute(
        """
        CREATE VIEW matcher_read_unpublished AS
        SELECT key, merchant_id, body, seq, partition FROM matcher_outbox
        WHERE partition IS NULL AND published_at IS NULL
        UNION ALL
        SELECT o.key, o.merchant_id, o.body, o.seq, o.partition
        FROM matcher_partitions p LEFT JOIN matcher_published w ON w.partition = p.partition
        CROSS JOIN LATERAL (
            SELECT * FROM matcher_outbox
            WHERE partition = p.partition AND seq > coalesce(w.seq, 0)
        ) o
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW matcher_read_unpublished")
    op.execute(
        """
        UPDATE matcher_outbox o SET published_at = now() FROM matcher_published w
        WHERE o.partition = w.partition AND o.seq <= w.seq AND o.published_at IS NULL
        """
    )
    op.drop_index("matcher_outbox_unpublished", "matcher_outbox")
    op.create_index(
        "matcher_outbox_unpublished",
        "matcher_outbox",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("matcher_published")

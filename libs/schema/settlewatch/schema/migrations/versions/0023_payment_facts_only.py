"""A payment's state apart from its facts (issue 32), step 2 of 2: contract.

Run once no matcher of the release before 0022 runs (docs/operations.md, "Upgrading"): the
mirroring trigger goes, and with it the old state columns of `matcher_payments` and their
indexes; what is left is the facts, written once, and the search indexes. Dropping a column only
changes the catalogue, so this takes a moment whatever the number of payments.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from settlewatch.schema import revision_module

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    expand = revision_module("0022_payment_states")
    op.execute("DROP TRIGGER matcher_payment_states_mirror ON matcher_payments")
    op.execute("DROP FUNCTION matcher_payment_states_mirror()")
    op.execute("DROP FUNCTION matcher_payment_states_day(date)")
    # The old columns' indexes (0004, 0005), as 0022 made them on matcher_payment_states.
    for name in expand.STATE_INDEXES:
        op.execute(f"DROP INDEX matcher_payments_{name}")
    dropped = [*expand.MOVED, "updated_at"]
    op.execute(f"ALTER TABLE matcher_payments {', '.join(f'DROP COLUMN {c}' for c in dropped)}")


def downgrade() -> None:
    expand = revision_module("0022_payment_states")
    added = [f"ADD COLUMN {name} {kind}" for name, kind in expand.MOVED.items()]
    added.append("ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()")
    op.execute(f"ALTER TABLE matcher_payments {', '.join(added)}")
    op.execute(expand.REFILL)
    for name, on in expand.STATE_INDEXES.items():
        op.execute(f"CREATE INDEX matcher_payments_{name} ON matcher_payments {on}")
    expand.mirror()

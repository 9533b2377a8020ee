"""A payment's state apart from its facts (issue 32), step 1 of 2: expand, online.

A deadline firing changed a payment's status: a non-HOT update of the whole row over the table's
twelve indexes, most of them the search's on facts that never change. The state the matcher
changes (status, deadline, flags, settlements, history) moves to `matcher_payment_states`, one
table per business date like the facts, with only the indexes the timer, the totals and the
due view need; the facts stay in `matcher_payments` with the search indexes.

This step runs while the matchers of the release before keep running (they write the old
columns): it creates the new table, lets the old columns be empty (a newer matcher writes facts
only), mirrors every write of an older matcher into the new table by a trigger, copies the
existing payments in batches of `SETTLEWATCH_MIGRATION_BATCH` rows (default 20 000), each its
own transaction, so no matcher waits on more than one batch, and points the read views at the
new table. It can be run again after an interruption. Step 2 (0023) drops the old columns once
no matcher of the release before runs (docs/operations.md, "Upgrading").

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

from settlewatch.schema import revision_module

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# The state of a payment (schema.matcher.payment_states), under the names the old columns have:
# the key, the partition and the facts the totals group by (copied), then what changes.
KEY_AND_COPIED = [
    "txn_id",
    "business_date",
    "partition",
    "merchant_id",
    "bank_code",
    "currency",
    "amount_minor",
]
MOVED = {
    "status": "text",
    "due_at": "timestamptz",
    "due_offset": "integer",
    "base_due_at": "timestamptz",
    "base_due_offset": "integer",
    "deadline_basis": "text",
    "reported": "text",
    "overdue_fired": "boolean",
    "unfired": "boolean",
    "deadline_moves": "integer",
    "cancelled": "boolean",
    "refunds_exceeded": "boolean",
    "paid_after_void": "boolean",
    "refunds": "jsonb",
    "conflicts": "jsonb",
    "settlements": "jsonb",
    "history": "jsonb",
}
_COLUMNS = ", ".join([*KEY_AND_COPIED, *MOVED, "updated_at"])

_STATES = f"""
CREATE TABLE IF NOT EXISTS matcher_payment_states (
    txn_id text NOT NULL, business_date date NOT NULL, partition integer NOT NULL,
    merchant_id text NOT NULL, bank_code text NOT NULL, currency text NOT NULL,
    amount_minor bigint NOT NULL,
    {", ".join(f"{name} {kind} NOT NULL" for name, kind in MOVED.items())},
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, business_date)
) PARTITION BY RANGE (business_date)
"""
# The timer's (the same statuses as matcher.core.model's AWAITING_DEADLINE and AWAITING_EXPIRY:
# tests/matcher/integration/test_store.py), the due view's and the merchant summary's.
STATE_INDEXES = {
    "due": "(partition, due_at) WHERE status = 'pending'",
    "unsettled": "(partition, due_at) WHERE status IN ('overdue', 'failed')",
    "fell_due": "(due_at) INCLUDE (bank_code, status)",
    "by_merchant": "(merchant_id, status)",
}
# A day's table of the states, made when missing (a matcher of the release before makes only the
# facts' day tables); two writers making the same day: the second finds it made.
_STATES_DAY = """
CREATE OR REPLACE FUNCTION matcher_payment_states_day(day date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass(format('matcher_payment_states_d%s', to_char(day, 'YYYYMMDD'))) IS NULL THEN
        BEGIN
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS matcher_payment_states_d%s '
                'PARTITION OF matcher_payment_states FOR VALUES FROM (%L) TO (%L)',
                to_char(day, 'YYYYMMDD'), day, day + 1);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN NULL;
        END;
    END IF;
END $$
"""
_MIRROR = f"""
CREATE OR REPLACE FUNCTION matcher_payment_states_mirror() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM matcher_payment_states_day(NEW.business_date);
    INSERT INTO matcher_payment_states ({_COLUMNS})
    VALUES ({", ".join(f"NEW.{c}" for c in [*KEY_AND_COPIED, *MOVED, "updated_at"])})
    ON CONFLICT (txn_id, business_date) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in [*MOVED, "updated_at"])};
    RETURN NULL;
END $$
"""
# Only a write of the release before fills the old columns (a newer matcher writes facts only).
_TRIGGER = """
CREATE TRIGGER matcher_payment_states_mirror AFTER INSERT OR UPDATE ON matcher_payments
FOR EACH ROW WHEN (NEW.status IS NOT NULL) EXECUTE FUNCTION matcher_payment_states_mirror()
"""
# One batch of one day: the next rows by txn_id (the day's primary key), copied unless the
# trigger was first (its copy is newer); answers the last txn_id read (none: the day is done).
_COPY_BATCH = f"""
WITH batch AS (
    SELECT {_COLUMNS} FROM {{table}}
    WHERE txn_id > :after AND status IS NOT NULL ORDER BY txn_id LIMIT :size
), copied AS (
    INSERT INTO matcher_payment_states ({_COLUMNS}) SELECT * FROM batch
    ON CONFLICT (txn_id, business_date) DO NOTHING
)
SELECT max(txn_id) FROM batch
"""
_DAYS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'matcher_payments'::regclass ORDER BY c.relname
"""

READ_DUE = """
CREATE OR REPLACE VIEW matcher_read_due AS
SELECT bank_code, due_at, status = 'overdue' AS overdue FROM matcher_payment_states
WHERE status <> 'cancelled'
"""
# Each payment's status read by its key for the payments the reader's filter on the facts yields
# (as the matcher's search does: a join would let the planner hash every state).
READ_PAYMENTS = """
CREATE OR REPLACE VIEW matcher_read_payments AS
SELECT f.txn_id, f.merchant_id, f.business_date, f.bank_code, f.currency, f.amount_minor,
       s.status, f.terminal_id, f.rrn, f.evidence ->> 'auth_code' AS auth_code, f.stan
FROM matcher_payments f
CROSS JOIN LATERAL (
    SELECT status FROM matcher_payment_states s
    WHERE s.txn_id = f.txn_id AND s.business_date = f.business_date OFFSET 0) s
"""
# matcher_read_books of 0014 on the two tables: what moved is read from the state (ms).
_BOOKS_FROM = {
    "FROM matcher_payments m": "FROM matcher_payments m JOIN matcher_payment_states ms "
    "ON ms.txn_id = m.txn_id AND ms.business_date = m.business_date",
    "m.status": "ms.status",
    "m.settlements": "ms.settlements",
}
# The old columns filled from the states again (for a matcher of the release before).
REFILL = f"""
UPDATE matcher_payments f SET {", ".join(f"{c} = s.{c}" for c in [*MOVED, "updated_at"])}
FROM matcher_payment_states s
WHERE s.txn_id = f.txn_id AND s.business_date = f.business_date
"""


def _books(books_0014: str) -> str:
    for old, new in _BOOKS_FROM.items():
        assert old in books_0014, old
        books_0014 = books_0014.replace(old, new)
    return books_0014


def mirror() -> None:
    """Mirror each write of a matcher of the release before into matcher_payment_states."""
    op.execute(_STATES_DAY)
    op.execute(_MIRROR)
    op.execute("DROP TRIGGER IF EXISTS matcher_payment_states_mirror ON matcher_payments")
    op.execute(_TRIGGER)


def upgrade() -> None:
    op.execute(_STATES)
    for name, on in STATE_INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS matcher_payment_states_{name} "
            f"ON matcher_payment_states {on}"
        )
    op.execute(
        "ALTER TABLE matcher_payments "
        + ", ".join(f"ALTER COLUMN {c} DROP NOT NULL" for c in MOVED)
    )
    mirror()
    for (name,) in op.get_bind().execute(sa.text(_DAYS)).all():  # a later day: the trigger's
        op.execute(f"SELECT matcher_payment_states_day('{name.rsplit('_d', 1)[1]}')")
    # Committed here: from now on every write of a running matcher is mirrored; the copy below
    # commits batch by batch.
    size = int(os.environ.get("SETTLEWATCH_MIGRATION_BATCH", "20000"))
    with op.get_context().autocommit_block():
        bind = op.get_bind()  # the block's own connection, each statement committed
        for (name,) in bind.execute(sa.text(_DAYS)).all():
            after: str | None = ""
            while after is not None:
                after = bind.execute(
                    sa.text(_COPY_BATCH.format(table=name)), {"after": after, "size": size}
                ).scalar()
    op.execute(READ_DUE)
    op.execute(READ_PAYMENTS)
    op.execute(_books(revision_module("0014_typed_payments")._books()))


def downgrade() -> None:
    op.execute("DROP TRIGGER matcher_payment_states_mirror ON matcher_payments")
    op.execute(REFILL)  # the payments a newer matcher wrote have no old columns yet
    op.execute("DROP FUNCTION matcher_payment_states_mirror()")
    op.execute("DROP FUNCTION matcher_payment_states_day(date)")
    op.execute(
        "ALTER TABLE matcher_payments " + ", ".join(f"ALTER COLUMN {c} SET NOT NULL" for c in MOVED)
    )
    op.execute(
        "CREATE OR REPLACE VIEW matcher_read_due AS SELECT bank_code, due_at, "
        "status = 'overdue' AS overdue FROM matcher_payments WHERE status <> 'cancelled'"
    )
    op.execute(
        revision_module("0014_typed_payments")._PAYMENTS_VIEW.replace(
            "CREATE VIEW", "CREATE OR REPLACE VIEW"
        )
    )
    op.execute(revision_module("0014_typed_payments")._books())
    op.execute("DROP TABLE matcher_payment_states")

"""A payment's state as typed columns instead of one JSON document (issue 16).

The document repeated the indexed columns, was parsed on every write (COPY took twice as long
as with typed columns: 60 against 29 µs a row with the table's eleven indexes) and was rewritten
whole when a deadline fired. Now each scalar of `matcher.core.model.Payment` is a column; only
its collections (evidence, refunds, conflicts, settlements, history) stay JSON. The references
that search and report matching look up (terminal_id, rrn, stan) are columns generated from the
evidence, so their indexes no longer evaluate an expression over the document.

A timestamp column loses the offset the payment was given in (a merchant's local time, shown in
its findings and evidence), so each keeps it beside it in seconds (`*_offset`), and
``matcher_isoformat(at, offset)`` writes it as Python's ``datetime.isoformat`` does, for the
findings the deadline fast path writes in SQL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from settlewatch.schema import revision_module

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# One expression, no FROM, so PostgreSQL inlines it into the statements that call it; one
# to_char (each costs µs a finding): the fraction printed, then dropped when it is zero.
ISOFORMAT = """
CREATE FUNCTION matcher_isoformat(at timestamptz, offset_s integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT replace(to_char((at AT TIME ZONE 'UTC') + offset_s * interval '1 second',
                       'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
    || CASE WHEN offset_s < 0 THEN '-' ELSE '+' END
    || lpad((abs(offset_s) / 3600)::text, 2, '0') || ':'
    || lpad((abs(offset_s) % 3600 / 60)::text, 2, '0')
$$
"""

# Seconds east of UTC of an ISO 8601 text with an offset ('+08:00'): the local time it names
# (an offset in a timestamp literal is ignored) minus the UTC time.
_OFFSET = "extract(epoch FROM (({0})::timestamp - (({0})::timestamptz AT TIME ZONE 'UTC')))::int"

_SCALARS = {
    "occurred_offset": ("integer", _OFFSET.format("body ->> 'occurred_at'")),
    "due_offset": ("integer", _OFFSET.format("body ->> 'due_at'")),
    "base_due_at": ("timestamptz", "(body ->> 'base_due_at')::timestamptz"),
    "base_due_offset": ("integer", _OFFSET.format("body ->> 'base_due_at'")),
    "expected_net_minor": ("bigint", "(body ->> 'expected_net_minor')::bigint"),
    "fee_rule": ("text", "body ->> 'fee_rule'"),
    "cycle": ("text", "body ->> 'cycle'"),
    "digest": ("text", "body ->> 'digest'"),
    "deadline_basis": ("text", "coalesce(body ->> 'deadline_basis', 'calendar')"),
    "reported": ("text", "body ->> 'reported'"),
    "overdue_fired": ("boolean", "(body ->> 'overdue_fired')::boolean"),
    "unfired": ("boolean", "coalesce((body ->> 'unfired')::boolean, false)"),
    "deadline_moves": ("integer", "coalesce((body ->> 'deadline_moves')::int, 0)"),
    "cancelled": ("boolean", "(body ->> 'cancelled')::boolean"),
    "refunds_exceeded": ("boolean", "coalesce((body ->> 'refunds_exceeded')::boolean, false)"),
    "paid_after_void": ("boolean", "coalesce((body ->> 'paid_after_void')::boolean, false)"),
    "evidence": ("jsonb", "body -> 'evidence'"),
    "refunds": ("jsonb", "coalesce(body -> 'refunds', '{}')"),
    "conflicts": ("jsonb", "coalesce(body -> 'conflicts', '[]')"),
    "settlements": ("jsonb", "body -> 'settlements'"),
    "history": ("jsonb", "body -> 'history'"),
}
_NULLABLE = {"expected_net_minor", "fee_rule"}
_REFERENCES = ("terminal_id", "rrn", "stan")

_PAYMENTS_VIEW = """
CREATE VIEW matcher_read_payments AS SELECT txn_id, merchant_id, business_date, bank_code,
    currency, amount_minor, status, terminal_id, rrn, evidence ->> 'auth_code' AS auth_code, stan
FROM matcher_payments
"""
_OLD_PAYMENTS_VIEW = (
    "CREATE VIEW matcher_read_payments AS SELECT txn_id, merchant_id, business_date, "
    "bank_code, currency, amount_minor, status, "
    "(body -> 'evidence') ->> 'terminal_id' AS terminal_id, "
    "(body -> 'evidence') ->> 'rrn' AS rrn, "
    "(body -> 'evidence') ->> 'auth_code' AS auth_code, "
    "(body -> 'evidence') ->> 'stan' AS stan "
    "FROM matcher_payments"
)

# matcher_read_books of 0011 on the typed columns: only where it read the document changes.
_BOOKS_READS = {
    "CREATE FUNCTION": "CREATE OR REPLACE FUNCTION",
    "(m.body ->> 'expected_net_minor')::bigint": "m.expected_net_minor",
    "(m.body -> 'evidence') ->> 'terminal_id'": "m.terminal_id",
    "m.body -> 'settlements'": "m.settlements",
}


def _books() -> str:
    books: str = revision_module("0011_terminals_and_books").BOOKS
    for document, column in _BOOKS_READS.items():
        assert document in books, document
        books = books.replace(document, column)
    return books


_EXPRESSION_INDEXES = {
    "by_rrn": "(((body -> 'evidence') ->> 'rrn'))",
    "by_stan": "(((body -> 'evidence') ->> 'stan'))",
    "newest_by_terminal": "(((body -> 'evidence') ->> 'terminal_id'), occurred_at DESC, "
    "txn_id DESC)",
}
_COLUMN_INDEXES = {
    "by_rrn": "(rrn)",
    "by_stan": "(stan)",
    "newest_by_terminal": "(terminal_id, occurred_at DESC, txn_id DESC)",
}


def upgrade() -> None:
    op.execute(ISOFORMAT)
    op.execute("DROP VIEW matcher_read_payments")
    for name in _EXPRESSION_INDEXES:
        op.execute(f"DROP INDEX matcher_payments_{name}")
    columns = ", ".join(f"ADD COLUMN {name} {kind}" for name, (kind, _) in _SCALARS.items())
    op.execute(f"ALTER TABLE matcher_payments {columns}")
    filled = ", ".join(f"{name} = {value}" for name, (_, value) in _SCALARS.items())
    op.execute(f"UPDATE matcher_payments SET {filled}")
    required = ", ".join(
        f"ALTER COLUMN {name} SET NOT NULL" for name in _SCALARS if name not in _NULLABLE
    )
    generated = ", ".join(
        f"ADD COLUMN {name} text GENERATED ALWAYS AS (evidence ->> '{name}') STORED"
        for name in _REFERENCES
    )
    op.execute(f"ALTER TABLE matcher_payments {required}, DROP COLUMN body, {generated}")
    for name, on in _COLUMN_INDEXES.items():
        op.execute(f"CREATE INDEX matcher_payments_{name} ON matcher_payments {on}")
    op.execute(_PAYMENTS_VIEW)
    op.execute(_books())


def downgrade() -> None:
    # The document as matcher.codec wrote it before: the Payment dataclass, field by field.
    times = {
        "occurred_at": "matcher_isoformat(occurred_at, occurred_offset)",
        "base_due_at": "matcher_isoformat(base_due_at, base_due_offset)",
        "due_at": "matcher_isoformat(due_at, due_offset)",
    }
    fields = [
        "txn_id",
        "merchant_id",
        "kind",
        "amount_minor",
        "currency",
        "occurred_at",
        "business_date",
        "base_due_at",
        "due_at",
        "expected_net_minor",
        "bank_code",
        "cycle",
        "digest",
        "card_fingerprint",
        "evidence",
        "fee_rule",
        "deadline_basis",
        "status",
        "reported",
        "overdue_fired",
        "unfired",
        "deadline_moves",
        "cancelled",
        "refunds",
        "refunds_exceeded",
        "paid_after_void",
        "conflicts",
        "settlements",
        "history",
    ]
    pairs = ", ".join(f"'{f}', {times.get(f, f)}" for f in fields)
    op.execute("DROP VIEW matcher_read_payments")
    op.execute("ALTER TABLE matcher_payments ADD COLUMN body jsonb")
    op.execute(f"UPDATE matcher_payments SET body = jsonb_build_object({pairs})")
    op.execute("ALTER TABLE matcher_payments ALTER COLUMN body SET NOT NULL")
    for name in _COLUMN_INDEXES:
        op.execute(f"DROP INDEX matcher_payments_{name}")
    dropped = ", ".join(f"DROP COLUMN {name}" for name in [*_REFERENCES, *_SCALARS])
    op.execute(f"ALTER TABLE matcher_payments {dropped}")
    for name, on in _EXPRESSION_INDEXES.items():
        op.execute(f"CREATE INDEX matcher_payments_{name} ON matcher_payments {on}")
    op.execute(_OLD_PAYMENTS_VIEW)
    op.execute("DROP FUNCTION matcher_read_books")
    op.execute(revision_module("0011_terminals_and_books").BOOKS)
    op.execute("DROP FUNCTION matcher_isoformat")

"""Settlement files (SPEC §9), written by ingest: the accounts statements are about, the CSV
column mappings, each file received and every record parsed from it (created by 0007)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.schema.reference import metadata

__all__ = [
    "file_exceptions",
    "file_findings",
    "file_mappings",
    "file_records",
    "payouts",
    "settlement_accounts",
    "settlement_files",
]

# Whose money a statement entry is: an account known by IBAN or by the bank's own number.
settlement_accounts = Table(
    "settlement_accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("number", Text, nullable=False, unique=True),  # IBAN, or the bank's account number
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "recon"},
)

file_mappings = Table(
    "file_mappings",
    metadata,
    Column("name", Text, primary_key=True),
    Column("mapping", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "recon"},
)

# One row per import attempt: a file's bytes (SHA-256) are imported once at most, and a rejected
# attempt may be followed by another (`previous_file_id` links it to the one before); `summary`
# holds the counts, totals and warnings once imported, `errors` the located reasons of a
# rejection.
settlement_files = Table(
    "settlement_files",
    metadata,
    Column("file_id", Text, primary_key=True),
    Column("sha256", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("status", Text, nullable=False),  # imported | rejected
    Column("size_bytes", BigInteger, nullable=False),
    Column("summary", JSONB, nullable=False, server_default="{}"),
    Column("errors", JSONB, nullable=False, server_default="[]"),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("previous_file_id", Text),
    Index("settlement_files_sha256", "sha256"),
    Index(
        "settlement_files_imported_sha256",
        "sha256",
        unique=True,
        postgresql_where=text("status = 'imported'"),
    ),
    info={"owner": "recon"},
)

# Every record of an imported file, in file order (settlementfiles.model: statement, entry,
# line, payout, summary), as JSON with its problems. A report line that names a payment is
# matched to it (`match_status`: unmatched, matched, ambiguous, invalid — matched, but not a
# settlement the API would accept —, flagged; `match_rule` says which rule made the match) and
# the match is published as a settlement (`published_at`).
file_records = Table(
    "settlement_file_records",
    metadata,
    Column("file_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("problems", JSONB, nullable=False, server_default="[]"),
    Column("match_status", Text),
    Column("match_rule", Text),
    Column("txn_id", Text),
    Column("merchant_id", Text),
    Column("matched_at", DateTime(timezone=True)),
    Column("published_at", DateTime(timezone=True)),
    info={"owner": "recon"},
)

# A credit expected from a report (source "report": expected → arrived | short | missing) or
# an entry seen on a statement that nothing expected (source "statement": unexpected); `credit`
# is the statement entry it was paired with, `credit_id` that entry's (or collective line's) id.
payouts = Table(
    "payouts",
    metadata,
    Column("payout_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("file_id", Text, nullable=False),
    Column("merchant_id", Text),
    Column("currency", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("value_date", Date),
    Column("reference", Text),
    Column("status", Text, nullable=False),
    Column("due_on", Date),
    Column("credit_id", Text, unique=True),
    Column("credit", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "recon"},
)

# What the files' matching could not decide (SPEC §9 exceptions): a line nothing matched or that
# matched several payments, a flagged record, a payout missing or short, a statement entry
# nobody expected. `status`: open → matched (by hand) | written_off (by hand) | resolved (the
# evidence arrived and the loops settled it); reopen brings a written-off one back. `history`
# keeps every change as {at, by, action, note}.
file_exceptions = Table(
    "file_exceptions",
    metadata,
    Column("exception_id", Text, primary_key=True),  # line:<file>:<seq>, payout:<payout_id>…
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("file_id", Text, nullable=False),
    Column("seq", Integer),  # the record, for lines and entries
    Column("payout_id", Text),  # the payout, for payouts and unexpected entries
    Column("merchant_id", Text),
    Column("currency", Text),
    Column("amount_minor", BigInteger),
    Column("finding_ids", JSONB, nullable=False),  # the findings it raised, resolved with it
    Column("evidence", JSONB, nullable=False),  # what it is about: file, location, amounts
    Column("history", JSONB, nullable=False, server_default="[]"),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("assignee", Text),  # a person's name, free text (SPEC §16)
    Column("proposed_by", Text),  # the token id that proposed a write-off awaiting approval
    info={"owner": "recon"},
)

# The findings of the files' loops, written in the transaction that decided them and published
# to the findings topic afterwards (at least once; `key` is the finding id # state, as the
# matcher's outbox).
file_findings = Table(
    "file_findings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("merchant_id", Text),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    info={"owner": "recon"},
)

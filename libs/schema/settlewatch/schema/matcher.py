"""The matcher's tables (created by migrations 0003 and 0004, payments typed by 0014 and split
into facts and state by 0022–0023), its own.

Other services read the matcher only through its read views: ``matcher_read_clock(clock)`` and
``matcher_read_due(bank_code, due_at, overdue)`` (migration 0006) for on-call, and
``matcher_read_payments`` (0007: a payment by its card-network references) for report lines, and
``matcher_read_unpublished`` (0020: the findings still to send) for the dev stack's key rotation.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Identity,
    Integer,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.schema.reference import metadata

__all__ = ["offsets", "outbox", "partitions", "payment_states", "payments", "published"]

# A payment is two rows, both partitioned by business date (one table per day, created on
# demand, dropped together when the day is closed; migrations 0022–0023): what happened, never
# updated after it is written, with the search indexes; and what the matcher has made of it so
# far (status, deadline, history…), with only the indexes the timer and the totals need, so a
# deadline firing rewrites a narrow row and few index entries.
payments = Table(
    "matcher_payments",
    metadata,
    Column("txn_id", Text, primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("partition", Integer, nullable=False),
    Column("merchant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("bank_code", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # A timestamp's offset in seconds east of UTC beside it (the merchant's local time, as its
    # findings show it; migration 0014).
    Column("occurred_offset", Integer, nullable=False),
    Column("card_fingerprint", Text, nullable=False),
    Column("expected_net_minor", BigInteger),
    Column("fee_rule", Text),
    Column("cycle", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("evidence", JSONB, nullable=False),
    # Generated from the evidence: the references search and report matching look up.
    Column("terminal_id", Text, Computed("evidence ->> 'terminal_id'", persisted=True)),
    Column("rrn", Text, Computed("evidence ->> 'rrn'", persisted=True)),
    Column("stan", Text, Computed("evidence ->> 'stan'", persisted=True)),
    postgresql_partition_by="RANGE (business_date)",
    info={"owner": "matcher"},
)

payment_states = Table(
    "matcher_payment_states",
    metadata,
    Column("txn_id", Text, primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("partition", Integer, nullable=False),
    # Copied from the payment (they never change), for the totals and the timer's read view,
    # which then read this table alone.
    Column("merchant_id", Text, nullable=False),
    Column("bank_code", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("due_offset", Integer, nullable=False),
    Column("base_due_at", DateTime(timezone=True), nullable=False),
    Column("base_due_offset", Integer, nullable=False),
    Column("deadline_basis", Text, nullable=False),
    Column("reported", Text, nullable=False),
    Column("overdue_fired", Boolean, nullable=False),
    Column("unfired", Boolean, nullable=False),
    Column("deadline_moves", Integer, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("refunds_exceeded", Boolean, nullable=False),
    Column("paid_after_void", Boolean, nullable=False),
    Column("refunds", JSONB, nullable=False),
    Column("conflicts", JSONB, nullable=False),
    Column("settlements", JSONB, nullable=False),
    Column("history", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    postgresql_partition_by="RANGE (business_date)",
    info={"owner": "matcher"},
)

# One row per partition of the transactions/settlements topics; `generation` fences writers: an
# instance that lost a partition in a rebalance can no longer write its state.
partitions = Table(
    "matcher_partitions",
    metadata,
    Column("partition", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("clock", DateTime(timezone=True)),
    Column("body", JSONB, nullable=False),
    Column("reference", JSONB, nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "matcher"},
)

offsets = Table(
    "matcher_offsets",
    metadata,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    info={"owner": "matcher"},
)

outbox = Table(
    "matcher_outbox",
    metadata,
    Column("key", Text, primary_key=True),
    Column("merchant_id", Text),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),  # of a row without a partition only (0020)
    # The order of writing, and the partition that wrote the finding (none: the stall watch), so
    # that a partition's findings are marked published by a watermark (`published`, 0020).
    Column("seq", BigInteger, Identity(always=True), nullable=False),
    Column("partition", Integer),
    info={"owner": "matcher"},
)

# Per partition, the highest outbox `seq` published: its rows are written by one owner at a time
# in `seq` order and published in that order, so every row at or below it is sent (0020).
published = Table(
    "matcher_published",
    metadata,
    Column("partition", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    info={"owner": "matcher"},
)

"""The payment search of the ops desk (SPEC §12): newest first, keyset-paginated.

The cursor (common.cursors) is the last item's (occurred_at, txn_id): a page starts strictly
after it in that order, so payments inserted meanwhile never shift a page or repeat an item
(only newer ones appear, on a new search). Each filter is served by an index of migration 0010
or 0007 (the terminal's and the rrn's on their columns since 0014); a time range also bounds
the business dates, so only those days' tables are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, select, true, tuple_
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.matcher.codec import FACT_COLUMNS, PAYMENT_COLUMNS, STATE_ONLY_COLUMNS
from settlewatch.schema import matcher as tables

__all__ = ["PAYMENT", "Filters", "payments", "search_query"]

_facts, _states = tables.payments.c, tables.payment_states.c
# A payment's state read by its key for each payment the facts' indexes yield, in their order.
# A join would let the planner estimate the key's two columns as independent (a day's worth
# too few rows) and hash a whole table of states instead; OFFSET 0 keeps it a lookup.
_STATE = (
    select(*(_states[c] for c in STATE_ONLY_COLUMNS))
    .where(_states.txn_id == _facts.txn_id, _states.business_date == _facts.business_date)
    .offset(0)
    .lateral("state")
)
# A payment's columns as payment_from_row reads them: its facts, then its state.
PAYMENT: list[ColumnElement[Any]] = [
    column.cast(Text) if isinstance(column.type, JSONB) else column
    for column in (_facts[c] if c in FACT_COLUMNS else _STATE.c[c] for c in PAYMENT_COLUMNS)
]


def payments() -> Select[Any]:
    """SELECT PAYMENT FROM a payment's facts and, for each, its state."""
    return select(*PAYMENT).select_from(tables.payments.join(_STATE, true()))


# A business date is the local date of occurred_at, or the next day after the cutoff: within a
# day and a half of the UTC date either way.
_DATE_SLACK = timedelta(days=2)


@dataclass(frozen=True)
class Filters:
    merchant_id: str | None = None
    status: str | None = None
    since: datetime | None = None  # occurred_at ≥ since
    until: datetime | None = None  # occurred_at < until
    terminal_id: str | None = None
    rrn: str | None = None
    bank_code: str | None = None


def search_query(filters: Filters, after: tuple[datetime, str] | None, limit: int) -> Select[Any]:
    p = _facts
    query = payments().order_by(p.occurred_at.desc(), p.txn_id.desc()).limit(limit)
    if filters.merchant_id is not None:
        query = query.where(p.merchant_id == filters.merchant_id)
    if filters.status is not None:
        query = query.where(_STATE.c.status == filters.status)
    if filters.bank_code is not None:
        query = query.where(p.bank_code == filters.bank_code)
    if filters.terminal_id is not None:
        query = query.where(p.terminal_id == filters.terminal_id)
    if filters.rrn is not None:
        query = query.where(p.rrn == filters.rrn)
    if filters.since is not None:
        query = query.where(p.occurred_at >= filters.since)
        query = query.where(p.business_date >= (filters.since - _DATE_SLACK).date())
    if filters.until is not None:
        query = query.where(p.occurred_at < filters.until)
        query = query.where(p.business_date <= (filters.until + _DATE_SLACK).date())
    if after is not None:
        query = query.where(tuple_(p.occurred_at, p.txn_id) < tuple_(*after))
    return query

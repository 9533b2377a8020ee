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

from sqlalchemy import ColumnElement, Select, Text, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.matcher.codec import PAYMENT_COLUMNS
from settlewatch.schema import matcher as tables

__all__ = ["PAYMENT", "Filters", "search_query"]

# A payment's columns as payment_from_row reads them.
PAYMENT: list[ColumnElement[Any]] = [
    tables.payments.c[c].cast(Text)
    if isinstance(tables.payments.c[c].type, JSONB)
    else tables.payments.c[c]
    for c in PAYMENT_COLUMNS
]
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
    p = tables.payments.c
    query = select(*PAYMENT).order_by(p.occurred_at.desc(), p.txn_id.desc()).limit(limit)
    if filters.merchant_id is not None:
        query = query.where(p.merchant_id == filters.merchant_id)
    if filters.status is not None:
        query = query.where(p.status == filters.status)
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

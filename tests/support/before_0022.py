"""A matcher of the release before migration 0022, as far as the store goes: each payment's
facts and state in one row of `matcher_payments` (PAYMENT_COLUMNS), written as its store merged
a batch (every column but the key replaced), on day tables of the facts only. For the
migration's test and bench, which write the way such a matcher does while 0022 runs."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from settlewatch.matcher.codec import PAYMENT_COLUMNS, payment_row
from settlewatch.matcher.core.model import Payment

__all__ = ["WRITE", "write"]

WRITE = f"""
INSERT INTO matcher_payments ({", ".join(PAYMENT_COLUMNS)})
VALUES ({", ".join(f"${i}" for i in range(1, len(PAYMENT_COLUMNS) + 1))})
ON CONFLICT (txn_id, business_date) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in PAYMENT_COLUMNS[2:])
}, updated_at = now()
"""


async def write(conn: asyncpg.Connection, payment: Payment, partition: int = 0) -> None:
    """Save `payment`, making its day's table first if missing."""
    day = payment.business_date
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS matcher_payments_d{day:%Y%m%d} PARTITION OF "
        f"matcher_payments FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')"
    )
    await conn.execute(WRITE, *payment_row(payment, partition))

"""What the alerts service reads of other services' data: the matcher through its read views
(migration 0006), merchant profiles and maintenance windows from the reference data."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.incidents import BankDue
from settlewatch.alerts.core.lifecycle import Recipient
from settlewatch.alerts.repository.database import Connection, reading

__all__ = ["Reads", "recipients"]


class Reads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def matcher_clock(self) -> datetime | None:
        """How far the settlement feed is known to be complete (the oldest partition clock)."""
        async with reading(self._engine) as db:
            return cast(datetime | None, await db.fetchval("SELECT clock FROM matcher_read_clock"))

    async def fell_due(self, since: datetime, until: datetime) -> list[BankDue]:
        """Per bank, the payments that fell due in (since, until] and how many are overdue."""
        async with reading(self._engine) as db:
            rows = await db.fetch(
                "SELECT bank_code, count(*) AS fell_due, count(*) FILTER (WHERE overdue) "
                "AS overdue FROM matcher_read_due WHERE due_at > $1 AND due_at <= $2 "
                "GROUP BY bank_code",
                since,
                until,
            )
        return [BankDue(r["bank_code"], r["fell_due"], r["overdue"]) for r in rows]

    async def active_maintenance(self, now: datetime) -> set[str]:
        """Banks inside an announced maintenance window now."""
        async with reading(self._engine) as db:
            rows = await db.fetch(
                "SELECT DISTINCT bank_code FROM ingest_read_windows "
                "WHERE starts_at <= $1 AND ends_at > $1",
                now,
            )
        return {r["bank_code"] for r in rows}


async def recipients(db: Connection, merchants: list[str]) -> dict[str, Recipient]:
    """How each merchant is told: locale, time zone, whether it has a webhook."""
    rows = await db.fetch(
        "SELECT merchant_id, profile->>'locale' AS locale, profile->>'timezone' AS timezone, "
        "jsonb_typeof(profile->'webhook') = 'object' AS has_webhook "
        "FROM ingest_read_merchants WHERE merchant_id = ANY($1::text[])",
        merchants,
    )
    return {
        r["merchant_id"]: Recipient(
            **{field: r[field] for field in ("locale", "timezone") if r[field]},
            has_webhook=bool(r["has_webhook"]),
        )
        for r in rows
    }

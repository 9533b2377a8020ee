"""Webhook deliveries: grouping alerts into deliveries, leasing them for attempts, a row per
attempt, disabled endpoints, retries by hand, retention."""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from asyncpg import Record
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.grouping import Pending
from settlewatch.alerts.core.reminders import REMINDED, Digest, Open
from settlewatch.alerts.core.retry import Outcome
from settlewatch.alerts.repository.alerts import page_filters
from settlewatch.alerts.repository.database import reading, writing
from settlewatch.alerts.repository.rows import (
    ALERT_COLUMNS,
    AlertRow,
    Attempt,
    AttemptRow,
    DeliveryRow,
    DeliveryStatus,
    Job,
)
from settlewatch.common.catalogue import DIGEST_TYPE, TEST_TYPE
from settlewatch.common.problems import ProblemError
from settlewatch.common.sealing import Sealer, SealingError

__all__ = ["Deliveries", "Render", "RenderDigest"]

_log = logging.getLogger(__name__)
# The body of a delivery, fixed when it is created: its first alert's type and merchant, its
# alerts, the time.
Render = Callable[[Pending, Sequence[AlertRow], datetime], bytes]
_DELIVERY_COLUMNS = (
    "delivery_id, merchant_id, type, status, created_at, updated_at, next_attempt_at, "
    "delivered_at, last_error, alert_ids"
)
# A digest's body, fixed when it is made: the digest, its alerts, the time.
RenderDigest = Callable[[Digest, Sequence[AlertRow], datetime], bytes]
# As the partial index alerts_to_remind (migration 0012) states it, so the planner uses it.
_TO_REMIND = (
    "notify AND status <> 'resolved' AND type IN ("
    + ", ".join(f"'{t}'" for t in sorted(REMINDED))
    + ")"
)


class Deliveries:
    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self._engine = engine
        self._sealer = sealer  # opens the webhook secrets (SPEC §14)

    async def waiting(self, ready_before: datetime, limit: int = 50_000) -> list[Pending]:
        """Alerts to notify that are not in a delivery yet, oldest first; none while even the
        oldest was created after `ready_before` (no group's wait is over: one index probe)."""
        async with reading(self._engine) as db:
            rows = await db.fetch(
                "SELECT alert_id, merchant_id, type, created_at FROM alerts "
                "WHERE notify AND delivery_id IS NULL AND (SELECT min(created_at) FROM alerts "
                "WHERE notify AND delivery_id IS NULL) <= $1 ORDER BY created_at LIMIT $2",
                ready_before,
                limit,
            )
        return [Pending(r["alert_id"], r["merchant_id"], r["type"], r["created_at"]) for r in rows]

    async def create(
        self, groups: Sequence[Sequence[Pending]], now: datetime, render: Render
    ) -> int:
        """One delivery per group, its body fixed now; alerts already in a delivery (another
        instance was quicker) are left out. Returns the number of deliveries created."""
        created = 0
        async with writing(self._engine) as db:
            for group in groups:
                delivery_id = f"msg_{int(now.timestamp() * 1000):012x}{secrets.token_hex(8)}"
                rows = await db.fetch(
                    f"UPDATE alerts SET delivery_id = $1 "
                    f"WHERE alert_id = ANY($2::text[]) AND delivery_id IS NULL "
                    f"RETURNING {ALERT_COLUMNS}",
                    delivery_id,
                    [p.alert_id for p in group],
                )
                if not rows:
                    continue
                alerts = sorted(map(AlertRow.of, rows), key=lambda a: (a.created_at, a.alert_id))
                first = group[0]
                await db.execute(
                    "INSERT INTO deliveries (delivery_id, merchant_id, type, status, body, "
                    "alert_count, first_alert_at, created_at, updated_at, next_attempt_at) "
                    "VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $7, $7)",
                    delivery_id,
                    first.merchant_id,
                    first.type,
                    render(first, alerts, now),
                    len(alerts),
                    alerts[0].created_at,
                    now,
                )
                created += 1
        return created

    async def create_test(self, merchant_id: str, now: datetime, body: bytes) -> str:
        """A delivery of `body` (no alert in it) to the merchant's webhook, sent as any other;
        returns its id. 404 when there is no such merchant, 409 when it has no webhook."""
        delivery_id = f"msg_{int(now.timestamp() * 1000):012x}{secrets.token_hex(8)}"
        async with writing(self._engine) as db:
            found = await db.fetchrow(
                "SELECT profile->'webhook'->>'url' AS url FROM ingest_read_merchants "
                "WHERE merchant_id = $1",
                merchant_id,
            )
            if found is None:
                raise ProblemError(404, "merchant not found")
            if found["url"] is None:
                raise ProblemError(409, "the merchant has no webhook to send to")
            await db.execute(
                "INSERT INTO deliveries (delivery_id, merchant_id, type, status, body, "
                "alert_count, first_alert_at, created_at, updated_at, next_attempt_at, "
                "alert_ids) VALUES ($1, $2, $3, 'pending', $4, 0, $5, $5, $5, $5, '{}')",
                delivery_id,
                merchant_id,
                TEST_TYPE,
                body,
                now,
            )
        return delivery_id

    async def to_remind(self, created_before: datetime) -> list[Open]:
        """The open alerts of reminded types to notify, created at or before `created_before`."""
        async with reading(self._engine) as db:
            rows = await db.fetch(
                "SELECT alert_id, merchant_id, created_at, evidence ->> 'due_at' AS due_at "
                f"FROM alerts WHERE {_TO_REMIND} AND created_at <= $1",
                created_before,
            )
        return [
            Open(
                r["alert_id"],
                r["merchant_id"],
                r["created_at"],
                datetime.fromisoformat(r["due_at"]) if r["due_at"] else None,
            )
            for r in rows
        ]

    async def create_digests(
        self, digests: Sequence[Digest], now: datetime, render: RenderDigest
    ) -> int:
        """A delivery per digest, unless one was made for its merchant and period (by another
        instance, or before a restart). Returns the number made."""
        created = 0
        async with writing(self._engine) as db:
            for digest in digests:
                rows = await db.fetch(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = ANY($1::text[])",
                    digest.alert_ids,
                )
                alerts = sorted(map(AlertRow.of, rows), key=lambda a: (a.created_at, a.alert_id))
                made = await db.execute(
                    "INSERT INTO deliveries (delivery_id, merchant_id, type, status, body, "
                    "alert_count, first_alert_at, created_at, updated_at, next_attempt_at, "
                    "alert_ids) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $7, $7, $8) "
                    "ON CONFLICT (delivery_id) DO NOTHING",
                    digest.delivery_id,
                    digest.merchant_id,
                    DIGEST_TYPE,
                    render(digest, alerts, now),
                    len(alerts),
                    digest.period,  # its latency is counted from when it was due
                    now,
                    [a.alert_id for a in alerts],
                )
                created += made == "INSERT 0 1"
        return created

    async def claim(
        self,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        in_flight: Mapping[str, int],
        per_merchant: int,
    ) -> list[Job]:
        """Up to `limit` deliveries due for an attempt, oldest first, leased to this instance
        until `now + lease`; of a merchant with `in_flight[merchant]` attempts under way, no
        more than `per_merchant` less those."""
        busy = [m for m, n in in_flight.items() if n > 0]
        async with writing(self._engine) as db:
            rows = await db.fetch(
                """
                UPDATE deliveries d SET next_attempt_at = $2, updated_at = $1
                FROM (
                    SELECT delivery_id FROM deliveries
                    WHERE delivery_id = ANY(ARRAY(
                        SELECT delivery_id FROM (
                            SELECT c.delivery_id, c.next_attempt_at,
                                row_number() OVER (
                                    PARTITION BY c.merchant_id ORDER BY c.next_attempt_at
                                ) + coalesce(f.n, 0) AS slot
                            FROM deliveries c
                            LEFT JOIN unnest($4::text[], $5::int[]) AS f(merchant_id, n)
                                USING (merchant_id)
                            WHERE c.status = 'pending' AND c.next_attempt_at <= $1
                        ) ranked
                        WHERE slot <= $6 ORDER BY next_attempt_at LIMIT $3
                    ))
                    AND status = 'pending' AND next_attempt_at <= $1
                    FOR UPDATE SKIP LOCKED
                ) due
                WHERE d.delivery_id = due.delivery_id
                RETURNING d.delivery_id, d.merchant_id, d.body, d.attempts, d.first_alert_at
                """,
                now,
                now + lease,
                limit,
                busy,
                [in_flight[m] for m in busy],
                per_merchant,
            )
            merchants = sorted({r["merchant_id"] for r in rows})
            urls = {
                r["merchant_id"]: r["url"]
                for r in await db.fetch(
                    "SELECT merchant_id, profile->'webhook'->>'url' AS url "
                    "FROM ingest_read_merchants WHERE merchant_id = ANY($1::text[])",
                    merchants,
                )
            }
            sealed = await db.fetch(
                "SELECT merchant_id, sealed FROM ingest_read_webhook_secrets "
                "WHERE merchant_id = ANY($1::text[]) AND (retires_at IS NULL OR retires_at > $2) "
                "ORDER BY merchant_id, retires_at DESC NULLS FIRST, id DESC",
                merchants,
                now,
            )
            disabled = {
                (r["merchant_id"], r["url"])
                for r in await db.fetch(
                    "SELECT merchant_id, url FROM disabled_endpoints "
                    "WHERE merchant_id = ANY($1::text[])",
                    merchants,
                )
            }
        secrets_of = self._open(sealed)
        jobs = []
        for r in rows:
            url = urls.get(r["merchant_id"])
            jobs.append(
                Job(
                    delivery_id=r["delivery_id"],
                    merchant_id=r["merchant_id"],
                    body=bytes(r["body"]),
                    attempt=r["attempts"] + 1,
                    first_alert_at=r["first_alert_at"],
                    url=url,
                    secrets=secrets_of.get(r["merchant_id"], ()),
                    disabled=(r["merchant_id"], url) in disabled,
                )
            )
        return jobs

    def _open(self, sealed: Sequence[Record]) -> dict[str, tuple[str, ...]]:
        """Each merchant's secrets in clear, the current one first; one no key opens is left
        out (the attempt fails, saying so)."""
        opened: dict[str, list[str]] = defaultdict(list)
        for r in sealed:
            try:
                opened[r["merchant_id"]].append(self._sealer.open(r["sealed"]))
            except SealingError:
                _log.error("webhook secret not opened", extra={"merchant_id": r["merchant_id"]})
        return {merchant: tuple(found) for merchant, found in opened.items()}

    async def record(self, attempts: Sequence[Attempt], now: datetime) -> None:
        """Log the attempts made and move each delivery on, in one transaction."""
        if not attempts:
            return
        made = [a for a in attempts if a.made]
        async with writing(self._engine) as db:
            await db.execute(
                """
                INSERT INTO delivery_attempts
                    (delivery_id, attempt, at, url, status_code, latency_ms, error)
                SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[],
                                     $5::int[], $6::float8[], $7::text[])
                ON CONFLICT (delivery_id, attempt) DO NOTHING
                """,
                [a.job.delivery_id for a in made],
                [a.job.attempt for a in made],
                [a.at or now for a in made],
                [a.job.url for a in made],
                [a.status_code for a in made],
                [a.latency_ms for a in made],
                [a.error for a in made],
            )
            await db.execute(
                """
                UPDATE deliveries d SET
                    status = u.status,
                    attempts = d.attempts + u.made::int,
                    next_attempt_at = u.next_attempt_at,
                    delivered_at = CASE WHEN u.status = 'delivered' THEN $7::timestamptz END,
                    last_error = u.error,
                    updated_at = $7
                FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bool[],
                            $6::int[])
                    AS u(delivery_id, status, next_attempt_at, error, made, attempt)
                WHERE d.delivery_id = u.delivery_id AND d.status = 'pending'
                    AND d.attempts = u.attempt - 1
                """,
                [a.job.delivery_id for a in attempts],
                [_status(a.outcome) for a in attempts],
                [a.outcome.next_attempt_at for a in attempts],
                [a.error for a in attempts],
                [a.made for a in attempts],
                [a.job.attempt for a in attempts],
                now,
            )
            gone = [a for a in made if a.outcome.status == "disabled"]
            await db.execute(
                """
                INSERT INTO disabled_endpoints (merchant_id, url, disabled_at, delivery_id)
                SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])
                ON CONFLICT DO NOTHING
                """,
                [a.job.merchant_id for a in gone],
                [a.job.url for a in gone],
                [now for _ in gone],
                [a.job.delivery_id for a in gone],
            )

    async def page(
        self,
        *,
        merchant_id: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[DeliveryRow]:
        """Newest first, each with its attempts (oldest first) and the ids of its alerts."""
        where, args = page_filters(
            {"merchant_id": merchant_id, "status": status}, after, "delivery_id"
        )
        async with reading(self._engine) as db:
            rows = await db.fetch(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} "
                f"ORDER BY created_at DESC, delivery_id DESC LIMIT {int(limit)}",
                *args,
            )
            ids = [r["delivery_id"] for r in rows]
            alert_ids = {
                r["delivery_id"]: sorted(r["alert_ids"])
                for r in await db.fetch(
                    "SELECT delivery_id, array_agg(alert_id) AS alert_ids FROM alerts "
                    "WHERE delivery_id = ANY($1::text[]) GROUP BY delivery_id",
                    ids,
                )
            }
            tried: dict[str, list[AttemptRow]] = defaultdict(list)
            for a in await db.fetch(
                "SELECT delivery_id, attempt, at, url, status_code, latency_ms, error "
                "FROM delivery_attempts WHERE delivery_id = ANY($1::text[]) "
                "ORDER BY delivery_id, attempt",
                ids,
            ):
                tried[a["delivery_id"]].append(
                    AttemptRow(
                        attempt=a["attempt"],
                        at=a["at"],
                        url=a["url"],
                        status_code=a["status_code"],
                        latency_ms=a["latency_ms"],
                        error=a["error"],
                    )
                )
        return [
            DeliveryRow(
                delivery_id=r["delivery_id"],
                merchant_id=r["merchant_id"],
                type=r["type"],
                status=r["status"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                next_attempt_at=r["next_attempt_at"],
                delivered_at=r["delivered_at"],
                last_error=r["last_error"],
                alert_ids=alert_ids.get(r["delivery_id"]) or sorted(r["alert_ids"] or []),
                attempts=tried[r["delivery_id"]],
            )
            for r in rows
        ]

    async def retry(self, delivery_id: str, now: datetime) -> str:
        """Send a delivery again now (and enable its endpoint again); returns its status before.
        No such delivery is 404, a delivered one 409 — refused inside the transaction, which
        then changes nothing (nor is it audited)."""
        async with writing(self._engine) as db:
            row = await db.fetchrow(
                "SELECT status, merchant_id FROM deliveries WHERE delivery_id = $1 FOR UPDATE",
                delivery_id,
            )
            if row is None:
                raise ProblemError(404, "delivery not found")
            if row["status"] == "delivered":
                raise ProblemError(409, "the delivery was delivered already")
            await db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2 "
                "WHERE delivery_id = $1",
                delivery_id,
                now,
            )
            await db.execute(
                "DELETE FROM disabled_endpoints WHERE merchant_id = $1", row["merchant_id"]
            )
            status: str = row["status"]
            return status

    async def forget(self, before: datetime) -> int:
        """Delete the ended deliveries (and their attempts) last touched before `before` that
        no remaining alert is in; returns how many. (Forget the old alerts first.)"""
        async with writing(self._engine) as db:
            deleted = await db.execute(
                "DELETE FROM deliveries d WHERE status <> 'pending' AND updated_at < $1 "
                "AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.delivery_id = d.delivery_id)",
                before,
            )
        return int(deleted.split()[-1])

    async def disabled_endpoints(self) -> int:
        async with reading(self._engine) as db:
            return int(str(await db.fetchval("SELECT count(*) FROM disabled_endpoints")))


def _status(outcome: Outcome) -> DeliveryStatus:
    if outcome.status == "retry":
        return "pending"
    return "delivered" if outcome.status == "delivered" else "failed"

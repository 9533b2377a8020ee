"""The alert store (PostgreSQL): alerts, webhook deliveries and their attempts.

Every write is one transaction and set-based. Absorbing findings is idempotent (alert id =
finding id, forward-only statuses), so the consumer commits its Kafka offsets after the
transaction and a redelivered batch changes nothing. An alert joins a delivery by an update
guarded with `delivery_id IS NULL`, in the transaction that creates the delivery and fixes its
body: an alert can be in one delivery only, whatever crashes or concurrent instances do.
Deliveries are claimed with a lease (`next_attempt_at` pushed past the attempt timeout, `FOR
UPDATE SKIP LOCKED`), so an attempt cut short by a crash is made again, with the same
`webhook-id`, after the lease; never by two instances at once.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.causes import Window
from settlewatch.alerts.core.grouping import Pending
from settlewatch.alerts.core.incidents import BankDue
from settlewatch.alerts.core.lifecycle import (
    BANK_DEPENDENT,
    AlertStatus,
    Finding,
    NewAlert,
    Note,
    Recipient,
    absorb,
    after_action,
    note,
)
from settlewatch.alerts.core.retry import Outcome
from settlewatch.alerts.core.summaries import summary
from settlewatch.common.db import driver_connection

__all__ = ["AlertStore", "Attempt", "Job", "alert_json"]

_OPEN_INCIDENTS = (
    "SELECT bank_code, alert_id FROM alerts WHERE type = 'bank.incident' AND status <> 'resolved'"
)
_DELIVERY_COLUMNS = (
    "delivery_id, merchant_id, type, status, created_at, updated_at, next_attempt_at, "
    "delivered_at, last_error"
)
_ALERT_COLUMNS = (
    "alert_id, type, status, merchant_id, txn_id, txn_ids, bank_code, probable_cause, summary, "
    "evidence, notes, delivery_id, created_at, updated_at"
)


def alert_json(row: Any) -> dict[str, Any]:
    """An alert as the API and the webhooks show it."""
    return {
        "alert_id": row["alert_id"],
        "type": row["type"],
        "status": row["status"],
        "merchant_id": row["merchant_id"],
        "txn_id": row["txn_id"],
        "txn_ids": _json(row["txn_ids"]),
        "bank_code": row["bank_code"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "probable_cause": row["probable_cause"],
        "summary": row["summary"],
        "evidence": _json(row["evidence"]),
        "notes": _json(row["notes"]),
        "delivery_id": row["delivery_id"],
    }


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Job:
    """A delivery claimed for one attempt."""

    delivery_id: str
    merchant_id: str
    body: bytes
    attempt: int  # the number of this attempt, 1 for the first
    first_alert_at: datetime
    url: str | None  # None: the merchant has no webhook any more
    secret: str | None
    disabled: bool  # the endpoint answered 410 Gone before


@dataclass(frozen=True)
class Attempt:
    """What became of a claimed delivery: an attempt made (`status_code` None: no answer), or
    none (`made` False: no webhook or a disabled endpoint), and the outcome."""

    job: Job
    outcome: Outcome
    made: bool
    at: datetime | None = None  # when the attempt was sent
    status_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = None


class AlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- findings -> alerts ---------------------------------------------------------------

    async def absorb(
        self, findings: Sequence[Finding], now: datetime
    ) -> tuple[list[NewAlert], int]:
        """Create and resolve the alerts `findings` call for; return the alerts created and the
        number resolved."""
        if not findings:
            return [], 0
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            ids = sorted({f.id for f in findings})
            statuses: dict[str, AlertStatus] = {
                r["alert_id"]: r["status"]
                for r in await db.fetch(
                    "SELECT alert_id, status FROM alerts WHERE alert_id = ANY($1::text[]) "
                    "ORDER BY alert_id FOR UPDATE",
                    ids,
                )
            }
            merchants = sorted({f.merchant_id for f in findings if f.merchant_id})
            banks = sorted(
                {f.evidence["bank_code"] for f in findings if f.evidence.get("bank_code")}
            )
            recipients = await _recipients(db, merchants)
            windows: dict[str, list[Window]] = defaultdict(list)
            for r in await db.fetch(
                "SELECT bank_code, starts_at, ends_at FROM maintenance_windows "
                "WHERE bank_code = ANY($1::text[]) AND starts_at <= $2",
                banks,
                now,
            ):
                windows[r["bank_code"]].append((r["starts_at"], r["ends_at"]))
            incident_banks = frozenset(r["bank_code"] for r in await db.fetch(_OPEN_INCIDENTS))
            new, resolutions = absorb(findings, statuses, recipients, windows, incident_banks, now)
            inserted = await _insert_alerts(db, new)
            await _resolve(db, [(r.alert_id, r.note) for r in resolutions], now)
        return [a for a in new if a.alert_id in inserted], len(resolutions)

    # -- webhook deliveries ---------------------------------------------------------------

    async def waiting(self, ready_before: datetime, limit: int = 50_000) -> list[Pending]:
        """Alerts to notify that are not in a delivery yet, oldest first; none while even the
        oldest was created after `ready_before` (no group's wait is over: one index probe)."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                "SELECT alert_id, merchant_id, type, created_at FROM alerts "
                "WHERE notify AND delivery_id IS NULL AND (SELECT min(created_at) FROM alerts "
                "WHERE notify AND delivery_id IS NULL) <= $1 ORDER BY created_at LIMIT $2",
                ready_before,
                limit,
            )
        return [Pending(r["alert_id"], r["merchant_id"], r["type"], r["created_at"]) for r in rows]

    async def create_deliveries(self, groups: Sequence[Sequence[Pending]], now: datetime) -> int:
        """One delivery per group, its body fixed now; alerts already in a delivery (another
        instance was quicker) are left out. Returns the number of deliveries created."""
        created = 0
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            for group in groups:
                delivery_id = f"msg_{int(now.timestamp() * 1000):012x}{secrets.token_hex(8)}"
                rows = await db.fetch(
                    f"UPDATE alerts SET delivery_id = $1 "
                    f"WHERE alert_id = ANY($2::text[]) AND delivery_id IS NULL "
                    f"RETURNING {_ALERT_COLUMNS}",
                    delivery_id,
                    [p.alert_id for p in group],
                )
                if not rows:
                    continue
                rows = sorted(rows, key=lambda r: (r["created_at"], r["alert_id"]))
                first = group[0]
                body = orjson.dumps(
                    {
                        "type": first.type,
                        "timestamp": now.isoformat(),
                        "data": {
                            "merchant_id": first.merchant_id,
                            "alerts": [alert_json(r) for r in rows],
                        },
                    }
                )
                await db.execute(
                    "INSERT INTO deliveries (delivery_id, merchant_id, type, status, body, "
                    "alert_count, first_alert_at, created_at, updated_at, next_attempt_at) "
                    "VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $7, $7)",
                    delivery_id,
                    first.merchant_id,
                    first.type,
                    body,
                    len(rows),
                    rows[0]["created_at"],
                    now,
                )
                created += 1
        return created

    async def claim(self, now: datetime, lease: timedelta, limit: int = 200) -> list[Job]:
        """Deliveries due for an attempt, leased to this instance until `now + lease`."""
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                """
                UPDATE deliveries d SET next_attempt_at = $2, updated_at = $1
                FROM (
                    SELECT delivery_id FROM deliveries
                    WHERE status = 'pending' AND next_attempt_at <= $1
                    ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED
                ) due
                WHERE d.delivery_id = due.delivery_id
                RETURNING d.delivery_id, d.merchant_id, d.body, d.attempts, d.first_alert_at
                """,
                now,
                now + lease,
                limit,
            )
            merchants = sorted({r["merchant_id"] for r in rows})
            hooks = {
                r["merchant_id"]: (r["url"], r["secret"])
                for r in await db.fetch(
                    "SELECT merchant_id, profile->'webhook'->>'url' AS url, "
                    "profile->'webhook'->>'secret' AS secret FROM merchants "
                    "WHERE merchant_id = ANY($1::text[])",
                    merchants,
                )
            }
            disabled = {
                (r["merchant_id"], r["url"])
                for r in await db.fetch(
                    "SELECT merchant_id, url FROM disabled_endpoints "
                    "WHERE merchant_id = ANY($1::text[])",
                    merchants,
                )
            }
        jobs = []
        for r in rows:
            url, secret = hooks.get(r["merchant_id"], (None, None))
            jobs.append(
                Job(
                    delivery_id=r["delivery_id"],
                    merchant_id=r["merchant_id"],
                    body=bytes(r["body"]),
                    attempt=r["attempts"] + 1,
                    first_alert_at=r["first_alert_at"],
                    url=url,
                    secret=secret,
                    disabled=(r["merchant_id"], url) in disabled,
                )
            )
        return jobs

    async def record(self, attempts: Sequence[Attempt], now: datetime) -> None:
        """Log the attempts made and move each delivery on, in one transaction."""
        if not attempts:
            return
        made = [a for a in attempts if a.made]
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
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
                [_delivery_status(a.outcome) for a in attempts],
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

    # -- the API ---------------------------------------------------------------------------

    async def list_alerts(
        self,
        *,
        merchant_id: str | None,
        kind: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first; `after` is the (created_at, alert_id) of the last item already seen."""
        where, args = _filters(
            {"merchant_id": merchant_id, "type": kind, "status": status}, after, "alert_id"
        )
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                f"SELECT {_ALERT_COLUMNS} FROM alerts {where} "
                f"ORDER BY created_at DESC, alert_id DESC LIMIT {int(limit)}",
                *args,
            )
        return [alert_json(r) for r in rows]

    async def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            row = await db.fetchrow(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alert_id = $1", alert_id
            )
        return alert_json(row) if row is not None else None

    async def act(
        self, alert_id: str, action: Literal["ack", "resolve"], text: str, by: str, now: datetime
    ) -> dict[str, Any] | None:
        """A person's ack or resolve, with its note; None if there is no such alert."""
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            status = await db.fetchval(
                "SELECT status FROM alerts WHERE alert_id = $1 FOR UPDATE", alert_id
            )
            if status is None:
                return None
            after = after_action(status, action)  # raises Invalid
            row = await db.fetchrow(
                f"UPDATE alerts SET status = $2, notes = notes || jsonb_build_array($3::jsonb), "
                f"updated_at = $4 WHERE alert_id = $1 RETURNING {_ALERT_COLUMNS}",
                alert_id,
                after,
                _dumps(note(now, by, "acknowledged" if action == "ack" else "resolved", text)),
                now,
            )
        return alert_json(row)

    async def list_deliveries(
        self,
        *,
        merchant_id: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first, each with its attempts (oldest first) and the ids of its alerts."""
        where, args = _filters({"merchant_id": merchant_id, "status": status}, after, "delivery_id")
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
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
            tried: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for a in await db.fetch(
                "SELECT * FROM delivery_attempts WHERE delivery_id = ANY($1::text[]) "
                "ORDER BY delivery_id, attempt",
                ids,
            ):
                tried[a["delivery_id"]].append(
                    {
                        "attempt": a["attempt"],
                        "at": a["at"].isoformat(),
                        "url": a["url"],
                        "status_code": a["status_code"],
                        "latency_ms": round(a["latency_ms"], 1),
                        "error": a["error"],
                    }
                )
        return [
            _delivery_json(r, alert_ids.get(r["delivery_id"], []), tried[r["delivery_id"]])
            for r in rows
        ]

    async def retry(self, delivery_id: str, now: datetime) -> str | None:
        """Send a delivery again now (and enable its endpoint again); returns its status before,
        None if there is no such delivery. A delivered one is left as it is."""
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            row = await db.fetchrow(
                "SELECT status, merchant_id FROM deliveries WHERE delivery_id = $1 FOR UPDATE",
                delivery_id,
            )
            if row is None or row["status"] == "delivered":
                return None if row is None else "delivered"
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

    # -- on-call ---------------------------------------------------------------------------

    async def matcher_clock(self) -> datetime | None:
        """How far the settlement feed is known to be complete (the oldest partition clock)."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            clock: datetime | None = await db.fetchval("SELECT min(clock) FROM matcher_partitions")
            return clock

    async def fell_due(self, since: datetime, until: datetime) -> list[BankDue]:
        """Per bank, the payments that fell due in (since, until] and how many are overdue."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                """
                SELECT bank_code, count(*) AS fell_due,
                       count(*) FILTER (WHERE status = 'overdue') AS overdue
                FROM matcher_payments
                WHERE due_at > $1 AND due_at <= $2 AND status <> 'cancelled'
                GROUP BY bank_code
                """,
                since,
                until,
            )
        return [BankDue(r["bank_code"], r["fell_due"], r["overdue"]) for r in rows]

    async def open_incidents(self) -> dict[str, str]:
        """Bank → the id of its open incident."""
        async with self._engine.connect() as conn:
            rows = await (await driver_connection(conn)).fetch(_OPEN_INCIDENTS)
        return {r["bank_code"]: r["alert_id"] for r in rows}

    async def add_alert(self, alert: NewAlert) -> bool:
        """Insert one alert; False when it (or, for an incident, one of its bank) exists."""
        async with self._engine.begin() as conn:
            return bool(await _insert_alerts(await driver_connection(conn), [alert]))

    async def blame_incident(self, bank: str, now: datetime) -> int:
        """A bank incident opened: the bank's open alerts not yet sent whose cause was
        `unknown` now name it (cause and summary). Returns how many changed."""
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                "SELECT alert_id, type, merchant_id, evidence FROM alerts "
                "WHERE bank_code = $1 AND probable_cause = 'unknown' AND delivery_id IS NULL "
                "AND status <> 'resolved' AND type = ANY($2::text[]) FOR UPDATE",
                bank,
                sorted(BANK_DEPENDENT),
            )
            recipients = await _recipients(db, sorted({r["merchant_id"] for r in rows}))
            changes = []
            for r in rows:
                recipient = recipients.get(r["merchant_id"], Recipient())
                text = summary(
                    r["type"],
                    _json(r["evidence"]),
                    locale=recipient.locale,
                    timezone=recipient.timezone,
                    probable_cause="bank_incident",
                )
                changes.append((r["alert_id"], text))
            await db.execute(
                "UPDATE alerts a SET probable_cause = 'bank_incident', summary = u.summary, "
                "updated_at = $3 FROM unnest($1::text[], $2::text[]) AS u(alert_id, summary) "
                "WHERE a.alert_id = u.alert_id",
                [alert_id for alert_id, _ in changes],
                [text for _, text in changes],
                now,
            )
        return len(changes)

    async def resolve(self, alert_id: str, note: Note, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await _resolve(await driver_connection(conn), [(alert_id, note)], now)

    async def active_maintenance(self, now: datetime) -> set[str]:
        """Banks inside an announced maintenance window now."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            rows = await db.fetch(
                "SELECT DISTINCT bank_code FROM maintenance_windows "
                "WHERE starts_at <= $1 AND ends_at > $1",
                now,
            )
        return {r["bank_code"] for r in rows}

    async def oncall_to_push(self, now: datetime, every: timedelta) -> list[Any]:
        """On-call alerts to push: active ones not pushed for `every`, and resolved ones whose
        end has not been pushed."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            return list(
                await db.fetch(
                    f"SELECT {_ALERT_COLUMNS}, pushed_at FROM alerts "
                    "WHERE oncall AND ends_pushed_at IS NULL AND "
                    "(status = 'resolved' OR pushed_at IS NULL OR pushed_at <= $1) "
                    "ORDER BY created_at",
                    now - every,
                )
            )

    async def mark_pushed(self, active: Iterable[str], ended: Iterable[str], now: datetime) -> None:
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            await db.execute(
                "UPDATE alerts SET pushed_at = $2 WHERE alert_id = ANY($1::text[])",
                list(active),
                now,
            )
            await db.execute(
                "UPDATE alerts SET ends_pushed_at = $2 WHERE alert_id = ANY($1::text[])",
                list(ended),
                now,
            )

    # -- retention -------------------------------------------------------------------------

    async def forget(self, before: datetime) -> tuple[int, int]:
        """Delete alerts resolved before `before`, then the ended deliveries (and their
        attempts) last touched before it that no remaining alert is in. Returns both counts."""
        async with self._engine.begin() as conn:
            db = await driver_connection(conn)
            alerts = await db.execute(
                "DELETE FROM alerts WHERE status = 'resolved' AND updated_at < $1", before
            )
            deliveries = await db.execute(
                "DELETE FROM deliveries d WHERE status <> 'pending' AND updated_at < $1 "
                "AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.delivery_id = d.delivery_id)",
                before,
            )
        return int(alerts.split()[-1]), int(deliveries.split()[-1])

    # -- gauges ------------------------------------------------------------------------------

    async def counts(self) -> tuple[dict[tuple[str, str], int], int, dict[str, int]]:
        """Alerts by (type, status), disabled endpoints, open incidents by bank."""
        async with self._engine.connect() as conn:
            db = await driver_connection(conn)
            by_status = {
                (r["type"], r["status"]): r["n"]
                for r in await db.fetch(
                    "SELECT type, status, count(*) AS n FROM alerts GROUP BY type, status"
                )
            }
            disabled = await db.fetchval("SELECT count(*) FROM disabled_endpoints")
            incidents = {
                r["bank_code"]: r["n"]
                for r in await db.fetch(
                    "SELECT bank_code, count(*) AS n FROM alerts "
                    "WHERE type = 'bank.incident' AND status <> 'resolved' GROUP BY bank_code"
                )
            }
        return by_status, disabled, incidents


def _filters(
    equal: dict[str, str | None], after: tuple[datetime, str] | None, id_column: str
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in equal.items():
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if after is not None:
        args += list(after)
        clauses.append(f"(created_at, {id_column}) < (${len(args) - 1}, ${len(args)})")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def _delivery_json(
    row: Any, alert_ids: list[str], attempts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "delivery_id": row["delivery_id"],
        "merchant_id": row["merchant_id"],
        "type": row["type"],
        "status": row["status"],
        "alert_ids": alert_ids,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "next_attempt_at": _iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "delivered_at": _iso(row["delivered_at"]),
        "last_error": row["last_error"],
        "attempts": attempts,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _delivery_status(outcome: Outcome) -> Literal["pending", "delivered", "failed"]:
    if outcome.status == "retry":
        return "pending"
    return "delivered" if outcome.status == "delivered" else "failed"


async def _recipients(db: Any, merchants: list[str]) -> dict[str, Recipient]:
    rows = await db.fetch(
        "SELECT merchant_id, profile->>'locale' AS locale, profile->>'timezone' AS timezone, "
        "jsonb_typeof(profile->'webhook') = 'object' AS has_webhook "
        "FROM merchants WHERE merchant_id = ANY($1::text[])",
        merchants,
    )
    return {
        r["merchant_id"]: Recipient(
            **{field: r[field] for field in ("locale", "timezone") if r[field]},
            has_webhook=bool(r["has_webhook"]),
        )
        for r in rows
    }


async def _insert_alerts(db: Any, alerts: Sequence[NewAlert]) -> set[str]:
    """Insert what is new; returns the ids inserted."""
    if not alerts:
        return set()
    rows = await db.fetch(
        """
        INSERT INTO alerts (alert_id, type, status, merchant_id, txn_id, txn_ids, bank_code,
                            probable_cause, summary, evidence, notes, notify, oncall,
                            created_at, updated_at)
        SELECT a, t, s, m, x, xs::jsonb, b, c, sm, e::jsonb, n::jsonb, nt, oc, at, at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[],
                    $13::bool[], $14::timestamptz[])
            AS u(a, t, s, m, x, xs, b, c, sm, e, n, nt, oc, at)
        ON CONFLICT DO NOTHING  -- the same alert, or a second open incident of a bank
        RETURNING alert_id
        """,
        [a.alert_id for a in alerts],
        [a.type for a in alerts],
        [a.status for a in alerts],
        [a.merchant_id for a in alerts],
        [a.txn_id for a in alerts],
        [_dumps(a.txn_ids) if a.txn_ids is not None else None for a in alerts],
        [a.bank_code for a in alerts],
        [a.probable_cause for a in alerts],
        [a.summary for a in alerts],
        [_dumps(a.evidence) for a in alerts],
        [_dumps(a.notes) for a in alerts],
        [a.notify for a in alerts],
        [a.oncall for a in alerts],
        [a.created_at for a in alerts],
    )
    return {r["alert_id"] for r in rows}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _resolve(db: Any, resolutions: Sequence[tuple[str, Note]], now: datetime) -> None:
    if not resolutions:
        return
    await db.execute(
        """
        UPDATE alerts a SET status = 'resolved', notes = a.notes || jsonb_build_array(u.note),
                            updated_at = $3
        FROM unnest($1::text[], $2::jsonb[]) AS u(alert_id, note)
        WHERE a.alert_id = u.alert_id AND a.status <> 'resolved'
        """,
        [alert_id for alert_id, _ in resolutions],
        [_dumps(note) for _, note in resolutions],
        now,
    )

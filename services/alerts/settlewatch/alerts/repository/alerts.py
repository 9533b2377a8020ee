"""Alerts: absorbing findings, people's acks and resolves, incidents, on-call pushes, retention
and counts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.causes import Window
from settlewatch.alerts.core.lifecycle import (
    BANK_DEPENDENT,
    AlertStatus,
    NewAlert,
    Note,
    ReceivedFinding,
    Recipient,
    absorb,
    after_action,
    note,
)
from settlewatch.alerts.core.summaries import summary
from settlewatch.alerts.repository.database import Connection, dumps, loads, reading, writing
from settlewatch.alerts.repository.reads import recipients
from settlewatch.alerts.repository.rows import ALERT_COLUMNS, AlertRow

__all__ = ["ALERT_FOR_CHANGE", "Alerts", "page_filters"]

# A person's ack or resolve holds its alert until it commits: two at once are one after the other.
ALERT_FOR_CHANGE = "SELECT status FROM alerts WHERE alert_id = $1 FOR UPDATE"

_OPEN_INCIDENTS = (
    "SELECT bank_code, alert_id FROM alerts WHERE type = 'bank.incident' AND status <> 'resolved'"
)


class Alerts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def absorb(
        self, findings: Sequence[ReceivedFinding], now: datetime
    ) -> tuple[list[NewAlert], int]:
        """Create and resolve the alerts `findings` call for; return the alerts created and the
        number resolved."""
        if not findings:
            return [], 0
        async with writing(self._engine) as db:
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
            told = await recipients(db, merchants)
            windows: dict[str, list[Window]] = defaultdict(list)
            for r in await db.fetch(
                "SELECT bank_code, starts_at, ends_at FROM ingest_read_windows "
                "WHERE bank_code = ANY($1::text[]) AND starts_at <= $2",
                banks,
                now,
            ):
                windows[r["bank_code"]].append((r["starts_at"], r["ends_at"]))
            incident_banks = frozenset(r["bank_code"] for r in await db.fetch(_OPEN_INCIDENTS))
            new, resolutions = absorb(findings, statuses, told, windows, incident_banks, now)
            inserted = await _insert(db, new)
            await _resolve(db, [(r.alert_id, r.note) for r in resolutions], now)
        return [a for a in new if a.alert_id in inserted], len(resolutions)

    async def add(self, alert: NewAlert) -> bool:
        """Insert one alert; False when it (or, for an incident, one of its bank) exists."""
        async with writing(self._engine) as db:
            return bool(await _insert(db, [alert]))

    async def resolve(self, alert_id: str, resolution: Note, now: datetime) -> None:
        async with writing(self._engine) as db:
            await _resolve(db, [(alert_id, resolution)], now)

    async def act(
        self, alert_id: str, action: Literal["ack", "resolve"], text: str, by: str, now: datetime
    ) -> AlertRow | None:
        """A person's ack or resolve, with its note; None if there is no such alert."""
        async with writing(self._engine) as db:
            status = await db.fetchval(ALERT_FOR_CHANGE, alert_id)
            if status is None:
                return None
            after = after_action(cast(AlertStatus, status), action)  # raises Invalid
            row = await db.fetchrow(
                f"UPDATE alerts SET status = $2, notes = notes || jsonb_build_array($3::jsonb), "
                f"updated_at = $4 WHERE alert_id = $1 RETURNING {ALERT_COLUMNS}",
                alert_id,
                after,
                dumps(note(now, by, "acknowledged" if action == "ack" else "resolved", text)),
                now,
            )
        assert row is not None, "locked above"
        return AlertRow.of(row)

    async def page(
        self,
        *,
        merchant_id: str | None,
        kind: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[AlertRow]:
        """Newest first; `after` is the (created_at, alert_id) of the last item already seen."""
        where, args = page_filters(
            {"merchant_id": merchant_id, "type": kind, "status": status}, after, "alert_id"
        )
        async with reading(self._engine) as db:
            rows = await db.fetch(
                f"SELECT {ALERT_COLUMNS} FROM alerts {where} "
                f"ORDER BY created_at DESC, alert_id DESC LIMIT {int(limit)}",
                *args,
            )
        return [AlertRow.of(r) for r in rows]

    async def get(self, alert_id: str) -> AlertRow | None:
        async with reading(self._engine) as db:
            row = await db.fetchrow(
                f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = $1", alert_id
            )
        return AlertRow.of(row) if row is not None else None

    # -- incidents and on-call ---------------------------------------------------------------

    async def open_incidents(self) -> dict[str, str]:
        """Bank → the id of its open incident."""
        async with reading(self._engine) as db:
            rows = await db.fetch(_OPEN_INCIDENTS)
        return {r["bank_code"]: r["alert_id"] for r in rows}

    async def blame_incident(self, bank: str, now: datetime) -> int:
        """A bank incident opened: the bank's open alerts not yet sent whose cause was
        `unknown` now name it (cause and summary). Returns how many changed."""
        async with writing(self._engine) as db:
            rows = await db.fetch(
                "SELECT alert_id, type, merchant_id, evidence FROM alerts "
                "WHERE bank_code = $1 AND probable_cause = 'unknown' AND delivery_id IS NULL "
                "AND status <> 'resolved' AND type = ANY($2::text[]) FOR UPDATE",
                bank,
                sorted(BANK_DEPENDENT),
            )
            told = await recipients(db, sorted({r["merchant_id"] for r in rows}))
            changes = []
            for r in rows:
                recipient = told.get(r["merchant_id"], Recipient())
                text = summary(
                    r["type"],
                    loads(r["evidence"]),
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

    async def to_push(self, now: datetime, every: timedelta) -> list[AlertRow]:
        """On-call alerts to push: active ones not pushed for `every`, and resolved ones whose
        end has not been pushed."""
        async with reading(self._engine) as db:
            rows = await db.fetch(
                f"SELECT {ALERT_COLUMNS} FROM alerts "
                "WHERE oncall AND ends_pushed_at IS NULL AND "
                "(status = 'resolved' OR pushed_at IS NULL OR pushed_at <= $1) "
                "ORDER BY created_at",
                now - every,
            )
        return [AlertRow.of(r) for r in rows]

    async def mark_pushed(self, active: Iterable[str], ended: Iterable[str], now: datetime) -> None:
        async with writing(self._engine) as db:
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

    # -- retention and gauges ----------------------------------------------------------------

    async def forget(self, before: datetime) -> int:
        """Delete the alerts resolved before `before`; returns how many."""
        async with writing(self._engine) as db:
            deleted = await db.execute(
                "DELETE FROM alerts WHERE status = 'resolved' AND updated_at < $1", before
            )
        return int(deleted.split()[-1])

    async def counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """Alerts by (type, status), and open incidents by bank."""
        async with reading(self._engine) as db:
            by_status = {
                (r["type"], r["status"]): r["n"]
                for r in await db.fetch(
                    "SELECT type, status, count(*) AS n FROM alerts GROUP BY type, status"
                )
            }
            incidents = {
                r["bank_code"]: r["n"]
                for r in await db.fetch(
                    "SELECT bank_code, count(*) AS n FROM alerts "
                    "WHERE type = 'bank.incident' AND status <> 'resolved' GROUP BY bank_code"
                )
            }
        return by_status, incidents


def page_filters(
    equal: dict[str, str | None], after: tuple[datetime, str] | None, id_column: str
) -> tuple[str, list[object]]:
    """The WHERE clause of a page: equal columns, and keyset pagination newest first."""
    clauses: list[str] = []
    args: list[object] = []
    for column, value in equal.items():
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if after is not None:
        args += list(after)
        clauses.append(f"(created_at, {id_column}) < (${len(args) - 1}, ${len(args)})")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


async def _insert(db: Connection, alerts: Sequence[NewAlert]) -> set[str]:
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
        [dumps(a.txn_ids) if a.txn_ids is not None else None for a in alerts],
        [a.bank_code for a in alerts],
        [a.probable_cause for a in alerts],
        [a.summary for a in alerts],
        [dumps(a.evidence) for a in alerts],
        [dumps(a.notes) for a in alerts],
        [a.notify for a in alerts],
        [a.oncall for a in alerts],
        [a.created_at for a in alerts],
    )
    return {r["alert_id"] for r in rows}


async def _resolve(db: Connection, resolutions: Sequence[tuple[str, Note]], now: datetime) -> None:
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
        [dumps(note) for _, note in resolutions],
        now,
    )

"""The loop that reconciles expected payouts with statement entries (SPEC §9).

A round (after each import, and every minute for the calendar): expected payouts read from
reports become ``payouts`` rows; every open payout is paired with the statement credits not yet
paired (``payouts.pair``: by reference, then by currency, amount and value date ± one business
day; a collective credit's lines one by one); a payout still unpaired once its value date + the
grace has passed is ``missing`` (and becomes ``arrived`` or ``short`` if its credit comes
later); a statement entry nothing expected by then is ``unexpected``, until a report explains
it. Each of those is an exception with its finding (``payout.missing``, ``payout.short``,
``payout.unexpected_credit``/``_debit``), closed — and the finding resolved — when the credit or
the report explaining it arrives. Business days are the PRC calendar's, with the years loaded
through the API (files/calendar.py); "today" is Beijing's date.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.calendar import BusinessCalendar
from settlewatch.common.db import driver_transaction
from settlewatch.common.loops import Alarm
from settlewatch.recon.calendar import in_force
from settlewatch.recon.desk_items import SYSTEM, Opened, age_of, close, open_items
from settlewatch.recon.metrics import DESK_OPEN, PAYOUT_AMOUNT, PAYOUTS
from settlewatch.recon.payouts import Credit, Expected, Pair, Tolerance, due, pair

__all__ = ["PayoutReconciler"]

BEIJING = ZoneInfo("Asia/Shanghai")
LINES_WAIT = timedelta(minutes=15)  # as long as a JSON settlement waits for its transaction

_NEW_PAYOUTS = """
UPDATE settlement_file_records SET match_status = 'recorded'
WHERE kind = 'payout' AND match_status = 'unmatched'
RETURNING file_id, seq, body
"""
_INSERT_EXPECTED = """
INSERT INTO payouts (payout_id, source, file_id, currency, amount_minor, count, value_date,
                     reference, status, due_on)
SELECT id, 'report', file_id, currency, amount, n, value_date, reference, 'expected', due_on
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::date[],
            $7::text[], $8::date[])
    AS p(id, file_id, currency, amount, n, value_date, reference, due_on)
ON CONFLICT (payout_id) DO NOTHING
"""
# A payout is paired and judged only once each line of its batch has been tried and matched —
# or, for lines whose payment is still unknown, once the report is older than LINES_WAIT: its
# merchant is known from its matched lines, so its findings (missing, short) go to that merchant
# (a report imported before its transactions would otherwise raise them to nobody). Whether it
# is ready and its merchant are read in one statement: read apart, lines matched in between made
# a payout ready whose merchant was read before (a short payout's finding went to nobody).
# $1: the moment LINES_WAIT ago.
_OPEN = """
SELECT p.payout_id, p.currency, p.amount_minor, p.value_date, p.reference,
    p.merchant_id IS NULL AS unowned,
    coalesce(p.merchant_id, (  -- the lines' one merchant; a batch of several is the acquirer's
        SELECT CASE WHEN count(DISTINCT l.merchant_id) = 1 THEN min(l.merchant_id) END
        FROM settlement_file_records pr
        JOIN settlement_file_records l ON l.file_id = pr.file_id
            AND l.body ->> 'batch_id' = pr.body ->> 'batch_id'
        WHERE pr.file_id = p.file_id AND p.payout_id = pr.file_id || ':' || pr.seq
          AND l.kind = 'line' AND l.merchant_id IS NOT NULL
    )) AS merchant_id,
    NOT EXISTS (
        SELECT 1 FROM settlement_file_records pr
        JOIN settlement_file_records r ON r.file_id = pr.file_id
            AND r.body ->> 'batch_id' = pr.body ->> 'batch_id'
        WHERE p.payout_id = pr.file_id || ':' || pr.seq AND pr.file_id = p.file_id
          AND r.kind = 'line' AND r.match_status = 'unmatched'
          AND (r.matched_at IS NULL OR f.received_at > $1)
    ) AS ready
FROM payouts p JOIN settlement_files f USING (file_id)
WHERE p.source = 'report' AND p.status IN ('expected', 'missing')
"""
_OWNED = """
UPDATE payouts AS p SET merchant_id = o.merchant_id, updated_at = now()
FROM unnest($1::text[], $2::text[]) AS o(payout_id, merchant_id)
WHERE p.payout_id = o.payout_id
"""
_ENTRIES = """
SELECT file_id, seq, body FROM settlement_file_records
WHERE kind = 'entry' AND match_status = 'unmatched'
"""
_TOLERANCES = """
SELECT number, body -> 'tolerance' AS tolerance FROM settlement_accounts
WHERE body -> 'tolerance' IS NOT NULL AND body -> 'tolerance' <> 'null'::jsonb
"""
_PAIRED = "SELECT credit_id FROM payouts WHERE source = 'report' AND credit_id IS NOT NULL"
_EXPLAINED = "DELETE FROM payouts WHERE source = 'statement' AND credit_id = ANY($1::text[])"
# The merchant a statement account belongs to (none for the acquirer's collecting accounts).
_OWNER = """LEFT JOIN (
    SELECT number, body ->> 'owner' AS owner FROM settlement_accounts
    WHERE body ->> 'owner' <> 'acquirer'
) a ON a.number = """
_SETTLE = f"""
UPDATE payouts AS p SET status = d.status, credit_id = d.credit_id, credit = d.credit::jsonb,
    merchant_id = coalesce(p.merchant_id, a.owner), updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    AS d(payout_id, status, credit_id, credit, account)
{_OWNER}d.account
WHERE p.payout_id = d.payout_id
"""
_MISSING = """
UPDATE payouts AS p SET status = 'missing', updated_at = now()
WHERE p.payout_id = ANY($1::text[]) AND p.status = 'expected' AND p.due_on <= $2
RETURNING p.payout_id, p.file_id, p.merchant_id, p.currency, p.amount_minor, p.count,
    p.value_date, p.reference, p.due_on
"""
_UNEXPECTED = f"""
INSERT INTO payouts (payout_id, source, file_id, merchant_id, currency, amount_minor, count,
                     value_date, reference, status, due_on, credit_id, credit)
SELECT u.credit_id, 'statement', u.file_id, a.owner, u.currency, u.amount, 1, u.value_date,
       u.reference, 'unexpected', u.due_on, u.credit_id, u.credit::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::date[], $6::text[],
            $7::date[], $8::text[], $9::text[])
    AS u(credit_id, file_id, currency, amount, value_date, reference, due_on, credit, account)
{_OWNER}u.account
ON CONFLICT DO NOTHING
RETURNING payout_id, file_id, merchant_id, currency, amount_minor, credit
"""


class _Seen:
    """A statement credit (or debit) as the pairing sees it, with where it came from."""

    def __init__(self, credit: Credit, file_id: str, account: str, body: dict[str, Any]) -> None:
        self.credit = credit
        self.file_id = file_id
        self.account = account
        self.evidence: dict[str, Any] = {
            "credit_id": credit.credit_id,
            "account": account,
            "entry_ref": body.get("entry_ref"),
            "servicer_ref": body.get("servicer_ref"),
            "booking_date": body.get("booking_date"),
            "value_date": body.get("value_date"),
            "amount_minor": credit.amount_minor,
            "currency": credit.currency,
        }


def _credits(
    file_id: str, seq: int, body: dict[str, Any], tolerances: Mapping[str, Tolerance]
) -> Iterator[_Seen]:
    """An entry as credits: itself, or — a collective entry whose lines all carry an amount —
    each of its lines (matched line by line), with its account's tolerance. Debits come out
    with a negative amount."""
    tolerance = tolerances.get(body["account"], Tolerance())
    sign = 1 if body["direction"] == "credit" else -1
    entry_text = " ".join(
        str(body.get(k) or "") for k in ("entry_ref", "servicer_ref", "remittance", "info")
    )
    details = body.get("details") or []
    value_date = date.fromisoformat(body["value_date"]) if body.get("value_date") else None
    if body.get("batch") and details and all(d.get("amount_minor") is not None for d in details):
        for index, detail in enumerate(details):
            detail_sign = 1 if detail["direction"] == "credit" else -1
            text = " ".join(
                [entry_text, detail.get("end_to_end_id") or "", detail.get("remittance") or ""]
                + list((detail.get("references") or {}).values())
            )
            credit = Credit(
                f"{file_id}:{seq}:{index}",
                detail["currency"],
                detail_sign * detail["amount_minor"],
                value_date,
                text,
                tolerance,
            )
            yield _Seen(credit, file_id, body["account"], body)
        return
    texts = [entry_text] + [
        " ".join([d.get("end_to_end_id") or "", d.get("remittance") or ""]) for d in details
    ]
    credit = Credit(
        f"{file_id}:{seq}",
        body["currency"],
        sign * body["amount_minor"],
        value_date,
        " ".join(texts),
        tolerance,
    )
    yield _Seen(credit, file_id, body["account"], body)


class PayoutReconciler:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        on_findings: Callable[[], None],
        *,
        grace_days: int = 1,
        every: float = 60.0,
        quiet: timedelta = timedelta(seconds=20),
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._on_findings = on_findings  # wakes the findings outbox
        self._grace = grace_days
        self._every = every
        # Files of one day are imported one after the other (a report, then its statements):
        # nothing is judged missing or unexpected until none has come for this long, so that a
        # report imported after its grace is not reported missing just before its statement.
        self._quiet = quiet
        self._alarm = Alarm()

    def wake(self) -> None:
        self._alarm.wake()

    async def run(self) -> None:
        while True:
            judged = await self.round()
            await self._alarm.sleep(self._every if judged else self._quiet.total_seconds())

    def _today(self) -> date:
        return self._clock().astimezone(BEIJING).date()

    async def round(self) -> bool:
        """Pair, then judge what is missing or unexpected — unless a file came in the last
        quiet time (its statement or report may be the next file): whether it judged."""
        today = self._today()
        now = self._clock()
        async with driver_transaction(self._engine) as driver:
            await driver.execute("LOCK TABLE payouts IN SHARE ROW EXCLUSIVE MODE")  # one at a time
            calendar = await in_force(driver, "CN")
            await self._record_expected(driver, calendar)
            ready, waiting = await _open(driver, now - LINES_WAIT)
            tolerances = {
                row["number"]: Tolerance(**row["tolerance"])
                for row in await driver.fetch(_TOLERANCES)
            }
            seen = [
                s
                for row in await driver.fetch(_ENTRIES)
                for s in _credits(row["file_id"], row["seq"], row["body"], tolerances)
            ]
            paired = {row["credit_id"] for row in await driver.fetch(_PAIRED)}
            free = [s for s in seen if s.credit.credit_id not in paired]
            await self._settle(driver, ready, free, now, calendar)
            last_import = await driver.fetchval(_LAST_IMPORT)
            judged = last_import is None or last_import <= now - self._quiet
            if judged:
                missing = await driver.fetch(_MISSING, [p.payout_id for p in ready], today)
                await _missing(driver, missing, now)
                if not waiting:
                    await self._unexpected(driver, free, today, now, calendar)
            await _count(driver)
        self._on_findings()
        return judged

    async def _record_expected(self, driver: Any, calendar: BusinessCalendar) -> None:
        rows = await driver.fetch(_NEW_PAYOUTS)
        if not rows:
            return
        bodies = [row["body"] for row in rows]
        value_dates = [
            date.fromisoformat(b["value_date"]) if b.get("value_date") else None for b in bodies
        ]
        await driver.execute(
            _INSERT_EXPECTED,
            [f"{row['file_id']}:{row['seq']}" for row in rows],
            [row["file_id"] for row in rows],
            [b["currency"] for b in bodies],
            [b["amount_minor"] for b in bodies],
            [b["count"] for b in bodies],
            value_dates,
            [b.get("reference") for b in bodies],
            [due(calendar, d, self._grace) if d else None for d in value_dates],
        )

    async def _settle(
        self,
        driver: Any,
        open_payouts: list[Expected],
        free: list[_Seen],
        now: datetime,
        calendar: BusinessCalendar,
    ) -> None:
        """Pair the open payouts with the free credits; a credit reported unexpected before is
        explained by its payout now."""
        by_id = {s.credit.credit_id: s for s in free if s.credit.amount_minor > 0}
        pairs: list[Pair] = pair(open_payouts, [s.credit for s in by_id.values()], calendar)
        if not pairs:
            return
        credit_ids = [p.credit.credit_id for p in pairs]
        await driver.execute(_EXPLAINED, credit_ids)
        await driver.execute(
            _SETTLE,
            [p.expected.payout_id for p in pairs],
            [p.status for p in pairs],
            credit_ids,
            [orjson.dumps(_paid_with(p, by_id[p.credit.credit_id])).decode() for p in pairs],
            [by_id[c].account for c in credit_ids],
        )
        await _arrived(driver, pairs, {c: by_id[c] for c in credit_ids}, now)
        for credit_id in credit_ids:
            free.remove(by_id[credit_id])

    async def _unexpected(
        self,
        driver: Any,
        free: list[_Seen],
        today: date,
        now: datetime,
        calendar: BusinessCalendar,
    ) -> None:
        late = [
            s
            for s in free
            if s.credit.value_date is not None
            and due(calendar, s.credit.value_date, self._grace) <= today
        ]
        if not late:
            return
        rows = await driver.fetch(
            _UNEXPECTED,
            [s.credit.credit_id for s in late],
            [s.file_id for s in late],
            [s.credit.currency for s in late],
            [s.credit.amount_minor for s in late],
            [s.credit.value_date for s in late],
            [s.evidence.get("entry_ref") or s.evidence.get("servicer_ref") for s in late],
            [due(calendar, s.credit.value_date, self._grace) for s in late if s.credit.value_date],
            [orjson.dumps(s.evidence).decode() for s in late],
            [s.account for s in late],
        )
        await open_items(
            driver,
            now,
            [
                Opened(
                    f"unexpected:{r['payout_id']}",
                    "unexpected_credit" if r["amount_minor"] > 0 else "unexpected_debit",
                    r["file_id"],
                    r["credit"] | {"file_id": r["file_id"], "amount_minor": abs(r["amount_minor"])},
                    payout_id=r["payout_id"],
                    merchant_id=r["merchant_id"],
                    currency=r["currency"],
                    amount_minor=r["amount_minor"],
                    findings=(
                        "payout.unexpected_credit"
                        if r["amount_minor"] > 0
                        else "payout.unexpected_debit",
                    ),
                )
                for r in rows
            ],
        )


async def _open(driver: Any, lines_waited: datetime) -> tuple[list[Expected], bool]:
    """The open payouts ready to be paired and judged — each with its merchant recorded — and
    whether some other still waits for its lines (a credit free now may be its)."""
    rows = await driver.fetch(_OPEN, lines_waited)
    ready = [r for r in rows if r["ready"]]
    owned = [r for r in ready if r["unowned"] and r["merchant_id"] is not None]
    if owned:
        await driver.execute(
            _OWNED, [r["payout_id"] for r in owned], [r["merchant_id"] for r in owned]
        )
    payouts = [
        Expected(r["payout_id"], r["currency"], r["amount_minor"], r["value_date"], r["reference"])
        for r in ready
    ]
    return payouts, len(ready) < len(rows)


_LAST_IMPORT = "SELECT max(received_at) FROM settlement_files WHERE status = 'imported'"
_TOTALS = """
SELECT status, currency, count(*) AS n, sum(amount_minor) AS amount FROM payouts
GROUP BY status, currency
"""
_DESK_OPEN = """
SELECT kind, floor(extract(epoch FROM now() - opened_at) / 86400)::int AS days, count(*) AS n
FROM file_exceptions WHERE status = 'open' GROUP BY kind, days
"""


async def _count(driver: Any) -> None:
    """The payouts and open exceptions as the metrics show them."""
    totals = await driver.fetch(_TOTALS)
    exceptions = await driver.fetch(_DESK_OPEN)
    PAYOUTS.clear()
    PAYOUT_AMOUNT.clear()
    DESK_OPEN.clear()
    for status in ("expected", "arrived", "short", "missing", "unexpected"):
        PAYOUTS.labels(status).set(sum(r["n"] for r in totals if r["status"] == status))
    for row in totals:
        PAYOUT_AMOUNT.labels(row["status"], row["currency"]).set(row["amount"])
    aged: Counter[tuple[str, str]] = Counter()
    for row in exceptions:
        aged[row["kind"], age_of(row["days"])] += row["n"]
    for (kind, age), n in aged.items():
        DESK_OPEN.labels(kind, age).set(n)


def _paid_with(paired: Pair, seen: _Seen) -> dict[str, Any]:
    """The credit a payout was paired with, as the payout keeps it: with the difference when it
    arrived within its account's tolerance, and that tolerance."""
    if paired.status != "arrived" or not paired.difference_minor:
        return seen.evidence
    tolerance = paired.credit.tolerance
    return seen.evidence | {
        "difference_minor": paired.difference_minor,
        "tolerance": {"amount_minor": tolerance.amount_minor, "days": tolerance.days},
    }


def payout_evidence(row: Any) -> dict[str, Any]:
    """An expected payout as a finding's and an exception's evidence."""
    return {
        "payout_id": row["payout_id"],
        "file_id": row["file_id"],
        "reference": row["reference"],
        "currency": row["currency"],
        "amount_minor": row["amount_minor"],
        "count": row["count"],
        "value_date": row["value_date"].isoformat() if row["value_date"] else None,
        "due_on": row["due_on"].isoformat() if row["due_on"] else None,
    }


async def _missing(driver: Any, rows: list[Any], now: datetime) -> None:
    await open_items(
        driver,
        now,
        [
            Opened(
                f"missing:{r['payout_id']}",
                "missing_payout",
                r["file_id"],
                payout_evidence(r),
                payout_id=r["payout_id"],
                merchant_id=r["merchant_id"],
                currency=r["currency"],
                amount_minor=r["amount_minor"],
                findings=("payout.missing",),
            )
            for r in rows
        ],
    )


def _apart(paired: Pair) -> str:
    """How far the credit is from the payout, when it arrived within the tolerance."""
    if paired.status != "arrived" or not paired.difference_minor:
        return ""
    allowed = paired.credit.tolerance.amount_minor
    return (
        f", {paired.difference_minor:+d} minor units from the payout, within the account's "
        f"tolerance of {allowed}"
    )


async def _arrived(driver: Any, pairs: list[Pair], seen: dict[str, _Seen], now: datetime) -> None:
    """Credits paired: a missing payout's exception closes; one short opens its own; an entry
    reported unexpected before is explained."""
    await close(
        driver,
        now,
        [f"missing:{p.expected.payout_id}" for p in pairs]
        + [f"unexpected:{p.credit.credit_id}" for p in pairs],
        status="resolved",
        by=SYSTEM,
        action="arrived",
        notes=[f"credit {p.credit.credit_id} arrived ({p.status}{_apart(p)})" for p in pairs]
        + [f"expected as payout {p.expected.payout_id}" for p in pairs],
    )
    short = [p for p in pairs if p.status == "short"]
    if not short:
        return
    rows = {
        r["payout_id"]: r
        for r in await driver.fetch(
            "SELECT payout_id, file_id, merchant_id, currency, amount_minor, count, value_date, "
            "reference, due_on FROM payouts WHERE payout_id = ANY($1::text[])",
            [p.expected.payout_id for p in short],
        )
    }
    await open_items(
        driver,
        now,
        [
            Opened(
                f"short:{p.expected.payout_id}",
                "short_payout",
                rows[p.expected.payout_id]["file_id"],
                payout_evidence(rows[p.expected.payout_id])
                | {
                    "credited_minor": p.credit.amount_minor,
                    "difference_minor": p.expected.amount_minor - p.credit.amount_minor,
                    "credit": seen[p.credit.credit_id].evidence,
                },
                payout_id=p.expected.payout_id,
                merchant_id=rows[p.expected.payout_id]["merchant_id"],
                currency=p.expected.currency,
                amount_minor=p.expected.amount_minor - p.credit.amount_minor,
                findings=("payout.short",),
            )
            for p in short
        ],
    )

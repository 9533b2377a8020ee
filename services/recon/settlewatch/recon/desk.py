"""What an operator does with the exception queue (SPEC §9, §16): match by hand, write off (above
the approval limit, proposed by one token and approved or rejected by another: four eyes),
reopen, assign to a person.

A hand match has the effects of an automatic one: a report line matched to a payment is
recorded with the rule ``manual`` and published as a settlement by the matching loop (the
payment is settled exactly as by a rule); a missing payout paired with a credit reported
unexpected becomes ``arrived`` (or ``short``, opening that exception) and the credit is
explained. Either closes the exception and resolves its finding, noting who, when and why. A
write-off closes it with a reason, and a written-off line is not tried again; reopening brings
it back (the alert it raised stays resolved: alerts only move forward). A request is
all-or-nothing: one item that cannot be done refuses them all, naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.db import driver_transaction
from settlewatch.common.problems import ProblemError
from settlewatch.recon.desk_items import Opened, Status, close, history_entry, open_items
from settlewatch.recon.matching import refusals, settlement_of
from settlewatch.recon.metrics import FILE_LINES
from settlewatch.recon.reconciling import payout_evidence

__all__ = ["Desk", "HandMatch"]

LINE_KINDS = ("unmatched_line", "ambiguous_line", "flagged")
_ITEMS = """
SELECT exception_id, kind, status, file_id, seq, payout_id, currency, amount_minor, proposed_by
FROM file_exceptions WHERE exception_id = ANY($1::text[]) FOR UPDATE
"""
_RECORDS = """
SELECT r.file_id, r.seq, r.kind, r.body, f.received_at
FROM settlement_file_records r JOIN settlement_files f USING (file_id)
WHERE (r.file_id, r.seq) IN (SELECT * FROM unnest($1::text[], $2::int[]))
"""
_PAYMENTS = """
SELECT DISTINCT ON (txn_id) txn_id, merchant_id, bank_code FROM matcher_read_payments
WHERE txn_id = ANY($1::text[])
"""
_MATCH_LINES = """
UPDATE settlement_file_records AS r
SET match_status = 'matched', match_rule = 'manual', txn_id = d.txn_id,
    merchant_id = d.merchant_id, matched_at = $1, published_at = NULL
FROM unnest($2::text[], $3::int[], $4::text[], $5::text[]) AS d(file_id, seq, txn_id, merchant_id)
WHERE r.file_id = d.file_id AND r.seq = d.seq
"""
_LINE_STATUS = """
UPDATE settlement_file_records AS r SET match_status = $1
FROM unnest($2::text[], $3::int[]) AS d(file_id, seq)
WHERE r.file_id = d.file_id AND r.seq = d.seq AND r.match_status = ANY($4::text[])
"""
_ASSIGN = """
UPDATE file_exceptions SET assignee = $2, history = history || jsonb_build_array($4::jsonb),
    updated_at = $1
WHERE exception_id = ANY($3::text[])
"""
_PROPOSE = """
UPDATE file_exceptions SET status = 'pending_approval', proposed_by = $3,
    history = history || jsonb_build_array($4::jsonb), updated_at = $1
WHERE exception_id = ANY($2::text[])
"""
_UNPROPOSE = "UPDATE file_exceptions SET proposed_by = NULL WHERE exception_id = ANY($1::text[])"
_PAYOUTS = """
SELECT payout_id, source, status, file_id, merchant_id, currency, amount_minor, count,
       value_date, reference, due_on, credit_id, credit
FROM payouts WHERE payout_id = ANY($1::text[]) FOR UPDATE
"""
_PAIR = """
UPDATE payouts SET status = $2, credit_id = $3, credit = $4::jsonb,
    merchant_id = coalesce(merchant_id, $5), updated_at = now()
WHERE payout_id = $1
"""


@dataclass(frozen=True)
class HandMatch:
    exception_id: str
    txn_id: str | None = None  # for a report line
    payout_id: str | None = None  # for a missing payout (the credit) or a credit (the payout)


def _refuse(loc: list[Any], msg: str, status: int = 422) -> ProblemError:
    return ProblemError(status, msg, [{"loc": loc, "msg": msg}])


def _field(index: int | None, name: str) -> list[Any]:
    """Where a hand match's field is: in the bulk body's items, or the single one's body (the
    exception itself is in the path)."""
    if index is None:
        return ["path", "exception_id"] if name == "exception_id" else ["body", name]
    return ["body", "items", index, name]


def _named(index: int | None) -> list[Any]:
    """Where a write-off's or reopen's exception is named."""
    return ["path", "exception_id"] if index is None else ["body", "exception_ids", index]


class Desk:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        on_findings: Callable[[], None],
        on_matched: Callable[[], None],
        *,
        max_clock_skew: timedelta,
        approval: Mapping[str, int],
    ) -> None:
        self._engine = engine
        self._approval = approval  # per currency: the largest write-off one token makes alone
        self._max_clock_skew = max_clock_skew
        self._clock = clock
        self._on_findings = on_findings  # wakes the findings outbox
        self._on_matched = on_matched  # wakes the matching loop, which publishes hand matches

    async def match(
        self, items: Sequence[HandMatch], by: str, note: str | None, bulk: bool
    ) -> None:
        now = self._clock()
        async with driver_transaction(self._engine) as driver:
            found = await _locked_items(
                driver, [i.exception_id for i in items], lambda i: _field(i, "exception_id"), bulk
            )
            lines: list[tuple[int, HandMatch, Any]] = []
            pairs: list[tuple[int, HandMatch, Any]] = []
            for index, item in enumerate(items):
                row = found[item.exception_id]
                at = index if bulk else None
                if row["status"] != "open":
                    raise _refuse(
                        _field(at, "exception_id"), f"the exception is {row['status']}", 409
                    )
                if row["kind"] in LINE_KINDS and row["payout_id"] is None:
                    if item.txn_id is None:
                        raise _refuse(_field(at, "txn_id"), "a report line is matched to a payment")
                    lines.append((index, item, row))
                elif row["kind"] in ("missing_payout", "unexpected_credit"):
                    if item.payout_id is None:
                        raise _refuse(_field(at, "payout_id"), "a payout is matched to a payout")
                    pairs.append((index, item, row))
                else:
                    raise _refuse(
                        _field(at, "exception_id"),
                        f"a {row['kind']} cannot be matched; write it off",
                        409,
                    )
            await self._match_lines(driver, now, lines, by, note, bulk)
            await self._pair_payouts(driver, now, pairs, by, note, bulk)
        self._on_findings()
        self._on_matched()

    async def write_off(
        self, exception_ids: Sequence[str], by: str, reason: str, bulk: bool, token: str
    ) -> list[str]:
        """Close open exceptions with a reason. One above the approval limit of its currency
        waits instead for another token to approve it (pending_approval; `token` proposed it).
        Returns those waiting."""
        now = self._clock()
        async with driver_transaction(self._engine) as driver:
            found = await _locked_in(driver, exception_ids, "open", "written off", bulk)
            waiting = [e for e in exception_ids if self._needs_approval(found[e])]
            alone = [e for e in exception_ids if e not in set(waiting)]
            await _written_off(
                driver, now, found, alone, by=by, action="write-off", notes=[reason] * len(alone)
            )
            if waiting:
                entry = history_entry(now, by, "propose", reason)
                await driver.execute(_PROPOSE, now, waiting, token, entry)
        self._on_findings()
        self._on_matched()
        return waiting

    async def approve(
        self, exception_ids: Sequence[str], by: str, note: str | None, bulk: bool, token: str
    ) -> None:
        """Write off what another token proposed (four eyes): refused, naming the exception, when
        `token` is the one that proposed it."""
        now = self._clock()
        async with driver_transaction(self._engine) as driver:
            found = await _locked_in(driver, exception_ids, "pending_approval", "approved", bulk)
            for index, exception_id in enumerate(exception_ids):
                if found[exception_id]["proposed_by"] == token:
                    raise _refuse(
                        _named(index if bulk else None),
                        "a write-off is approved by another person than the one who proposed it",
                        403,
                    )
            notes = [note or "" for _ in exception_ids]
            await _written_off(
                driver,
                now,
                found,
                exception_ids,
                by=by,
                action="approve",
                notes=notes,
                from_status="pending_approval",
            )
        self._on_findings()
        self._on_matched()

    async def reject(self, exception_ids: Sequence[str], by: str, reason: str, bulk: bool) -> None:
        """Send a proposed write-off back to the queue, open, with the reason."""
        async with driver_transaction(self._engine) as driver:
            await _locked_in(driver, exception_ids, "pending_approval", "rejected", bulk)
            await close(
                driver,
                self._clock(),
                exception_ids,
                status="open",
                by=by,
                action="reject",
                notes=[reason] * len(exception_ids),
                from_statuses=["pending_approval"],
            )
            await driver.execute(_UNPROPOSE, list(exception_ids))

    def _needs_approval(self, item: Any) -> bool:
        limit = self._approval.get(item["currency"] or "")
        return limit is not None and abs(item["amount_minor"] or 0) > limit

    async def assign(
        self, exception_ids: Sequence[str], assignee: str | None, by: str, bulk: bool
    ) -> None:
        """Give open exceptions to a person (None: to nobody), in their history."""
        now = self._clock()
        async with driver_transaction(self._engine) as driver:
            await _locked_in(driver, exception_ids, "open", "assigned", bulk)
            action = "unassign" if assignee is None else "assign"
            entry = history_entry(now, by, action, assignee or "")
            await driver.execute(_ASSIGN, now, assignee, list(exception_ids), entry)

    async def reopen(self, exception_ids: Sequence[str], by: str, reason: str, bulk: bool) -> None:
        async with driver_transaction(self._engine) as driver:
            found = await _locked_in(driver, exception_ids, "written_off", "reopened", bulk)
            await close(
                driver,
                self._clock(),
                exception_ids,
                status="open",
                by=by,
                action="reopen",
                notes=[reason] * len(exception_ids),
                from_statuses=["written_off"],
            )
            await _line_status(driver, [found[e] for e in exception_ids], "unmatched")
        self._on_findings()
        self._on_matched()

    async def _match_lines(
        self,
        driver: Any,
        now: datetime,
        lines: list[tuple[int, HandMatch, Any]],
        by: str,
        note: str | None,
        bulk: bool,
    ) -> None:
        if not lines:
            return
        records = {
            (r["file_id"], r["seq"]): r
            for r in await driver.fetch(
                _RECORDS, [r["file_id"] for *_, r in lines], [r["seq"] for *_, r in lines]
            )
        }
        payments = {
            r["txn_id"]: r for r in await driver.fetch(_PAYMENTS, [i.txn_id for _, i, _ in lines])
        }
        for index, item, row in lines:
            at = index if bulk else None
            record = records.get((row["file_id"], row["seq"]))
            if record is None or record["kind"] != "line":
                raise _refuse(
                    _field(at, "txn_id"), "only a report line is matched to a payment", 409
                )
            if item.txn_id not in payments:
                raise _refuse(
                    _field(at, "txn_id"), "no such payment (unknown, or no longer watched)"
                )
        merchants = {txn_id: payment["merchant_id"] for txn_id, payment in payments.items()}
        settlements = [
            settlement_of(
                dict(records[(row["file_id"], row["seq"])])
                | dict(payments[item.txn_id])
                | {"match_rule": "manual"}
            )
            for _, item, row in lines
        ]
        for position, errors in refusals(settlements, now, self._max_clock_skew).items():
            index = lines[position][0]
            said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise _refuse(
                _field(index if bulk else None, "txn_id"),
                f"the line's settlement would be refused by POST /v1/settlements ({said})",
            )
        await driver.execute(
            _MATCH_LINES,
            now,
            [r["file_id"] for *_, r in lines],
            [r["seq"] for *_, r in lines],
            [i.txn_id for _, i, _ in lines],
            [merchants[i.txn_id] for _, i, _ in lines],
        )
        await close(
            driver,
            now,
            [i.exception_id for _, i, _ in lines],
            status="matched",
            by=by,
            action="match",
            notes=[_said(f"matched to payment {i.txn_id}", note) for _, i, _ in lines],
            txn_ids=[i.txn_id for _, i, _ in lines],
        )
        FILE_LINES.labels("matched", "manual").inc(len(lines))

    async def _pair_payouts(
        self,
        driver: Any,
        now: datetime,
        pairs: list[tuple[int, HandMatch, Any]],
        by: str,
        note: str | None,
        bulk: bool,
    ) -> None:
        if not pairs:
            return
        named = [row["payout_id"] for *_, row in pairs] + [i.payout_id for _, i, _ in pairs]
        payouts = {r["payout_id"]: r for r in await driver.fetch(_PAYOUTS, named)}
        closing: list[tuple[str, str]] = []
        short: list[Opened] = []
        for index, item, row in pairs:
            at = index if bulk else None
            other = payouts.get(item.payout_id or "")
            mine = payouts[row["payout_id"]]
            expected, credit = (mine, other) if row["kind"] == "missing_payout" else (other, mine)
            if expected is None or credit is None:
                raise _refuse(_field(at, "payout_id"), "no such payout")
            if expected["source"] != "report" or expected["status"] not in ("expected", "missing"):
                raise _refuse(_field(at, "payout_id"), "name a payout expected from a report", 409)
            if credit["source"] != "statement" or credit["status"] != "unexpected":
                raise _refuse(_field(at, "payout_id"), "name a credit reported unexpected", 409)
            if credit["currency"] != expected["currency"]:
                raise _refuse(_field(at, "payout_id"), "the credit is in another currency")
            same = credit["amount_minor"] == expected["amount_minor"]
            # The credit is explained: its row goes, and the payout holds it.
            await driver.execute("DELETE FROM payouts WHERE payout_id = $1", credit["payout_id"])
            await driver.execute(
                _PAIR,
                expected["payout_id"],
                "arrived" if same else "short",
                credit["credit_id"],
                orjson.dumps(credit["credit"]).decode(),
                credit["merchant_id"],
            )
            why = _said(
                f"payout {expected['payout_id']} paired with credit {credit['credit_id']}", note
            )
            closing += [
                (f"missing:{expected['payout_id']}", why),
                (f"unexpected:{credit['payout_id']}", why),
            ]
            if not same:
                short.append(
                    Opened(
                        f"short:{expected['payout_id']}",
                        "short_payout",
                        expected["file_id"],
                        payout_evidence(expected)
                        | {
                            "credited_minor": credit["amount_minor"],
                            "difference_minor": expected["amount_minor"] - credit["amount_minor"],
                            "credit": credit["credit"],
                        },
                        payout_id=expected["payout_id"],
                        merchant_id=expected["merchant_id"] or credit["merchant_id"],
                        currency=expected["currency"],
                        amount_minor=expected["amount_minor"] - credit["amount_minor"],
                        findings=("payout.short",),
                    )
                )
        await close(
            driver,
            now,
            [e for e, _ in closing],
            status="matched",
            by=by,
            action="match",
            notes=[n for _, n in closing],
        )
        await open_items(driver, now, short)


async def _locked_items(
    driver: Any,
    exception_ids: Sequence[str],
    where: Callable[[int | None], list[Any]],
    bulk: bool,
) -> dict[str, Any]:
    """The named exceptions, locked; 404 naming the first that does not exist."""
    seen: set[str] = set()
    for index, exception_id in enumerate(exception_ids):
        if exception_id in seen:
            raise _refuse(where(index), "this exception is named twice")
        seen.add(exception_id)
    found = {r["exception_id"]: r for r in await driver.fetch(_ITEMS, list(exception_ids))}
    for index, exception_id in enumerate(exception_ids):
        if exception_id not in found:
            raise _refuse(where(index if bulk else None), "no such exception", 404)
    return found


async def _locked_in(
    driver: Any, exception_ids: Sequence[str], status: Status, done: str, bulk: bool
) -> dict[str, Any]:
    """The named exceptions, locked, each in `status`; 409 naming the first that is not."""
    found = await _locked_items(driver, exception_ids, _named, bulk)
    for index, exception_id in enumerate(exception_ids):
        if (now := found[exception_id]["status"]) != status:
            raise _refuse(
                _named(index if bulk else None),
                f"only an exception that is {status.replace('_', ' ')} can be {done} "
                f"(this one is {now.replace('_', ' ')})",
                409,
            )
    return found


async def _written_off(
    driver: Any,
    now: datetime,
    found: dict[str, Any],
    exception_ids: Sequence[str],
    *,
    by: str,
    action: str,
    notes: Sequence[str],
    from_status: Status = "open",
) -> None:
    """Closed as written off, their findings resolved; a written-off line is not tried again."""
    await close(
        driver,
        now,
        exception_ids,
        status="written_off",
        by=by,
        action=action,
        notes=notes,
        from_statuses=[from_status],
    )
    await _line_status(driver, [found[e] for e in exception_ids], "written_off")


async def _line_status(driver: Any, items: Sequence[Any], status: str) -> None:
    """The report lines behind `items` written off (not tried again), or unmatched again."""
    records = [r for r in items if r["kind"] in LINE_KINDS]
    await driver.execute(
        _LINE_STATUS,
        status,
        [r["file_id"] for r in records],
        [r["seq"] for r in records],
        ["unmatched", "ambiguous"] if status == "written_off" else ["written_off"],
    )


def _said(what: str, note: str | None) -> str:
    return f"{what}: {note}" if note else what

"""The desk's items — what the API and SPEC §9 call exceptions (`/v1/exceptions`, table
``file_exceptions``); "desk item" in the code, so the word is not also Python's — and the
findings they raise.

What the loops cannot decide — a line nothing matched or that matched several payments, a
flagged record, a payout missing or short, a statement entry nobody expected — is an item,
opened in the same transaction that decided it, together with its findings (``file_findings``,
an outbox published to the findings topic like the matcher's). Closing an exception — the
evidence arriving, a hand match, a write-off — resolves its findings in the same way, so the
alert closes with a note saying why. Each change is kept in the exception's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from settlewatch.common.catalogue import DESK_AGES
from settlewatch.common.events import FindingRecord, finding_json
from settlewatch.common.findings import FindingType, kind

__all__ = [
    "AGES",
    "Age",
    "Closed",
    "Kind",
    "Opened",
    "Status",
    "WAITING",
    "close",
    "age_of",
    "history_entry",
    "open_items",
]

Kind = Literal[
    "unmatched_line",
    "ambiguous_line",
    "invalid_line",  # matched, but its settlement would break the API's rules
    "flagged",
    "missing_payout",
    "short_payout",
    "unexpected_credit",
    "unexpected_debit",
]
# pending_approval: a write-off over the approval limit, waiting for a second token.
Status = Literal["open", "pending_approval", "matched", "written_off", "resolved"]
WAITING: tuple[Status, ...] = ("open", "pending_approval")  # for a person, or for a second one
SYSTEM = "settlewatch"
# The desk's ageing buckets by whole days open, inclusive (SPEC §15; named in DESK_AGES).
AGES = tuple(zip(DESK_AGES, (0, 2, 8, 31), (1, 7, 30, None), strict=True))
Age = Literal["0-1", "2-7", "8-30", ">30"]  # DESK_AGES, for the API's validation


def age_of(days: int) -> str:
    """The bucket of an exception open `days` whole days."""
    return next(name for name, _low, high in AGES if high is None or days <= high)


@dataclass(frozen=True)
class Opened:
    exception_id: str
    kind: Kind
    file_id: str
    evidence: dict[str, Any]
    seq: int | None = None
    payout_id: str | None = None
    merchant_id: str | None = None
    currency: str | None = None
    amount_minor: int | None = None
    findings: tuple[FindingType, ...] = ()  # the finding types it raises
    txn_id: str | None = None


@dataclass(frozen=True)
class Closed:
    """An exception closed, with the findings to resolve."""

    exception_id: str
    finding_ids: list[str]
    merchant_id: str | None
    evidence: dict[str, Any] = field(default_factory=dict)


def finding_id(finding_type: str, exception_id: str) -> str:
    """type + subject: the exception's subject (a line, a payout) without its prefix."""
    return f"{finding_type}:{exception_id.partition(':')[2]}"


def history_entry(at: datetime, by: str, action: str, note: str) -> str:
    """An entry of an exception's history, as JSON: when, who, what (catalogue.DESK_ACTIONS),
    why."""
    return orjson.dumps({"at": at.isoformat(), "by": by, "action": action, "note": note}).decode()


# A new exception, or one whose kind changed while open (a line unmatched, then ambiguous once
# a second payment arrives): either raises its finding.
_OPEN = """
INSERT INTO file_exceptions (exception_id, kind, status, file_id, seq, payout_id, merchant_id,
    currency, amount_minor, finding_ids, evidence, history, opened_at, updated_at)
SELECT e.id, e.kind, 'open', e.file_id, e.seq, e.payout_id, e.merchant_id, e.currency,
    e.amount, e.finding_ids::jsonb, e.evidence::jsonb, jsonb_build_array(e.history::jsonb), $1, $1
FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::text[], $11::text[], $12::text[])
    AS e(id, kind, file_id, seq, payout_id, merchant_id, currency, amount, finding_ids,
         evidence, history)
ON CONFLICT (exception_id) DO UPDATE
SET kind = excluded.kind, finding_ids = excluded.finding_ids, evidence = excluded.evidence,
    history = file_exceptions.history || excluded.history, updated_at = excluded.updated_at
WHERE file_exceptions.status = 'open' AND file_exceptions.kind <> excluded.kind
RETURNING exception_id
"""
_CLOSE = """
UPDATE file_exceptions AS x
SET status = $2, history = x.history || jsonb_build_array(c.entry::jsonb), updated_at = $1
FROM unnest($3::text[], $4::text[]) AS c(id, entry)
WHERE x.exception_id = c.id AND x.status = ANY($5::text[])
RETURNING x.exception_id, x.finding_ids, x.merchant_id, x.evidence
"""
_OUTBOX = """
INSERT INTO file_findings (key, merchant_id, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[]::jsonb[])
ON CONFLICT (key) DO NOTHING
"""


async def open_items(driver: Any, at: datetime, opened: Sequence[Opened]) -> None:
    """Open each exception (once) and raise its findings."""
    if not opened:
        return
    ids = [[finding_id(f, o.exception_id) for f in o.findings] for o in opened]
    raised = {
        row["exception_id"]
        for row in await driver.fetch(
            _OPEN,
            at,
            [o.exception_id for o in opened],
            [o.kind for o in opened],
            [o.file_id for o in opened],
            [o.seq for o in opened],
            [o.payout_id for o in opened],
            [o.merchant_id for o in opened],
            [o.currency for o in opened],
            [o.amount_minor for o in opened],
            [orjson.dumps(i).decode() for i in ids],
            [orjson.dumps(o.evidence).decode() for o in opened],
            [history_entry(at, SYSTEM, "opened", o.kind.replace("_", " ")) for o in opened],
        )
    }
    await _outbox(
        driver,
        [
            _finding(fid, finding_type, "open", at, o.merchant_id, o.txn_id, o.evidence)
            for o, fids in zip(opened, ids, strict=True)
            if o.exception_id in raised
            for finding_type, fid in zip(o.findings, fids, strict=True)
        ],
    )


async def close(
    driver: Any,
    at: datetime,
    exception_ids: Sequence[str],
    *,
    status: Status,
    by: str,
    action: str,
    notes: Sequence[str],
    from_statuses: Sequence[Status] = WAITING,
    txn_ids: Sequence[str | None] | None = None,
) -> list[Closed]:
    """Move the exceptions that are in one of `from_statuses` (by default those waiting: the
    evidence arriving also settles a write-off awaiting approval) to `status` (reopen: to open),
    noting who and why (`notes`, one per exception); the findings of those closed are resolved,
    naming why (and the payment it was matched to, `txn_ids`)."""
    if not exception_ids:
        return []
    rows = await driver.fetch(
        _CLOSE,
        at,
        status,
        list(exception_ids),
        [history_entry(at, by, action, n) for n in notes],
        list(from_statuses),
    )
    why = dict(zip(exception_ids, notes, strict=True))
    txn = dict(zip(exception_ids, txn_ids or [None] * len(exception_ids), strict=True))
    closed = [
        Closed(r["exception_id"], r["finding_ids"], r["merchant_id"], r["evidence"]) for r in rows
    ]
    if status != "open":
        await _outbox(
            driver,
            [
                _finding(
                    fid,
                    kind(fid.split(":", 1)[0]).type,
                    "resolved",
                    at,
                    c.merchant_id,
                    txn[c.exception_id],
                    c.evidence | {"resolution": f"{action} by {by}: {why[c.exception_id]}"},
                )
                for c in closed
                for fid in c.finding_ids
            ],
        )
    return closed


def _finding(
    fid: str,
    finding_type: FindingType,
    state: Literal["open", "resolved"],
    at: datetime,
    merchant_id: str | None,
    txn_id: str | None,
    evidence: dict[str, Any],
) -> tuple[str, str | None, str]:
    body = finding_json(
        FindingRecord(
            id=fid,
            type=finding_type,
            state=state,
            at=at,
            merchant_id=merchant_id,
            txn_id=txn_id,
            evidence=evidence,
        )
    )
    return f"{fid}#{state}", merchant_id, orjson.dumps(body).decode()


async def _outbox(driver: Any, findings: list[tuple[str, str | None, str]]) -> None:
    if findings:
        await driver.execute(
            _OUTBOX,
            [f[0] for f in findings],
            [f[1] for f in findings],
            [f[2] for f in findings],
        )

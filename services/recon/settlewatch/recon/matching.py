"""The loop that matches imported report lines to payments and settles them (SPEC §9).

Each round takes a batch of unmatched lines (``FOR UPDATE SKIP LOCKED``: several recon
instances share the work), looks their candidates up rule by rule in the matcher's read view
``matcher_read_payments`` (one set-based query per rule), records each decision with the rule
that made it, and publishes every match as an ordinary settlement — ``settlement_id``
``<file_id>:<seq>``, keyed by merchant — so the matcher settles the payment exactly as it would a
JSON settlement, with the same statuses, findings and idempotency. A line whose payment is not
known yet (its transaction still on its way) is tried again every ``retry_after``; meanwhile it
is an ``unmatched_line`` exception, and a line that matches several payments an
``ambiguous_line`` one with its ``settlement.ambiguous_line`` finding (``exceptions``), until a
rule or an operator matches it. An unmatched line that takes money from the merchant (a fee, a
fee debit, a chargeback, a negative adjustment) is a deduction no announced ``fee_debit`` or
``chargeback`` explains: its exception raises ``fee.unexpected_deduction`` for the line's
merchant (SPEC §11), resolved if an announced debit matches it later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.db import driver_session, driver_transaction
from settlewatch.common.events import encode_event
from settlewatch.common.findings import FindingType
from settlewatch.common.kafka import Topics
from settlewatch.common.loops import Alarm
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import Message, Publisher
from settlewatch.common.validation import Error, checked_settlements
from settlewatch.recon.desk_items import SYSTEM, Opened, close, open_items
from settlewatch.recon.metrics import FILE_LINES
from settlewatch.recon.rules import (
    RULES,
    Candidate,
    Decision,
    Rule,
    applicable,
    decide,
    line_keys,
)

__all__ = ["BATCH", "LineMatcher", "refusals", "settlement_of"]

BATCH = 2000
# Report lines that take money from the merchant outside a refund (SPEC §11): an announced
# fee_debit or chargeback explains them, else they are an unexpected deduction.
DEDUCTIONS = frozenset({"fee", "fee_debit", "chargeback", "adjustment"})
_TYPES = {"amount_minor": "bigint", "business_date": "date"}  # the others are text

_CLAIM = """
SELECT r.file_id, r.seq, r.body, r.matched_at, f.received_at
FROM settlement_file_records r JOIN settlement_files f USING (file_id)
WHERE r.match_status = 'unmatched' AND r.kind = 'line'
  AND (r.matched_at IS NULL OR r.matched_at < $1)
ORDER BY r.file_id, r.seq LIMIT $2 FOR UPDATE OF r SKIP LOCKED
"""
_RECORD = """
UPDATE settlement_file_records AS r
SET match_status = d.status, match_rule = d.rule, txn_id = d.txn_id,
    merchant_id = d.merchant_id, matched_at = $1
FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
    AS d(file_id, seq, status, rule, txn_id, merchant_id)
WHERE r.file_id = d.file_id AND r.seq = d.seq
"""
_UNPUBLISHED = """
SELECT r.file_id, r.seq, r.body, r.txn_id, r.merchant_id, r.match_rule, f.received_at,
       p.bank_code
FROM settlement_file_records r
JOIN settlement_files f USING (file_id)
LEFT JOIN LATERAL (
    SELECT bank_code FROM matcher_read_payments WHERE txn_id = r.txn_id LIMIT 1
) p ON true
WHERE r.match_status = 'matched' AND r.published_at IS NULL
ORDER BY r.file_id, r.seq LIMIT $1
"""
_PUBLISHED = """
UPDATE settlement_file_records AS r SET published_at = $1
FROM unnest($2::text[], $3::int[]) AS d(file_id, seq)
WHERE r.file_id = d.file_id AND r.seq = d.seq
"""


def _lookup_sql(rule: Rule) -> str:
    """Every payment equal to a line on the rule's fields, for a batch of lines (index k)."""
    arrays = ", ".join(f"${i + 2}::{_TYPES.get(f, 'text')}[]" for i, f in enumerate(rule.fields))
    names = ", ".join(rule.fields)
    equal = " AND ".join(f"p.{f} = l.{f}" for f in rule.fields)
    return (
        f"SELECT DISTINCT l.k, p.txn_id, p.merchant_id, p.bank_code "
        f"FROM unnest($1::int[], {arrays}) AS l(k, {names}) "
        f"JOIN matcher_read_payments p ON {equal}"
    )


class LineMatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        topics: Topics,
        clock: Callable[[], datetime],
        on_findings: Callable[[], None],
        on_decided: Callable[[], None],
        *,
        max_clock_skew: timedelta,
        every: float = 2.0,
        retry_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self._engine = engine
        self._max_clock_skew = max_clock_skew
        self._publisher = publisher
        self._topics = topics
        self._clock = clock
        self._on_findings = on_findings  # wakes the findings outbox
        self._on_decided = on_decided  # wakes the payouts' reconciler: their merchant is known
        self._every = every
        self._retry_after = retry_after
        self._alarm = Alarm()

    def wake(self) -> None:
        """A file was imported: match its lines now rather than at the next round."""
        self._alarm.wake()

    async def run(self) -> None:
        while True:
            if not await self.round():
                await self._alarm.sleep(self._every)

    async def round(self) -> bool:
        """Decide a batch, publish the matches; whether there was work (do another round)."""
        decided = await self._decide_batch()
        published = await self._publish_batch()
        return decided == BATCH or published == BATCH

    async def _decide_batch(self) -> int:
        now = self._clock()
        async with driver_transaction(self._engine) as driver:  # FOR UPDATE until the commit
            rows = await driver.fetch(_CLAIM, now - self._retry_after, BATCH)
            if not rows:
                return 0
            keys = [line_keys(row["body"]) for row in rows]
            decisions = await _decisions(driver, keys)
            matched = [i for i, d in enumerate(decisions) if d.status == "matched"]
            refused = {
                matched[i]: errors
                for i, errors in refusals(
                    [settlement_of(_as_matched(rows[i], decisions[i])) for i in matched],
                    now,
                    self._max_clock_skew,
                ).items()
            }
            # A refused line keeps the payment it named: its exception shows which.
            chosen = [d.candidates[0] if d.status == "matched" else None for d in decisions]
            await driver.execute(
                _RECORD,
                now,
                [row["file_id"] for row in rows],
                [row["seq"] for row in rows],
                ["invalid" if i in refused else d.status for i, d in enumerate(decisions)],
                [d.rule for d in decisions],
                [c.txn_id if c else None for c in chosen],
                [c.merchant_id if c else None for c in chosen],
            )
            await _open_line_items(driver, now, rows, decisions, refused)
        self._on_findings()
        self._on_decided()
        for index, decision in enumerate(decisions):
            if decision.status != "unmatched":
                status = "invalid" if index in refused else decision.status
                FILE_LINES.labels(status, decision.rule or "").inc()
        return len(rows)

    async def _publish_batch(self) -> int:
        async with driver_session(self._engine) as driver:
            rows = await driver.fetch(_UNPUBLISHED, BATCH)
        if not rows:
            return 0
        records: list[Message] = [
            (
                row["merchant_id"].encode(),
                encode_event("settlement", orjson.dumps(settlement_of(row))),
            )
            for row in rows
        ]
        await self._publisher.publish(self._topics.settlements, records)
        async with driver_transaction(self._engine) as driver:
            await driver.execute(
                _PUBLISHED,
                self._clock(),
                [row["file_id"] for row in rows],
                [row["seq"] for row in rows],
            )
        return len(rows)


async def _decisions(driver: Any, keys: Sequence[dict[str, Any]]) -> list[Decision]:
    """Each line's decision, the rules run set-based over the whole batch."""
    rules = [applicable(k) for k in keys]
    found: list[list[tuple[Rule, list[Candidate]]]] = [[] for _ in keys]
    for rule in RULES:  # in order, so each line's list is too
        lines = [i for i, line_rules in enumerate(rules) if rule in line_rules]
        if not lines:
            continue
        arrays = [[_typed(keys[i][f], f) for i in lines] for f in rule.fields]
        hits: defaultdict[int, list[Candidate]] = defaultdict(list)
        for row in await driver.fetch(_lookup_sql(rule), lines, *arrays):
            hits[row["k"]].append(Candidate(row["txn_id"], row["merchant_id"], row["bank_code"]))
        for i in lines:
            found[i].append((rule, hits[i]))
    return [decide(f) for f in found]


async def _open_line_items(
    driver: Any,
    now: datetime,
    rows: Sequence[Any],
    decisions: Sequence[Decision],
    refused: dict[int, list[Error]],
) -> None:
    """Lines no rule decided are exceptions, and so are those matched whose settlement the API
    would refuse; a line a rule matched at last closes its own."""
    opened: list[Opened] = []
    matched: list[tuple[str, Decision]] = []  # those tried before may have an exception open
    for index, (row, decision) in enumerate(zip(rows, decisions, strict=True)):
        exception_id = f"line:{row['file_id']}:{row['seq']}"
        if index in refused:
            line = row["body"]
            evidence = line_evidence(row["file_id"], row["seq"], line) | {
                "txn_id": decision.candidates[0].txn_id,
                "rule": decision.rule,
                "errors": refused[index],
            }
            opened.append(
                Opened(
                    exception_id,
                    "invalid_line",
                    row["file_id"],
                    evidence,
                    seq=row["seq"],
                    currency=line["currency"],
                    amount_minor=line["net_minor"],
                )
            )
            continue
        if decision.status == "matched":
            if row["matched_at"] is not None:
                matched.append((exception_id, decision))
            continue
        ambiguous = decision.status == "ambiguous"
        line = row["body"]
        deduction = not ambiguous and line.get("kind") in DEDUCTIONS and line["net_minor"] < 0
        evidence = line_evidence(row["file_id"], row["seq"], line)
        if ambiguous:
            evidence |= {"rule": decision.rule, "txn_ids": [c.txn_id for c in decision.candidates]}
        if deduction:
            evidence |= {"line_kind": line["kind"], "value_date": line.get("value_date")}
        findings: tuple[FindingType, ...] = (
            ("settlement.ambiguous_line",)
            if ambiguous
            else ("fee.unexpected_deduction",)
            if deduction
            else ()
        )
        opened.append(
            Opened(
                exception_id,
                "ambiguous_line" if ambiguous else "unmatched_line",
                row["file_id"],
                evidence,
                seq=row["seq"],
                merchant_id=line.get("merchant_id") if deduction else None,
                currency=line["currency"],
                amount_minor=line["net_minor"],
                findings=findings,
            )
        )
    await open_items(driver, now, opened)
    await close(
        driver,
        now,
        [exception_id for exception_id, _ in matched],
        status="resolved",
        by=SYSTEM,
        action="matched",
        notes=[f"rule {d.rule} matched payment {d.candidates[0].txn_id}" for _, d in matched],
        txn_ids=[d.candidates[0].txn_id for _, d in matched],
    )


def line_evidence(file_id: str, seq: int, line: dict[str, Any]) -> dict[str, Any]:
    """What an operator and a merchant need to find a report line again."""
    amount = line.get("gross_minor")
    return {
        "file_id": file_id,
        "seq": seq,
        "loc": line.get("loc"),
        "batch_id": line.get("batch_id"),
        "currency": line["currency"],
        "amount_minor": abs(amount if amount is not None else line["net_minor"]),
        "net_minor": line["net_minor"],
        "occurred_at": line.get("occurred_at"),
    } | {k: line[k] for k in ("terminal_id", "rrn", "stan", "auth_code") if line.get(k)}


def _typed(value: Any, field: str) -> Any:
    if field == "business_date" and isinstance(value, str):
        return datetime.fromisoformat(value).date()
    return value


def refusals(
    settlements: list[dict[str, Any]], now: datetime, skew: timedelta
) -> dict[int, list[Error]]:
    """Which of `settlements` ``POST /v1/settlements`` would refuse, each with the fields it
    would name: a matched line is published only as a settlement the API would accept."""
    if not settlements:
        return {}
    try:
        checked_settlements(orjson.dumps({"items": settlements}), now, skew)
    except ProblemError as problem:
        found: defaultdict[int, list[Error]] = defaultdict(list)
        for error in problem.errors:
            loc = error["loc"]  # ["items", index, field…]
            found[loc[1]].append({"loc": ["settlement", *loc[2:]], "msg": error["msg"]})
        return dict(found)
    return {}


def _as_matched(row: Any, decision: Decision) -> dict[str, Any]:
    """A claimed line as it reads once recorded matched by `decision`."""
    candidate = decision.candidates[0]
    return dict(row) | {
        "txn_id": candidate.txn_id,
        "merchant_id": candidate.merchant_id,
        "bank_code": candidate.bank_code,
        "match_rule": decision.rule,
    }


def settlement_of(row: Any) -> dict[str, Any]:
    """A matched line as the settlement the acquirer would have posted."""
    line = row["body"]
    net = line["net_minor"]
    gross = line["gross_minor"] if line.get("gross_minor") is not None else net
    fee = line["fee_minor"] if line.get("fee_minor") is not None else gross - net
    settlement: dict[str, Any] = {
        "settlement_id": f"{row['file_id']}:{row['seq']}",
        "merchant_id": row["merchant_id"],
        "bank_code": row["bank_code"] or "unknown",
        "status": "settled",
        "occurred_at": row["received_at"].isoformat(),  # when the evidence arrived
        "matched_by": row["match_rule"],
        "items": [
            {"txn_id": row["txn_id"], "gross_minor": gross, "fee_minor": fee, "net_minor": net}
            # The terminal the bank booked it under (books after a migration, SPEC §12).
            | ({"terminal_id": line["terminal_id"]} if line.get("terminal_id") else {})
        ],
    }
    if line.get("value_date"):
        settlement["value_date"] = line["value_date"]
    return settlement

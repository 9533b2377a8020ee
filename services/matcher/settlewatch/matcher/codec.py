"""The matcher state for the store: a payment as two rows of typed columns (its facts, written
once, and its state), the rest of a partition in one JSON document. Explicit, field by field, so
a newer matcher can read an older state."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from settlewatch.common.calendar import BusinessCalendar, LoadedYear
from settlewatch.common.events import FindingRecord, finding_json
from settlewatch.common.fees import FeeRule, FeeSchedule, FeeVersion
from settlewatch.matcher.core.deadlines import Schedule, Window
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import (
    REGION_JUMP_WINDOW,
    Announced,
    Finding,
    MerchantTerms,
    PartitionState,
    Payment,
    RegionSeen,
    SaleKey,
    SettlementFact,
    TerminalInfo,
    shared_args,
)

__all__ = [
    "fact_row",
    "finding_to_json",
    "partition_from_json",
    "partition_to_json",
    "FACT_COLUMNS",
    "JSON_COLUMNS",
    "PAYMENT_COLUMNS",
    "PAYMENT_SELECT",
    "PAYMENTS_FROM",
    "STATE_COLUMNS",
    "STATE_ONLY_COLUMNS",
    "payment_from_row",
    "payment_row",
    "payment_rows",
    "reference_to_json",
    "state_row",
]

Json = dict[str, Any]


def _fact_to_json(fact: SettlementFact) -> Json:
    return {
        "settlement_id": fact.settlement_id,
        "status": fact.status,
        "occurred_at": fact.occurred_at.isoformat(),
        "gross_minor": fact.gross_minor,
        "fee_minor": fact.fee_minor,
        "net_minor": fact.net_minor,
        "failure_reason": fact.failure_reason,
        "matched_by": fact.matched_by,
        "terminal_id": fact.terminal_id,
    }


def _fact_from_json(data: Json) -> SettlementFact:
    return SettlementFact(**(data | {"occurred_at": datetime.fromisoformat(data["occurred_at"])}))


# A payment's two rows (migrations 0014, 0022): its facts in matcher_payments and its state in
# matcher_payment_states, each in this order: scalars as typed columns, a timestamp's offset in
# seconds east of UTC beside it, collections as JSON. The state repeats the key, the partition
# and the facts the totals group by.
FACT_COLUMNS = [
    "txn_id",
    "business_date",
    "partition",
    "merchant_id",
    "kind",
    "bank_code",
    "currency",
    "amount_minor",
    "occurred_at",
    "occurred_offset",
    "card_fingerprint",
    "expected_net_minor",
    "fee_rule",
    "cycle",
    "digest",
    "evidence",
]
_COPIED = ["txn_id", "business_date", "partition", "merchant_id", "bank_code", "currency"]
STATE_COLUMNS = [
    *_COPIED,
    "amount_minor",
    "status",
    "due_at",
    "due_offset",
    "base_due_at",
    "base_due_offset",
    "deadline_basis",
    "reported",
    "overdue_fired",
    "unfired",
    "deadline_moves",
    "cancelled",
    "refunds_exceeded",
    "paid_after_void",
    "refunds",
    "conflicts",
    "settlements",
    "history",
]
# The state's own columns (after the copied key and facts): what a read takes from the state.
STATE_ONLY_COLUMNS = STATE_COLUMNS[STATE_COLUMNS.index("status") :]
JSON_COLUMNS = {"evidence", "refunds", "conflicts", "settlements", "history"}
# A payment as a read sees it: the facts (f) joined to the state (s), for payment_from_row.
PAYMENT_COLUMNS = [*FACT_COLUMNS, *STATE_ONLY_COLUMNS]
PAYMENTS_FROM = (
    "matcher_payments f JOIN matcher_payment_states s "
    "ON s.txn_id = f.txn_id AND s.business_date = f.business_date"
)
PAYMENT_SELECT = ", ".join(
    f"{'s' if c in STATE_ONLY_COLUMNS else 'f'}.{c}{'::text' if c in JSON_COLUMNS else ''}"
    for c in PAYMENT_COLUMNS
)


def _offset(at: datetime) -> int:
    return int(at.utcoffset().total_seconds())  # type: ignore[union-attr]  # always aware


@lru_cache(maxsize=64)
def _zone(offset: int) -> timezone:
    return timezone(timedelta(seconds=offset))


def fact_row(payment: Payment, partition: int) -> tuple[Any, ...]:
    """A payment's facts as a row of FACT_COLUMNS (the evidence as JSON text)."""
    p = payment
    return (
        p.txn_id,
        p.business_date,
        partition,
        p.merchant_id,
        p.kind,
        p.bank_code,
        p.currency,
        p.amount_minor,
        p.occurred_at,
        _offset(p.occurred_at),
        p.card_fingerprint,
        p.expected_net_minor,
        p.fee_rule,
        p.cycle,
        p.digest,
        orjson.dumps(p.evidence).decode(),
    )


def state_row(payment: Payment, partition: int) -> tuple[Any, ...]:
    """A payment's state as a row of STATE_COLUMNS (the collections as JSON text)."""
    p = payment
    dumps = orjson.dumps  # dataclasses, datetimes and tuples natively: fast
    return (
        p.txn_id,
        p.business_date,
        partition,
        p.merchant_id,
        p.bank_code,
        p.currency,
        p.amount_minor,
        p.status,
        p.due_at,
        _offset(p.due_at),
        p.base_due_at,
        _offset(p.base_due_at),
        p.deadline_basis,
        p.reported,
        p.overdue_fired,
        p.unfired,
        p.deadline_moves,
        p.cancelled,
        p.refunds_exceeded,
        p.paid_after_void,
        dumps(p.refunds).decode(),
        dumps(p.conflicts).decode(),
        dumps(p.settlements).decode(),
        dumps(p.history).decode(),
    )


def payment_rows(payment: Payment, partition: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A payment as its two rows: facts and state."""
    return fact_row(payment, partition), state_row(payment, partition)


def payment_row(payment: Payment, partition: int) -> tuple[Any, ...]:
    """A payment as one row of PAYMENT_COLUMNS, as a read joins its two rows (and as the one
    table held them before migration 0022)."""
    facts, state = payment_rows(payment, partition)
    return (*facts, *state[len(_COPIED) + 1 :])


def payment_from_row(row: Sequence[Any]) -> Payment:
    """A payment from a row read with PAYMENT_SELECT."""
    (
        txn_id,
        business_date,
        _partition,
        merchant_id,
        kind,
        bank_code,
        currency,
        amount_minor,
        occurred_at,
        occurred_offset,
        card_fingerprint,
        expected_net_minor,
        fee_rule,
        cycle,
        digest,
        evidence,
        status,
        due_at,
        due_offset,
        base_due_at,
        base_due_offset,
        deadline_basis,
        reported,
        overdue_fired,
        unfired,
        deadline_moves,
        cancelled,
        refunds_exceeded,
        paid_after_void,
        refunds,
        conflicts,
        settlements,
        history,
    ) = row
    loads = orjson.loads
    return Payment(
        txn_id=txn_id,
        merchant_id=merchant_id,
        kind=kind,
        amount_minor=amount_minor,
        currency=currency,
        occurred_at=occurred_at.astimezone(_zone(occurred_offset)),
        business_date=business_date,
        base_due_at=base_due_at.astimezone(_zone(base_due_offset)),
        due_at=due_at.astimezone(_zone(due_offset)),
        expected_net_minor=expected_net_minor,
        fee_rule=fee_rule,
        bank_code=bank_code,
        cycle=cycle,
        digest=digest,
        card_fingerprint=card_fingerprint,
        evidence=loads(evidence),
        deadline_basis=deadline_basis,
        status=status,
        reported=reported,
        overdue_fired=overdue_fired,
        unfired=unfired,
        deadline_moves=deadline_moves,
        cancelled=cancelled,
        conflicts=loads(conflicts),
        refunds=loads(refunds),
        refunds_exceeded=refunds_exceeded,
        paid_after_void=paid_after_void,
        settlements={sid: _fact_from_json(f) for sid, f in loads(settlements).items()},
        history=[
            (datetime.fromisoformat(at), code, shared_args(code, args))
            for at, code, args in loads(history)
        ],
    )


def _terms_to_json(terms: MerchantTerms) -> Json:
    schedule = terms.schedule
    return {
        "bank_code": terms.bank_code,
        "cycle": terms.cycle,
        "timezone": schedule.timezone.key,
        "calendar": schedule.calendar,
        "cutoff": schedule.cutoff.isoformat(),
        "due_time": schedule.due_time,
        "instant_sla_s": schedule.instant_sla.total_seconds() if schedule.instant_sla else None,
        "fees": [
            [v.effective_from.isoformat(), [dataclasses.asdict(r) for r in v.rules]]
            for v in terms.fees.versions
        ],
        "amount_tolerance_minor": terms.amount_tolerance_minor,
    }


def _terms_from_json(data: Json) -> MerchantTerms:
    sla = data["instant_sla_s"]
    return MerchantTerms(
        bank_code=data["bank_code"],
        cycle=data["cycle"],
        schedule=Schedule(
            timezone=ZoneInfo(data["timezone"]),
            calendar=data["calendar"],
            cycle=data["cycle"],
            cutoff=time.fromisoformat(data["cutoff"]),
            due_time=data["due_time"],
            instant_sla=timedelta(seconds=sla) if sla is not None else None,
        ),
        fees=_fees_from_json(data),
        amount_tolerance_minor=data["amount_tolerance_minor"],
    )


def _fees_from_json(data: Json) -> FeeSchedule:
    if "fees" not in data:  # saved before fee schedules: mdr_bps and fee_cap_minor
        return FeeSchedule.one_rule(data["mdr_bps"], data["fee_cap_minor"])
    return FeeSchedule(
        tuple(
            FeeVersion(date.fromisoformat(day), tuple(FeeRule(**r) for r in rules))
            for day, rules in data["fees"]
        )
    )


def finding_to_json(finding: Finding) -> Json:
    """The finding as the findings topic carries it (common.events.FindingRecord)."""
    return finding_json(
        FindingRecord(
            id=finding.id,
            type=finding.type,
            state=finding.state,
            at=finding.at,
            merchant_id=finding.merchant_id,
            txn_id=finding.txn_id,
            evidence=finding.evidence,
        )
    )


def _finding_from_json(data: Json) -> Finding:
    return Finding(**(data | {"at": datetime.fromisoformat(data["at"])}))


def _calendar_to_json(calendar: BusinessCalendar) -> Json:
    return {
        str(year): {
            "version": y.version,
            "holidays": sorted(d.isoformat() for d in y.holidays),
            "workdays": sorted(d.isoformat() for d in y.workdays),
            "source": y.source,
        }
        for year, y in calendar.loaded.items()
    }


def _calendar_from_json(name: str, data: Json) -> BusinessCalendar:
    years = {
        int(year): LoadedYear(
            version=y["version"],
            holidays=frozenset(date.fromisoformat(d) for d in y["holidays"]),
            workdays=frozenset(date.fromisoformat(d) for d in y["workdays"]),
            source=y["source"],
        )
        for year, y in data.items()
    }
    return BusinessCalendar(name, years)


def reference_to_json(state: PartitionState) -> Json:
    """Merchant terms, maintenance windows and loaded calendars: saved only when they changed."""
    return {
        "calendars": {name: _calendar_to_json(c) for name, c in state.calendars.items()},
        "merchants": {m: _terms_to_json(t) for m, t in state.merchants.items()},
        "terminals": {t: dataclasses.asdict(info) for t, info in state.terminals.items()},
        "windows": {
            bank: {wid: [w.starts_at.isoformat(), w.ends_at.isoformat()] for wid, w in ws.items()}
            for bank, ws in state.windows.items()
        },
    }


def partition_to_json(state: PartitionState) -> Json:
    """The rest of a partition but its payments (stored as rows) and its recent-sales index
    (rebuilt from them)."""
    return {
        "early_settlements": {
            txn: [_fact_to_json(f) for f in facts.values()]
            for txn, facts in state.early_settlements.items()
        },
        "early_settlement_merchant": [
            [s, t, m] for (s, t), m in state.early_settlement_merchant.items()
        ],
        "early_cancellations": {
            original: [void, at.isoformat()]
            for original, (void, at) in state.early_cancellations.items()
        },
        "early_refunds": {
            sale: {refund: [amount, at.isoformat()] for refund, (amount, at) in refunds.items()}
            for sale, refunds in state.early_refunds.items()
        },
        "unknown_reported": sorted(state.unknown_reported),
        "duplicate_candidates": sorted([t, at.isoformat()] for t, at in state.duplicate_candidates),
        "duplicate_pairs": sorted(state.duplicate_pairs),
        "reported_duplicates": [
            [a, b, later.isoformat()] for (a, b), later in state.reported_duplicates.items()
        ],
        "pending_findings": [finding_to_json(f) for f in state.pending_findings],
        "dirty": sorted(state.dirty),
        "missing_calendars": sorted(state.missing_calendars),
        "region_candidates": [_seen_to_json(seen) for seen in state.region_candidates.values()],
        "reported_daily": {f: day.isoformat() for f, day in state.reported_daily.items()},
        "announced_windows": {
            wid: [a.bank_code, a.starts_at.isoformat(), a.ends_at.isoformat(), a.reason]
            for wid, a in state.announced_windows.items()
        },
        "unfinished_tick": state.unfinished_tick.isoformat() if state.unfinished_tick else None,
    }


def _is_isoformat(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _seen_to_json(seen: RegionSeen) -> Json:
    return dataclasses.asdict(seen) | {"occurred_at": seen.occurred_at.isoformat()}


def _seen_from_json(data: Json) -> RegionSeen:
    return RegionSeen(**(data | {"occurred_at": datetime.fromisoformat(data["occurred_at"])}))


def partition_from_json(
    reference: Json,
    data: Json,
    clock: datetime | None,
    sales: Iterable[tuple[SaleKey, str, datetime]],
    regions: Iterable[RegionSeen] = (),
    region_jump_window: timedelta = REGION_JUMP_WINDOW,
) -> PartitionState:
    """A partition's state with an empty working set; `sales` are its recent sales and
    `regions` its terminals' recent transactions with a region."""
    state = PartitionState(clock=clock, region_jump_window=region_jump_window)
    state.merchants = {m: _terms_from_json(t) for m, t in reference.get("merchants", {}).items()}
    state.terminals = {t: TerminalInfo(**i) for t, i in reference.get("terminals", {}).items()}
    state.windows = {
        bank: {
            wid: Window(datetime.fromisoformat(s), datetime.fromisoformat(e))
            for wid, (s, e) in ws.items()
        }
        for bank, ws in reference.get("windows", {}).items()
    }
    state.calendars = {
        name: _calendar_from_json(name, years)
        for name, years in reference.get("calendars", {}).items()
    }
    state.early_settlements = {
        txn: {f["settlement_id"]: _fact_from_json(f) for f in facts}
        for txn, facts in data.get("early_settlements", {}).items()
    }
    state.early_settlement_merchant = {
        (s, t): m for s, t, m in data.get("early_settlement_merchant", [])
    }
    state.early_cancellations = {
        original: (void, datetime.fromisoformat(at))
        for original, (void, at) in data.get("early_cancellations", {}).items()
    }
    state.early_refunds = {
        sale: {refund: (amount, datetime.fromisoformat(at)) for refund, (amount, at) in r.items()}
        for sale, r in data.get("early_refunds", {}).items()
    }
    state.unknown_reported = {(s, t) for s, t in data.get("unknown_reported", [])}
    # A candidate is a new sale and when its look-alike occurred; a document saved before issue
    # 32 holds pairs of txn_ids instead, judged as they are.
    for first, second in data.get("duplicate_candidates", []):
        if _is_isoformat(second):
            state.duplicate_candidates.add((first, datetime.fromisoformat(second)))
        else:
            state.duplicate_pairs.add((first, second))
    state.duplicate_pairs |= {(a, b) for a, b in data.get("duplicate_pairs", [])}
    state.reported_duplicates = {
        (a, b): datetime.fromisoformat(later) for a, b, later in data.get("reported_duplicates", [])
    }
    state.pending_findings = [_finding_from_json(f) for f in data.get("pending_findings", [])]
    state.dirty = set(data.get("dirty", []))
    state.missing_calendars = {(name, year) for name, year in data.get("missing_calendars", [])}
    regions = list(regions)
    recent = {seen.txn_id: seen for seen in regions}
    state.region_candidates = {}
    for candidate in data.get("region_candidates", []):
        if "merchant_id" in candidate:
            seen = _seen_from_json(candidate)
        # Saved before a terminal was known by its merchant too (issue 28): the stored
        # transaction it was seen for says which.
        elif (found := recent.get(candidate["txn_id"])) is not None:
            seen = found
        else:
            continue
        state.region_candidates[seen.txn_id] = seen
    state.reported_daily = {
        f: date.fromisoformat(day) for f, day in data.get("reported_daily", {}).items()
    }
    state.announced_windows = {
        wid: Announced(bank, datetime.fromisoformat(start), datetime.fromisoformat(end), reason)
        for wid, (bank, start, end, reason) in data.get("announced_windows", {}).items()
    }
    if unfinished := data.get("unfinished_tick"):
        state.unfinished_tick = datetime.fromisoformat(unfinished)
    matcher = Matcher(state)
    for key, txn_id, occurred_at in sales:
        matcher.remember_sale(key, txn_id, occurred_at)
    for seen in regions:
        matcher.remember_region(seen)
    return state

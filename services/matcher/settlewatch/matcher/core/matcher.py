"""Matching (SPEC §5–6): facts are recorded as events arrive; decisions are made at clock ticks.

Events between two ticks of a partition may be applied in any order, duplicated or replayed:
every decision is a function of the facts known at the tick, so the statuses and the findings
are the same. A payment's status is derived from its facts:

    a successful latest settlement   → settled (settled_late if the overdue finding fired)
    voided or reversed               → cancelled
    a failed/returned latest one     → failed
    otherwise                        → overdue once a tick passed due_at, else pending

"Latest" is by the bank's confirmation time, so a return after a payout fails it again.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from settlewatch.common.calendar import BusinessCalendar, LoadedYear, built_in
from settlewatch.common.catalogue import HistoryArgs
from settlewatch.common.errors import BadInput
from settlewatch.common.events import (
    EXPIRY,
    CalendarYearLoaded,
    MaintenanceWindow,
    MerchantChanged,
    Settlement,
    TerminalChanged,
    Transaction,
)
from settlewatch.common.fees import Applied, FeeSchedule
from settlewatch.common.findings import FindingType
from settlewatch.matcher.core.deadlines import (
    Schedule,
    Window,
    after_maintenance,
    deadline,
    due_from,
)
from settlewatch.matcher.core.model import (
    AWAITING_DEADLINE,
    AWAITING_EXPIRY,
    NO_ARGS,
    OWED,
    RECEIVED,
    Announced,
    Finding,
    HistoryEntry,
    MerchantTerms,
    PartitionState,
    Payment,
    PaymentKind,
    RegionSeen,
    SaleKey,
    SettlementFact,
    Status,
    TerminalInfo,
)

__all__ = [
    "CALENDAR_NOTICE",
    "DUPLICATE_HORIZON",
    "DUPLICATE_WINDOW",
    "EXPIRY",
    "UNKNOWN_AFTER",
    "Matcher",
    "UnknownMerchant",
    "fee",
    "fires_at",
    "referenced",
    "region_jump_subject",
]

UNKNOWN_AFTER = timedelta(minutes=15)
DUPLICATE_WINDOW = timedelta(minutes=10)
# Sales are compared for duplicates while they are this close to the clock: memory stays bounded
# by an hour of sales, and a backfill up to an hour late is still compared.
DUPLICATE_HORIZON = timedelta(hours=1)
_DUPLICATE_WINDOW_US = DUPLICATE_WINDOW // timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
key_hash = hash  # of a SaleKey, for the duplicate index (process-local: the index is rebuilt)
_MICROSECOND = timedelta(microseconds=1)
# What a payment's findings show of its transaction; the others only when the transaction has them.
SALE_FIELDS = ("terminal_id", "rrn", "stan", "auth_code")
EVIDENCE_FIELDS = (*SALE_FIELDS, "original_txn_id", "card_type", "region")
# A bank.maintenance_scheduled lists at most this many moved payments (and says how many).
MOVED_SHOWN = 100
# calendar.missing is raised this long before a year the calendar does not know (SPEC §10).
CALENDAR_NOTICE = timedelta(days=60)


class UnknownMerchant(BadInput):
    """A transaction of a merchant whose profile the partition has not seen (dead-letter it)."""


def fee(
    gross_minor: int, terms: MerchantTerms, occurred_at: datetime, card_type: str | None = None
) -> Applied | None:
    """The merchant's fee on a sale (SPEC §11): its schedule's version in force on the local
    date of `occurred_at`, the first rule fitting the card type and channel."""
    local_date = occurred_at.astimezone(terms.schedule.timezone).date()
    channel = "instant" if terms.cycle == "instant" else "scheduled"
    return terms.fees.applied(gross_minor, local_date, card_type, channel)


def fires_at(payment: Payment) -> datetime | None:
    """When the timer next acts on a payment: at its deadline while pending, at its expiry
    while overdue or failed, never otherwise (the store's deadline index follows this too)."""
    if payment.status in AWAITING_DEADLINE:
        return payment.due_at
    if payment.status in AWAITING_EXPIRY:
        return payment.due_at + EXPIRY
    return None


def referenced(kind: str, body: Any) -> list[str]:
    """The payments an event may read or change (the adapter loads them before applying it)."""
    if kind == "transaction":
        if body["type"] in ("void", "reversal"):
            return [body["original_txn_id"] or ""]
        if body["type"] == "refund":  # its sale counts its refunds
            return [body["txn_id"], body["original_txn_id"] or ""]
        return [body["txn_id"]]
    if kind == "settlement":
        return [line["txn_id"] for line in body["items"]]
    return []


def region_jump_subject(
    merchant_id: str, terminal_id: str, day: date, regions: Iterable[str]
) -> str:
    """A region jump's subject: the terminal, the local day and the two regions (hashed with
    the merchant: regions are free text, and two merchants' terminals may share an id), so one
    pair of regions on one day is one finding."""
    key = hashlib.sha256("\0".join([merchant_id, *sorted(regions)]).encode()).hexdigest()[:8]
    return f"{terminal_id}:{day.isoformat()}:{key}"


def _digest(txn: Mapping[str, Any]) -> str:
    canonical = orjson.dumps(txn, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


class Matcher:
    """The core for one partition: ``apply_*`` record facts, ``tick`` decides and reports.

    An ``apply_*`` that raises has changed nothing: the adapter dead-letters that one record
    and the partition goes on as if it had never been there. For events inside the schema's
    bounds none raises but for UnknownMerchant (tests/matcher/unit/test_totality.py)."""

    def __init__(self, state: PartitionState) -> None:
        self.state = state

    # --- reference data -------------------------------------------------------------------

    def apply_merchant(self, change: MerchantChanged) -> None:
        profile = change.profile
        self.state.calendars_used = None
        self.state.merchants[change.merchant_id] = MerchantTerms(
            bank_code=profile.settlement_bank,
            cycle=profile.settlement_cycle,
            schedule=Schedule.of(profile),
            fees=FeeSchedule.of(profile),
            amount_tolerance_minor=profile.amount_tolerance_minor,
        )
        self.state.reference_changed = True

    def apply_terminal(self, change: TerminalChanged) -> None:
        self.state.terminals[change.terminal_id] = TerminalInfo(
            change.merchant_id, change.region, change.replaces, change.status
        )
        self.state.reference_changed = True

    def apply_window(self, window: MaintenanceWindow) -> None:
        """A bank's maintenance: deadlines of its pending payments due after its start move, and
        the bank's merchants are told at the next tick (bank.maintenance_scheduled). (The adapter
        loads those payments first.)"""
        bank = self.state.windows.setdefault(window.bank_code, {})
        bounds = Window(window.starts_at, window.ends_at)
        if bank.get(window.id) == bounds:
            return  # redelivered
        bank[window.id] = bounds
        self.state.reference_changed = True
        self.state.announced_windows[window.id] = Announced(
            window.bank_code, window.starts_at, window.ends_at, window.reason
        )
        for payment in self.state.payments.values():
            if payment.bank_code == window.bank_code and payment.status in AWAITING_DEADLINE:
                self._reschedule(payment)

    def apply_calendar(self, loaded: CalendarYearLoaded) -> None:
        """A calendar year loaded (SPEC §10): the deadlines it changes move, with a history
        entry. An overdue that fired before its deadline, as the calendar now has it, is resolved
        at the next tick (deadline_moved); it never fires silently away. (The adapter loads the
        payments it may move first.)"""
        calendar = self._calendar(loaded.calendar)
        current = calendar.loaded.get(loaded.year)
        if current is not None and current.version >= loaded.version:
            return  # redelivered, or older than the version already applied
        year = LoadedYear(
            loaded.version, frozenset(loaded.holidays), frozenset(loaded.workdays), loaded.source
        )
        self.state.calendars[loaded.calendar] = calendar.with_year(loaded.year, year)
        self.state.reference_changed = True
        why: dict[str, str | int] = {
            "calendar": loaded.calendar,
            "year": loaded.year,
            "version": loaded.version,
        }
        for payment in list(self.state.payments.values()):
            terms = self.state.merchants.get(payment.merchant_id)
            if (
                terms is not None
                and terms.schedule.calendar == loaded.calendar
                and payment.reported in OWED  # its deadline is still the question
                and payment.cycle != "instant"
            ):
                self._redate(payment, replace(terms.schedule, cycle=payment.cycle), why)

    def _calendar(self, name: str) -> BusinessCalendar:
        return self.state.calendars.get(name) or built_in(name)

    def _redate(self, payment: Payment, schedule: Schedule, why: HistoryArgs) -> None:
        due = due_from(payment.business_date, schedule, self._calendar(schedule.calendar))
        windows = self.state.windows.get(payment.bank_code, {}).values()
        due_at = after_maintenance(due.due_at, windows)
        payment.base_due_at, payment.deadline_basis = due.due_at, due.basis
        if due_at != payment.due_at:
            payment.due_at = due_at
            at = self.state.clock or payment.occurred_at
            moved = {"due_at": due_at.isoformat(), **why}
            payment.history.append((at, "moved_by_calendar", moved))
        clock = self.state.clock
        if clock is not None and payment.overdue_fired and due_at > clock:
            payment.overdue_fired, payment.unfired = False, True
        elif clock is not None and payment.unfired and due_at <= clock:
            payment.overdue_fired, payment.unfired = True, False  # moved back: it was overdue
        self._refresh(payment)
        self._schedule(payment)

    def _reschedule(self, payment: Payment) -> None:
        windows = self.state.windows.get(payment.bank_code, {}).values()
        due_at = after_maintenance(payment.base_due_at, windows)
        if due_at != payment.due_at:
            payment.due_at = due_at
            payment.history.append((due_at, "moved_by_maintenance", NO_ARGS))
            self._schedule(payment)
            self._touch(payment)

    # --- events ---------------------------------------------------------------------------

    def apply_transaction(self, txn: Transaction) -> None:
        if txn["type"] in ("void", "reversal"):
            self._cancel(txn["original_txn_id"] or "", by=txn["txn_id"], at=txn["occurred_at"])
            return
        txn_id, digest = txn["txn_id"], _digest(txn)
        existing = self.state.payments.get(txn_id)
        if existing is not None:
            if existing.digest != digest and digest not in existing.conflicts:
                existing.conflicts.append(digest)
                self._touch(existing)
                self._note(
                    "transaction.conflict",
                    f"{txn_id}:{digest}",
                    existing,
                    {"kept": existing.digest, "ignored": digest},
                )
            return
        self._open_payment(txn, digest)

    def _open_payment(self, txn: Transaction, digest: str) -> None:
        # Everything that can raise is computed before the state changes (see apply_*).
        terms = self.state.merchants.get(txn["merchant_id"])
        if terms is None:
            raise UnknownMerchant(txn["merchant_id"])
        windows = self.state.windows.get(terms.bank_code, {}).values()
        calendar = self._calendar(terms.schedule.calendar)
        due = deadline(txn["occurred_at"], terms.schedule, calendar=calendar)
        due_at = after_maintenance(due.due_at, windows)
        kind: PaymentKind = txn["type"]  # type: ignore[assignment]  # voids were handled
        sale = kind == "sale"
        amount = txn["amount_minor"]
        signed = amount if sale or txn.get("direction") == "credit" else -amount
        applied = fee(amount, terms, txn["occurred_at"], txn.get("card_type")) if sale else None
        history: list[HistoryEntry] = [(txn["occurred_at"], "received", RECEIVED[kind])]
        if due_at != due.due_at:
            history.append((due_at, "moved_by_maintenance", NO_ARGS))
        payment = Payment(
            txn_id=txn["txn_id"],
            merchant_id=txn["merchant_id"],
            kind=kind,
            amount_minor=signed,
            currency=txn["currency"],
            occurred_at=txn["occurred_at"],
            business_date=due.business_date,
            base_due_at=due.due_at,
            due_at=due_at,
            expected_net_minor=(
                (amount - applied.fee_minor if applied else None) if sale else signed
            ),
            fee_rule=f"{applied.version}#{applied.rule}" if applied else None,
            bank_code=terms.bank_code,
            cycle=terms.cycle,
            digest=digest,
            card_fingerprint=txn["card_fingerprint"],
            evidence={k: txn.get(k) for k in EVIDENCE_FIELDS if k in txn or k in SALE_FIELDS},
            history=history,
            deadline_basis=due.basis,
        )
        self.state.calendar_fallbacks += due.estimated
        self.state.payments[payment.txn_id] = payment
        self._touch(payment)
        self._schedule(payment)
        if (early := self.state.early_cancellations.pop(payment.txn_id, None)) is not None:
            self._cancel(payment.txn_id, by=early[0], at=payment.occurred_at)
        for fact in self.state.early_settlements.pop(payment.txn_id, {}).values():
            self._attach(payment, fact)
            key = (fact.settlement_id, payment.txn_id)
            self.state.early_settlement_merchant.pop(key, None)
            if key in self.state.unknown_reported:
                self.state.unknown_reported.discard(key)
                self._note(
                    "settlement.unknown_transaction", f"{key[0]}:{key[1]}", payment, {}, "resolved"
                )
        early_refunds = self.state.early_refunds.pop(payment.txn_id, {})
        if sale:
            self.remember_sale(_sale_key(payment), payment.txn_id, payment.occurred_at, judge=True)
            payment.refunds = {refund: refunded for refund, (refunded, _) in early_refunds.items()}
        elif kind == "refund":
            self._count_refund(txn["original_txn_id"] or "", payment)
        if (region := txn.get("region")) and kind in ("sale", "refund"):
            seen = RegionSeen(
                payment.merchant_id, txn["terminal_id"], payment.txn_id, payment.occurred_at, region
            )
            self.remember_region(seen)
            self.state.region_candidates[payment.txn_id] = seen

    def _count_refund(self, sale_id: str, refund: Payment) -> None:
        """Add a refund to its sale's refunds (or keep it until the sale comes)."""
        sale = self.state.payments.get(sale_id)
        if sale is None:
            early = self.state.early_refunds.setdefault(sale_id, {})
            early[refund.txn_id] = (-refund.amount_minor, refund.occurred_at)
        elif sale.kind == "sale" and refund.txn_id not in sale.refunds:  # else: not a refund
            sale.refunds[refund.txn_id] = -refund.amount_minor
            self._touch(sale)

    def remember_sale(
        self, key: SaleKey, txn_id: str, occurred_at: datetime, *, judge: bool = False
    ) -> None:
        """Index a recent sale by card and amount; with `judge`, note the times of look-alikes
        (the pairs are resolved from those payments at the tick)."""
        state = self.state
        if state.clock is not None and occurred_at < state.clock - DUPLICATE_HORIZON:
            return
        at, group, ref = _micros(occurred_at), key_hash(key), hash(txn_id)
        others = list(state.recent_sales.of(group))
        if any(other_ref == ref for _, _, other_ref in others):
            return  # indexed already
        for other_at, _, _ in others if judge else ():
            if abs(other_at - at) <= _DUPLICATE_WINDOW_US:
                state.duplicate_candidates.add((txn_id, _from_micros(other_at)))
        state.recent_sales.add(at, group, 0, ref)

    def remember_region(self, seen: RegionSeen) -> None:
        """Index a terminal's transaction by region while it is within the jump window."""
        state = self.state
        if (
            state.clock is not None
            and seen.occurred_at < state.clock - self.state.region_jump_window
        ):
            return
        group, ref = _terminal_hash(seen), hash(seen.txn_id)
        if any(other_ref == ref for _, _, other_ref in state.recent_regions.of(group)):
            return  # indexed already
        state.recent_regions.add(_micros(seen.occurred_at), group, hash(seen.region), ref)

    def _nearest_other_region(self, seen: RegionSeen) -> list[datetime]:
        """When the terminal's transactions nearest in time to `seen` in another region occurred
        (one or two times, as far before as after; none: no such transaction in the window)."""
        at, tag = _micros(seen.occurred_at), hash(seen.region)
        window = self.state.region_jump_window // _MICROSECOND
        distances: dict[int, set[int]] = {}
        for other_at, other_tag, _ in self.state.recent_regions.of(_terminal_hash(seen)):
            if other_tag != tag and abs(other_at - at) <= window:
                distances.setdefault(abs(other_at - at), set()).add(other_at)
        return [_from_micros(t) for t in sorted(distances[min(distances)])] if distances else []

    def _cancel(self, original: str, *, by: str, at: datetime) -> None:
        payment = self.state.payments.get(original)
        if payment is None:
            self.state.early_cancellations.setdefault(original, (by, at))
        elif not payment.cancelled:
            payment.cancelled = True
            payment.history.append((at, "cancelled", {"by": by}))
            self._refresh(payment)

    def apply_settlement(self, settlement: Settlement) -> None:
        for line in settlement["items"]:
            fact = SettlementFact(
                settlement_id=settlement["settlement_id"],
                status=settlement["status"],
                occurred_at=settlement["occurred_at"],
                gross_minor=line["gross_minor"],
                fee_minor=line["fee_minor"],
                net_minor=line["net_minor"],
                failure_reason=settlement.get("failure_reason"),
                matched_by=settlement.get("matched_by"),
                terminal_id=line.get("terminal_id"),
            )
            payment = self.state.payments.get(line["txn_id"])
            if payment is not None:
                self._attach(payment, fact)
            else:
                self.state.early_settlements.setdefault(line["txn_id"], {})[fact.settlement_id] = (
                    fact
                )
                key = (fact.settlement_id, line["txn_id"])
                self.state.early_settlement_merchant[key] = settlement["merchant_id"]

    def _attach(self, payment: Payment, fact: SettlementFact) -> None:
        if payment.settlements.get(fact.settlement_id) == fact:
            return  # redelivered
        payment.settlements[fact.settlement_id] = fact
        entry: dict[str, str | int] = {"settlement_id": fact.settlement_id, "status": fact.status}
        if fact.matched_by:  # how a settlement file's line was tied to the payment
            entry["matched_by"] = fact.matched_by
        payment.history.append((fact.occurred_at, "settlement", entry))
        self._refresh(payment)

    # --- working set ----------------------------------------------------------------------

    def load(self, payments: Iterable[Payment]) -> None:
        """Bring stored payments into the working set (those already in it are newer)."""
        state = self.state
        for payment in payments:
            if payment.txn_id in state.payments:
                continue
            state.payments[payment.txn_id] = payment
            self._schedule(payment)

    def needed_at_tick(self) -> set[str]:
        """Payments the next tick reads besides the due ones (and those of `times_at_tick`)."""
        state = self.state
        return (
            state.dirty
            | {txn_id for pair in state.duplicate_pairs for txn_id in pair}
            | {txn_id for txn_id, _ in state.duplicate_candidates}
            | set(state.region_candidates)
        )

    def times_at_tick(self) -> set[datetime]:
        """When the recent sales and refunds the next tick compares with occurred: the look-alikes
        of new sales and the nearest transactions of their terminals in another region. The
        adapter loads the partition's sales and refunds of those times."""
        state = self.state
        times = {at for _, at in state.duplicate_candidates}
        for seen in state.region_candidates.values():
            times.update(self._nearest_other_region(seen))
        return times

    def evict(self, keep: int, pinned: AbstractSet[str] = frozenset()) -> datetime | None:
        """Shrink the working set to the `keep` latest loaded payments, plus those the next tick
        needs and those `pinned` (whose save is still being written); return the earliest time
        the timer acts on one of those evicted. Call it only after the store saved the
        changes of the others."""
        state = self.state
        needed = self.needed_at_tick() | pinned
        excess = len(state.payments) - keep
        if excess <= 0:
            return None
        earliest: datetime | None = None
        for txn_id in list(state.payments):
            if excess <= 0:
                break
            if txn_id not in needed:
                at = fires_at(state.payments.pop(txn_id))
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
                excess -= 1
        # The evicted payments' entries are skipped when they come up; the heap is rebuilt only
        # once they outnumber the rest, so its size stays bounded at a cost linear overall.
        if len(state.deadlines) > 2 * len(state.payments) + keep:
            state.deadlines = [
                (at, txn_id)
                for txn_id, p in state.payments.items()
                if (at := fires_at(p)) is not None
            ]
            heapq.heapify(state.deadlines)
        return earliest

    def _schedule(self, payment: Payment) -> None:
        """Put the payment's next timer event on the heap (stale entries are skipped)."""
        if (at := fires_at(payment)) is not None:
            heapq.heappush(self.state.deadlines, (at, payment.txn_id))

    def _touch(self, payment: Payment) -> None:
        self.state.dirty.add(payment.txn_id)
        self.state.changed.add(payment.txn_id)

    def _refresh(self, payment: Payment) -> None:
        status = _derived_status(payment)
        if status != payment.status:
            payment.status = status
            self._schedule(payment)
        self._touch(payment)

    # --- decisions ------------------------------------------------------------------------

    def tick(self, now: datetime) -> list[Finding]:
        """The clock moved to `now`: decide everything the facts now allow, oldest first."""
        state = self.state
        if state.clock is not None and now <= state.clock:
            now = state.clock
        state.clock = now
        for txn_id in sorted(state.dirty):
            if (payment := state.payments.get(txn_id)) is not None:
                self._judge_money_out(payment, now)
                self._report(payment, now)
        state.dirty.clear()
        self._fire_due(now)
        self._judge_unknown(now)
        at_times = _ByTime(state.payments)
        self._judge_duplicates(now, at_times)
        self._judge_regions(now, at_times)
        self._judge_calendars(now)
        self._announce_windows(now)
        self._forget(now)
        findings, state.pending_findings = state.pending_findings, []
        return findings

    def _forget(self, now: datetime) -> None:
        """Drop what can no longer matter, so the state does not grow without bound: sales
        past the duplicate horizon, transactions past the region-jump window, findings made
        once a day two days on, and early facts whose transaction never came."""
        state = self.state
        horizon = now - DUPLICATE_HORIZON
        state.recent_sales.forget_before(_micros(horizon))
        for pair, later in list(state.reported_duplicates.items()):
            if later < horizon:
                del state.reported_duplicates[pair]
        state.recent_regions.forget_before(_micros(now - state.region_jump_window))
        yesterday = (now - timedelta(days=2)).date()
        for finding_id, day in list(state.reported_daily.items()):
            if day < yesterday:
                del state.reported_daily[finding_id]
        too_old = now - EXPIRY
        for original, (_, at) in list(state.early_cancellations.items()):
            if at < too_old:
                del state.early_cancellations[original]
        for sale_id, refunds in list(state.early_refunds.items()):
            for refund_id, (_, at) in list(refunds.items()):
                if at < too_old:
                    del refunds[refund_id]
            if not refunds:
                del state.early_refunds[sale_id]
        for txn_id, facts in list(state.early_settlements.items()):
            for settlement_id, fact in list(facts.items()):
                if fact.occurred_at < too_old:
                    del facts[settlement_id]
                    state.early_settlement_merchant.pop((settlement_id, txn_id), None)
                    state.unknown_reported.discard((settlement_id, txn_id))
            if not facts:
                del state.early_settlements[txn_id]

    def _fire_due(self, now: datetime) -> None:
        deadlines = self.state.deadlines
        while deadlines and deadlines[0][0] <= now:
            at, txn_id = heapq.heappop(deadlines)
            payment = self.state.payments.get(txn_id)
            if payment is None or at != fires_at(payment):
                continue  # gone, or an entry the payment has moved past
            if payment.status == "pending":
                payment.overdue_fired = True
                payment.status = "overdue"
                payment.history.append((now, "overdue", NO_ARGS))
                self._report(payment, now)
                self._schedule(payment)  # its expiry
            else:
                self._expire(payment, now)

    def _expire(self, payment: Payment, now: datetime) -> None:
        """No longer watched: saved as expired (readable until its day's window closes), never
        fired again."""
        payment.status = "expired"
        payment.history.append((now, "expired", NO_ARGS))
        self._report(payment, now)

    def _report(self, payment: Payment, now: datetime) -> None:
        """Findings for the change from the last reported status to the current one."""
        before, after = payment.reported, payment.status
        if payment.unfired:  # the deadline it was overdue for moved past the clock
            resolution = {"resolution": f"deadline_moved: now due {payment.due_at.isoformat()}"}
            self._note(
                "settlement.overdue", _overdue(payment), payment, resolution, "resolved", now
            )
            payment.unfired, payment.deadline_moves = False, payment.deadline_moves + 1
            before = payment.reported = "pending"
            self.state.changed.add(payment.txn_id)  # saved even when nothing else is reported
        if before == after:
            return
        latest = payment.latest_settlement
        if after == "overdue":
            self._note("settlement.overdue", _overdue(payment), payment, {}, at=now)
        elif after in ("settled", "settled_late"):
            if latest is not None:
                delay = (latest.occurred_at - payment.occurred_at).total_seconds()
                self.state.settlement_delays.append((payment.bank_code, delay))
            if before == "overdue" or after == "settled_late":
                self._note("settlement.settled_late", payment.txn_id, payment, {}, at=now)
                self._note("settlement.overdue", _overdue(payment), payment, {}, "resolved", now)
            if before == "failed":
                self._resolve_failures(payment, now)
                self._note("settlement.recovered", payment.txn_id, payment, {}, at=now)
            self._check_amounts(payment, now)
            self._check_books(payment, now)
        elif after == "failed" and latest is not None:
            self._note(
                "settlement.failed",
                f"{payment.txn_id}:{latest.settlement_id}",
                payment,
                {"failure_reason": latest.failure_reason},
                at=now,
            )
        elif after == "cancelled" and before == "overdue":
            self._note("settlement.overdue", _overdue(payment), payment, {}, "resolved", now)
        elif after == "expired":
            self._note("settlement.expired", payment.txn_id, payment, {}, at=now)
        payment.reported = after
        self.state.changed.add(payment.txn_id)

    def _resolve_failures(self, payment: Payment, now: datetime) -> None:
        for fact in payment.settlements.values():
            if not fact.succeeded:
                subject = f"{payment.txn_id}:{fact.settlement_id}"
                self._note("settlement.failed", subject, payment, {}, "resolved", now)

    def _check_amounts(self, payment: Payment, now: datetime) -> None:
        latest = payment.latest_settlement
        terms = self.state.merchants.get(payment.merchant_id)
        if latest is None or terms is None:
            return
        expected_net = payment.expected_net_minor
        gross_off = latest.gross_minor != payment.amount_minor
        net_off = (
            expected_net is not None
            and abs(latest.net_minor - expected_net) > terms.amount_tolerance_minor
        )
        if gross_off or net_off:
            evidence: dict[str, Any] = {
                "expected_gross_minor": payment.amount_minor,
                "settled_gross_minor": latest.gross_minor,
                "expected_net_minor": expected_net,
                "settled_net_minor": latest.net_minor,
                "charged_fee_minor": latest.fee_minor,
            }
            if expected_net is not None:
                evidence["expected_fee_minor"] = payment.amount_minor - expected_net
            if payment.fee_rule is not None:
                evidence["fee_rule"] = _fee_rule(payment.fee_rule, terms)
            subject = f"{payment.txn_id}:{latest.settlement_id}"
            self._note("settlement.amount_mismatch", subject, payment, evidence, at=now)

    def _check_books(self, payment: Payment, now: datetime) -> None:
        """terminal.books_mismatch (SPEC §12, 账务不一致): the bank booked a payment under the
        terminal it replaced or that replaced it — one finding per merchant, day and pair."""
        latest = payment.latest_settlement
        own = payment.evidence.get("terminal_id")
        booked = latest.terminal_id if latest is not None else None
        if not own or not booked or booked == own:
            return
        terminals = self.state.terminals
        mine, theirs = terminals.get(own), terminals.get(booked)
        if mine is not None and mine.replaces == booked:
            old, new = booked, own
        elif theirs is not None and theirs.replaces == own:
            old, new = own, booked
        else:
            return  # not a migration: the line's terminal is the bank's matter
        day = payment.business_date.isoformat()
        evidence = {
            "business_date": day,
            "replaced_terminal_id": old,
            "new_terminal_id": new,
            "booked_under": booked,
            "books": f"/v1/merchants/{payment.merchant_id}/books?date={day}",
        }
        subject = f"{payment.merchant_id}:{day}:{old}:{new}"
        if self._first_today(f"terminal.books_mismatch:{subject}", now):
            self._note("terminal.books_mismatch", subject, payment, evidence, at=now)

    def _first_today(self, finding_id: str, now: datetime) -> bool:
        """Whether a finding made once per day was not made yet (it is then marked made)."""
        if finding_id in self.state.reported_daily:
            return False
        self.state.reported_daily[finding_id] = now.date()
        return True

    def _judge_regions(self, now: datetime, at_times: _ByTime) -> None:
        """terminal.region_jump (跳码, SPEC §12): a terminal's transaction in another region than
        one of its transactions within the window, or than the region it is registered in. One
        finding per terminal, day and pair of regions, however many transactions show it."""
        state = self.state
        for txn_id, seen in sorted(state.region_candidates.items()):
            payment = state.payments.get(txn_id)
            if payment is None:
                continue
            registered = state.terminals.get(seen.terminal_id)
            if registered is not None and registered.merchant_id != seen.merchant_id:
                registered = None  # another merchant's terminal of the same id
            other = min(
                (
                    o
                    for at in self._nearest_other_region(seen)
                    for p in at_times.get(at)
                    if (o := _region_seen(p)) is not None
                    and (o.merchant_id, o.terminal_id) == (seen.merchant_id, seen.terminal_id)
                    and o.region != seen.region
                ),
                key=lambda o: (abs(o.occurred_at - seen.occurred_at), o.txn_id),
                default=None,
            )
            if other is not None:
                pair = sorted((seen, other), key=lambda o: (o.occurred_at, o.txn_id))
                regions = (pair[0].region, pair[1].region)
                later = pair[1].occurred_at
            elif registered is not None and registered.region not in (None, seen.region):
                pair, regions, later = (
                    [seen],
                    (registered.region or "", seen.region),
                    seen.occurred_at,
                )
            else:
                continue
            terms = state.merchants.get(payment.merchant_id)
            day = later.astimezone(terms.schedule.timezone).date() if terms else later.date()
            subject = region_jump_subject(seen.merchant_id, seen.terminal_id, day, regions)
            if not self._first_today(f"terminal.region_jump:{subject}", now):
                continue
            evidence = {
                "terminal_id": seen.terminal_id,
                "registered_region": registered.region if registered else None,
                "regions": list(regions),
                "window_minutes": int(self.state.region_jump_window.total_seconds() // 60),
                "txn_ids": [o.txn_id for o in pair],
                "transactions": [
                    {
                        "txn_id": o.txn_id,
                        "occurred_at": o.occurred_at.isoformat(),
                        "region": o.region,
                    }
                    for o in pair
                ],
            }
            # The later of the two is the finding's transaction, whichever was judged first.
            later_payment = state.payments.get(pair[-1].txn_id, payment)
            self._note("terminal.region_jump", subject, later_payment, evidence, at=now)
        state.region_candidates.clear()

    def _announce_windows(self, now: datetime) -> None:
        """bank.maintenance_scheduled to each merchant of the bank: when, and which of its
        payments' deadlines the window moves (all of them are in the working set: the adapter
        loaded them for the window, and those opened since are dirty)."""
        state = self.state
        for window_id, announced in sorted(state.announced_windows.items()):
            window = [Window(announced.starts_at, announced.ends_at)]
            moved: dict[str, list[Payment]] = {}
            for payment in state.payments.values():
                if (
                    payment.bank_code == announced.bank_code
                    and payment.status in AWAITING_DEADLINE
                    and after_maintenance(payment.base_due_at, window) != payment.base_due_at
                ):
                    moved.setdefault(payment.merchant_id, []).append(payment)
            for merchant_id, terms in sorted(state.merchants.items()):
                if terms.bank_code != announced.bank_code:
                    continue
                mine = sorted(moved.get(merchant_id, []), key=lambda p: p.txn_id)
                evidence = {
                    "bank_code": announced.bank_code,
                    "window_id": window_id,
                    "starts_at": announced.starts_at.isoformat(),
                    "ends_at": announced.ends_at.isoformat(),
                    "reason": announced.reason,
                    "moved_count": len(mine),
                    "moved": [
                        {
                            "txn_id": p.txn_id,
                            "from": p.base_due_at.isoformat(),
                            "to": p.due_at.isoformat(),
                        }
                        for p in mine[:MOVED_SHOWN]
                    ],
                }
                state.pending_findings.append(
                    Finding(
                        id=f"bank.maintenance_scheduled:{window_id}:{merchant_id}",
                        type="bank.maintenance_scheduled",
                        state="open",
                        at=now,
                        merchant_id=merchant_id,
                        txn_id=None,
                        evidence=evidence,
                    )
                )
        state.announced_windows.clear()

    def _judge_unknown(self, now: datetime) -> None:
        for txn_id, facts in sorted(self.state.early_settlements.items()):
            for settlement_id, fact in sorted(facts.items()):
                key = (settlement_id, txn_id)
                if key in self.state.unknown_reported or now < fact.occurred_at + UNKNOWN_AFTER:
                    continue
                self.state.unknown_reported.add(key)
                merchant_id = self.state.early_settlement_merchant.get(key)
                self.state.pending_findings.append(
                    Finding(
                        id=f"settlement.unknown_transaction:{settlement_id}:{txn_id}",
                        type="settlement.unknown_transaction",
                        state="open",
                        at=now,
                        merchant_id=merchant_id,
                        txn_id=txn_id,
                        evidence={"settlement_id": settlement_id, "net_minor": fact.net_minor},
                    )
                )

    def _judge_duplicates(self, now: datetime, at_times: _ByTime) -> None:
        state = self.state
        for txn_id, other_at in state.duplicate_candidates:
            for other in at_times.get(other_at):
                if other.kind == "sale" and other.txn_id != txn_id:
                    state.duplicate_pairs.add(
                        (min(txn_id, other.txn_id), max(txn_id, other.txn_id))
                    )
        state.duplicate_candidates.clear()
        for first_id, second_id in sorted(state.duplicate_pairs):
            first = state.payments.get(first_id)
            second = state.payments.get(second_id)
            if first is None or second is None or first.cancelled or second.cancelled:
                continue
            if (first_id, second_id) in state.reported_duplicates:
                continue
            if _sale_key(first) != _sale_key(second):
                continue  # paired by a collision of their keys' hashes
            later = max(first.occurred_at, second.occurred_at)
            self.state.reported_duplicates[(first_id, second_id)] = later
            self._note(
                "transaction.duplicate_suspected",
                f"{first_id}:{second_id}",
                second,
                {"txn_ids": [first_id, second_id]},
                at=now,
            )
        state.duplicate_pairs.clear()

    def _judge_money_out(self, payment: Payment, now: datetime) -> None:
        """Once each: a sale whose refunds add up to more than it (refund.exceeds_sale), a
        cancelled payment the bank paid anyway (settlement.paid_after_void)."""
        refunded = sum(payment.refunds.values())
        if payment.refunds and refunded > payment.amount_minor and not payment.refunds_exceeded:
            payment.refunds_exceeded = True
            self.state.changed.add(payment.txn_id)  # the flag is state: saved with the payment
            evidence = {"refunds": sorted(payment.refunds), "refunded_minor": refunded}
            self._note("refund.exceeds_sale", payment.txn_id, payment, evidence, at=now)
        latest = payment.latest_settlement
        if latest is None or not latest.succeeded:
            return
        if payment.cancelled and not payment.paid_after_void:
            payment.paid_after_void = True
            self.state.changed.add(payment.txn_id)
            by = next((a["by"] for _, code, a in payment.history if code == "cancelled"), None)
            evidence = {"cancelled_by": by, "settled_net_minor": latest.net_minor}
            subject = f"{payment.txn_id}:{latest.settlement_id}"
            self._note("settlement.paid_after_void", subject, payment, evidence, at=now)

    def _judge_calendars(self, now: datetime) -> None:
        """calendar.missing for each year without data, from CALENDAR_NOTICE before it starts,
        of a calendar a merchant's business-day cycle uses; resolved once the year is loaded."""
        state = self.state
        if state.calendars_used is None:  # derived once per change of merchants, not per tick
            merchants = state.merchants.values()
            state.calendars_used = sorted(
                {t.schedule.calendar for t in merchants if t.cycle[0] == "T"}
            )
        for name in state.calendars_used:
            calendar = self._calendar(name)
            for year in (now.year, now.year + 1):
                if (name, year) in state.missing_calendars or calendar.covers(year):
                    continue
                if now >= datetime(year, 1, 1, tzinfo=UTC) - CALENDAR_NOTICE:
                    state.missing_calendars.add((name, year))
                    state.pending_findings.append(_calendar_missing(name, year, "open", now))
        for missing, year in sorted(state.missing_calendars):
            if self._calendar(missing).covers(year):
                state.missing_calendars.discard((missing, year))
                state.pending_findings.append(_calendar_missing(missing, year, "resolved", now))

    def _note(
        self,
        kind: FindingType,
        subject: str,
        payment: Payment,
        extra: dict[str, Any],
        state: str = "open",
        at: datetime | None = None,
    ) -> None:
        latest = payment.latest_settlement
        evidence = {
            "txn_id": payment.txn_id,
            **payment.evidence,
            "occurred_at": payment.occurred_at.isoformat(),
            "amount_minor": abs(payment.amount_minor),
            "currency": payment.currency,
            "bank_code": payment.bank_code,
            "settlement_cycle": payment.cycle,
            "due_at": payment.due_at.isoformat(),
            "deadline_basis": payment.deadline_basis,
            "settlement_id": latest.settlement_id if latest else None,
            "failure_reason": latest.failure_reason if latest else None,
            **extra,
        }
        self.state.pending_findings.append(
            Finding(
                id=f"{kind}:{subject}",
                type=kind,
                state="resolved" if state == "resolved" else "open",
                at=at or self.state.clock or payment.occurred_at,
                merchant_id=payment.merchant_id,
                txn_id=payment.txn_id,
                evidence=evidence,
            )
        )


def _sale_key(payment: Payment) -> SaleKey:
    return (payment.merchant_id, payment.card_fingerprint, payment.amount_minor, payment.currency)


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _terminal_hash(seen: RegionSeen) -> int:
    return hash((seen.merchant_id, seen.terminal_id))  # a terminal is known by its merchant too


def _region_seen(payment: Payment) -> RegionSeen | None:
    """What a stored sale or refund showed of its terminal's region (None: nothing)."""
    region, terminal = payment.evidence.get("region"), payment.evidence.get("terminal_id")
    if payment.kind not in ("sale", "refund") or not region or not terminal:
        return None
    return RegionSeen(payment.merchant_id, terminal, payment.txn_id, payment.occurred_at, region)


class _ByTime:
    """The working set's payments by when they occurred, indexed once a tick if asked."""

    def __init__(self, payments: Mapping[str, Payment]) -> None:
        self._payments = payments
        self._index: dict[datetime, list[Payment]] | None = None

    def get(self, at: datetime) -> list[Payment]:
        if self._index is None:
            self._index = {}
            for payment in self._payments.values():
                self._index.setdefault(payment.occurred_at, []).append(payment)
        return self._index.get(at, [])


def _fee_rule(label: str, terms: MerchantTerms) -> dict[str, Any]:
    """The rule a payment's expected fee came from, as the merchant's schedule states it."""
    version, number = label.split("#")
    effective_from = date.fromisoformat(version)
    rule = terms.fees.rule(effective_from, int(number))
    if rule is None:  # the schedule was replaced since: the label is all there is
        return {"version_effective_from": version, "rule": int(number)}
    return Applied(0, effective_from, int(number), rule).describe()


def _overdue(payment: Payment) -> str:
    """The subject of a payment's overdue finding: a deadline moved by a calendar makes the next
    overdue a new finding (the first one was resolved as deadline_moved)."""
    moves = payment.deadline_moves
    return f"{payment.txn_id}:{moves + 1}" if moves else payment.txn_id


def _calendar_missing(name: str, year: int, state: str, now: datetime) -> Finding:
    return Finding(
        id=f"calendar.missing:{name}:{year}",
        type="calendar.missing",
        state="resolved" if state == "resolved" else "open",
        at=now,
        merchant_id=None,
        txn_id=None,
        evidence={"calendar": name, "year": year, "deadline_basis": "estimated"}
        | ({"resolution": f"calendar {name} {year} loaded"} if state == "resolved" else {}),
    )


def _derived_status(payment: Payment) -> Status:
    if payment.status == "expired":
        return "expired"
    latest = payment.latest_settlement
    if latest is not None and latest.succeeded:
        return "settled_late" if payment.overdue_fired else "settled"
    if payment.cancelled:
        return "cancelled"
    if latest is not None:
        return "failed"
    return "overdue" if payment.overdue_fired else "pending"

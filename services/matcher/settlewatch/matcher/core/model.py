"""The matcher's data: payments being watched, findings, and one partition's state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from settlewatch.common.calendar import BusinessCalendar
from settlewatch.common.catalogue import HistoryArgs, HistoryCode
from settlewatch.common.fees import FeeSchedule
from settlewatch.common.findings import FindingType
from settlewatch.matcher.core.deadlines import DeadlineBasis, Schedule, Window
from settlewatch.matcher.core.recent import RecentIndex

__all__ = [
    "AWAITING_DEADLINE",
    "Announced",
    "AWAITING_EXPIRY",
    "OPEN",
    "OWED",
    "REGION_JUMP_WINDOW",
    "PaymentKind",
    "DeadlineBasis",
    "Finding",
    "HistoryEntry",
    "MerchantTerms",
    "NO_ARGS",
    "RECEIVED",
    "shared_args",
    "PartitionState",
    "Payment",
    "RegionSeen",
    "TerminalInfo",
    "SaleKey",
    "SettlementFact",
    "Status",
]

# What happened to a payment, when: worded in each language by common.catalogue.HISTORY.
HistoryEntry = tuple[datetime, HistoryCode, HistoryArgs]
PaymentKind = Literal["sale", "refund", "chargeback", "fee_debit", "adjustment"]
# The arguments most entries have, one object each: a million pending sales hold one
# `received {kind: sale}`, not a million (the core's working set is its memory).
NO_ARGS: HistoryArgs = {}
RECEIVED: Mapping[str, HistoryArgs] = {kind: {"kind": kind} for kind in get_args(PaymentKind)}


def shared_args(code: str, args: HistoryArgs) -> HistoryArgs:
    """`args`, or the equal shared object when there is one (for entries read from the store)."""
    if not args:
        return NO_ARGS
    return RECEIVED.get(str(args.get("kind")), args) if code == "received" else args


Status = Literal["pending", "overdue", "settled", "settled_late", "failed", "cancelled", "expired"]
# The timer's rules (matcher.fires_at): a payment whose status is in AWAITING_DEADLINE is
# decided at its due_at (overdue), one in AWAITING_EXPIRY at due_at + EXPIRY (expired). The
# store's deadline queries are generated from these sets, and the partial indexes of migration
# 0004 are tested against them.
AWAITING_DEADLINE: frozenset[Status] = frozenset({"pending"})
AWAITING_EXPIRY: frozenset[Status] = frozenset({"overdue", "failed"})
# 跳码: one terminal's transactions in two regions within this (SETTLEWATCH_REGION_JUMP_WINDOW).
REGION_JUMP_WINDOW = timedelta(minutes=30)
# Statuses from which a payment can still change.
OPEN: frozenset[Status] = AWAITING_DEADLINE | AWAITING_EXPIRY
# Money still owed to the merchant as the bank has said nothing against it: the open amounts of
# the metrics and of a merchant's summary (a failed payout is reported apart).
OWED: frozenset[Status] = frozenset({"pending", "overdue"})


@dataclass(frozen=True)
class MerchantTerms:
    """What the matcher needs of a merchant profile."""

    bank_code: str
    cycle: str
    schedule: Schedule
    fees: FeeSchedule
    amount_tolerance_minor: int


@dataclass(frozen=True)
class TerminalInfo:
    """A registered terminal (SPEC §12): its merchant, its region, the terminal it replaced."""

    merchant_id: str
    region: str | None
    replaces: str | None
    status: Literal["active", "retired"] = "active"


@dataclass(frozen=True)
class RegionSeen:
    """A transaction of a terminal in a region, to compare with the terminal's others (跳码).
    A terminal is known by its merchant and id: two merchants' terminals may share an id."""

    merchant_id: str
    terminal_id: str
    txn_id: str
    occurred_at: datetime
    region: str


@dataclass(frozen=True)
class Announced:
    """A maintenance window just announced, to tell the bank's merchants at the next tick."""

    bank_code: str
    starts_at: datetime
    ends_at: datetime
    reason: str


@dataclass(frozen=True)
class SettlementFact:
    """One line of a bank settlement, as it concerns one payment."""

    settlement_id: str
    status: Literal["settled", "failed", "returned"]
    occurred_at: datetime
    gross_minor: int
    fee_minor: int
    net_minor: int
    failure_reason: str | None = None
    matched_by: str | None = None  # the rule that tied a settlement file's line to the payment
    terminal_id: str | None = None  # the terminal the bank booked it under, when it says

    @property
    def succeeded(self) -> bool:
        return self.status == "settled"


@dataclass
class Payment:
    """A sale, or money going out (refund, chargeback, fee_debit) or either way (adjustment),
    watched until the money moves; amounts signed as the bank books them."""

    txn_id: str
    merchant_id: str
    kind: PaymentKind
    amount_minor: int
    currency: str
    occurred_at: datetime
    business_date: date
    base_due_at: datetime  # before maintenance windows
    due_at: datetime
    expected_net_minor: int | None  # None: no fee rule fits it (the net is not checked)
    bank_code: str
    cycle: str
    digest: str  # of the transaction as first seen: a different one later is a conflict
    card_fingerprint: str
    evidence: dict[str, Any]
    # The fee rule that decided expected_net_minor: "<version effective_from>#<rule number>".
    fee_rule: str | None = None
    # "estimated" when the calendar did not know a year the deadline crosses (weekdays assumed).
    deadline_basis: DeadlineBasis = "calendar"
    status: Status = "pending"
    reported: Status = "pending"  # the status findings have been emitted for
    overdue_fired: bool = False
    # A loaded calendar moved the deadline of a fired overdue past the clock: the next tick
    # resolves that overdue (deadline_moved), and a later one is a new finding (moves counts).
    unfired: bool = False
    deadline_moves: int = 0
    cancelled: bool = False
    # A sale's refunds (txn_id → amount), to see them add up to more than the sale; and the
    # one-off findings already reported for it.
    refunds: dict[str, int] = field(default_factory=dict)
    refunds_exceeded: bool = False
    paid_after_void: bool = False
    conflicts: list[str] = field(default_factory=list)  # other digests reported as conflicts
    settlements: dict[str, SettlementFact] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)

    @property
    def latest_settlement(self) -> SettlementFact | None:
        """The bank's last word: the settlement with the latest confirmation time."""
        facts = self.settlements
        if len(facts) <= 1:  # nearly always: asked on every change of a payment
            return next(iter(facts.values()), None)
        return max(facts.values(), key=lambda s: (s.occurred_at, s.settlement_id))


@dataclass(frozen=True)
class Finding:
    """Something a person should know. ``id`` is deterministic (type + subject), so a replayed
    or duplicated event never yields a second one; ``state`` is ``open`` or ``resolved``."""

    id: str
    type: FindingType
    state: Literal["open", "resolved"]
    at: datetime  # the matcher clock when it was decided
    merchant_id: str | None
    txn_id: str | None
    evidence: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.id}#{self.state}"


SaleKey = tuple[str, str, int, str]  # merchant, card fingerprint, amount, currency


@dataclass
class PartitionState:
    """What the core knows about one partition. `payments` is a working set: the store holds
    them all, and the adapter loads those the next events and the next tick concern."""

    clock: datetime | None = None
    # A tick whose due payments did not fit in one round; saved, so that after a crash between
    # rounds the rest still fire at this clock, as they would have without the crash.
    unfinished_tick: datetime | None = None
    merchants: dict[str, MerchantTerms] = field(default_factory=dict)
    windows: dict[str, dict[str, Window]] = field(default_factory=dict)  # bank → id → window
    terminals: dict[str, TerminalInfo] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)  # as loaded by the log
    reference_changed: bool = False  # merchants, windows or calendars changed since the last save
    # The calendars the merchants' business-day cycles use (None: to derive again; not saved).
    calendars_used: list[str] | None = None
    # Calendar years reported missing (calendar.missing open), until they are loaded.
    missing_calendars: set[tuple[str, int]] = field(default_factory=set)
    payments: dict[str, Payment] = field(default_factory=dict)
    # Facts that arrived before the transaction they concern (any order within a tick is fine).
    early_settlements: dict[str, dict[str, SettlementFact]] = field(default_factory=dict)
    early_settlement_merchant: dict[tuple[str, str], str] = field(default_factory=dict)
    early_cancellations: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    # Refunds whose sale is not known yet: sale → refund → (amount, occurred_at).
    early_refunds: dict[str, dict[str, tuple[int, datetime]]] = field(default_factory=dict)
    unknown_reported: set[tuple[str, str]] = field(default_factory=set)
    # Recent sales by card and amount (an entry: time, hash of its SaleKey, hash of its txn_id;
    # rebuilt from the store, not saved); a new sale and the time of a look-alike, to resolve
    # from the store and judge at the next tick; pairs to judge; pairs reported (with the later
    # sale's time, to forget them).
    recent_sales: RecentIndex = field(default_factory=RecentIndex)
    duplicate_candidates: set[tuple[str, datetime]] = field(default_factory=set)
    duplicate_pairs: set[tuple[str, str]] = field(default_factory=set)
    reported_duplicates: dict[tuple[str, str], datetime] = field(default_factory=dict)
    region_jump_window: timedelta = REGION_JUMP_WINDOW  # a setting, not saved
    # Each terminal's transactions of the last region-jump window (an entry: time, hash of the
    # merchant and terminal, hash of the region, hash of the txn_id; rebuilt from the store, not
    # saved) and those to judge at the next tick; the findings made once per day (jumps, books
    # mismatches: finding id → the day reported, forgotten two days later).
    recent_regions: RecentIndex = field(default_factory=RecentIndex)
    region_candidates: dict[str, RegionSeen] = field(default_factory=dict)
    reported_daily: dict[str, date] = field(default_factory=dict)
    # Maintenance windows announced since the last tick, told to the bank's merchants at it.
    announced_windows: dict[str, Announced] = field(default_factory=dict)
    pending_findings: list[Finding] = field(default_factory=list)  # decided between ticks
    deadlines: list[tuple[datetime, str]] = field(default_factory=list)  # heap, lazily pruned
    dirty: set[str] = field(default_factory=set)  # payments to judge at the next tick
    changed: set[str] = field(default_factory=set)  # payments to save (the store clears it)
    # For the adapter's metrics, drained after each batch (not stored): settlement delays by bank
    # (seconds from the transaction to the bank's confirmation), and deadlines computed with the
    # weekday fallback because the calendar did not know a year.
    settlement_delays: list[tuple[str, float]] = field(default_factory=list)
    calendar_fallbacks: int = 0

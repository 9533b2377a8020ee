"""What a settlement file says, format-independent.

A parser yields, in file order: :class:`Statement` (one account's statement or notification),
its :class:`Entry` records (a booking, possibly collective, with its :class:`Detail` lines), and
for clearing reports :class:`ReportLine` (one card payment, refund, fee…) and :class:`Payout`
(a credit the report says was sent); and an :class:`Issue` for what it read leniently — a
warning on the file, never a record. Amounts are integer minor units, positive, with a
direction; what contradicts itself carries a :class:`Problem` and must not be matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from settlewatch.common.errors import BadInput

__all__ = [
    "Batch",
    "Detail",
    "Direction",
    "Entry",
    "Issue",
    "Loc",
    "Payout",
    "Problem",
    "FileRecord",
    "FileRejected",
    "ReportLine",
    "Statement",
    "Summary",
]

Loc = tuple[str | int, ...]  # an element path ("Stmt", 0, "Ntry", 3) or ("line", 12)
Direction = Literal["credit", "debit"]


@dataclass(frozen=True)
class Issue:
    loc: Loc
    msg: str

    def json(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg}


class FileRejected(BadInput):
    """The file cannot be read as its format: nothing of it may be applied."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(f"{'/'.join(map(str, i.loc))}: {i.msg}" for i in issues))

    def __reduce__(self) -> tuple[type[FileRejected], tuple[list[Issue]]]:
        return FileRejected, (self.issues,)  # it crosses from the parsing process


@dataclass(frozen=True)
class Problem:
    """A record readable but inconsistent (SPEC §9 findings: flagged, never matched)."""

    code: Literal[
        "batch_total_mismatch",  # a batch header's count or total disagrees with its lines
        "duplicate_line",  # the same reference twice with different content
        "direction_mismatch",  # a credit detail inside a debit entry, or the reverse
        "currency_mismatch",  # a detail in another currency than its entry
        "balance_mismatch",  # opening + entries ≠ closing
        "summary_mismatch",  # a report's summary block disagrees with its rows
    ]
    msg: str
    expected: str | None = None
    found: str | None = None


@dataclass(frozen=True)
class Statement:
    """One account's statement (camt.053, MT940), report (camt.052) or notification (camt.054)."""

    loc: Loc
    kind: Literal["statement", "notification", "interim"]
    id: str | None
    account: str  # IBAN, or the bank's own account number
    currency: str | None
    created_at: datetime | None
    opening_minor: int | None = None  # signed: a debit balance is negative
    closing_minor: int | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Batch:
    """A collective entry's header: how many transactions, for how much, it claims to hold."""

    count: int | None
    total_minor: int | None
    currency: str | None
    direction: Direction | None
    reference: str | None  # PmtInfId / MsgId


@dataclass(frozen=True)
class Detail:
    """One transaction inside an entry (camt TxDtls; the entry itself for a single booking)."""

    loc: Loc
    amount_minor: int | None  # None: the bank gave only the entry's total
    currency: str
    direction: Direction
    end_to_end_id: str | None = None
    references: dict[str, str] = field(default_factory=dict)  # AcctSvcrRef, TxId, Prtry…
    remittance: str | None = None
    charges_minor: int | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Entry:
    """A booking on the statement of ``account``."""

    loc: Loc
    account: str
    amount_minor: int
    currency: str
    direction: Direction
    status: Literal["booked", "pending", "info"]
    reversal: bool
    booking_date: date | None
    value_date: date | None
    entry_ref: str | None = None
    servicer_ref: str | None = None
    remittance: str | None = None
    info: str | None = None
    charges_minor: int | None = None
    charges_included: bool | None = None
    batch: Batch | None = None
    details: tuple[Detail, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def signed_minor(self) -> int:
        return self.amount_minor if self.direction == "credit" else -self.amount_minor


@dataclass(frozen=True)
class ReportLine:
    """One line of a clearing report: a payment, refund, chargeback or fee of a payout batch."""

    loc: Loc
    kind: str  # sale, refund, chargeback, fee, adjustment… (the report's word, normalised)
    currency: str
    gross_minor: int | None  # signed as the merchant sees it: a refund is negative
    fee_minor: int | None
    net_minor: int  # signed
    batch_id: str | None = None
    occurred_at: datetime | None = None
    value_date: date | None = None
    txn_id: str | None = None  # the acquirer's own id, when the report carries it
    original_txn_id: str | None = None  # a refund's sale
    psp_ref: str | None = None
    merchant_id: str | None = None
    terminal_id: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    stan: str | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Payout:
    """A credit a report says was sent: its lines' net less batch fees."""

    loc: Loc
    batch_id: str
    currency: str
    amount_minor: int  # signed: negative when the merchant owes (a debit)
    value_date: date | None
    count: int  # lines in the batch
    account: str | None = None
    reference: str | None = None  # how the bank statement may name the payout
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Summary:
    """A report's own summary block (counts, totals), checked against its rows."""

    loc: Loc
    rows: int
    problems: tuple[Problem, ...] = ()


FileRecord = Statement | Entry | ReportLine | Payout | Summary

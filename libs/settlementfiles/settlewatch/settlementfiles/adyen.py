"""Adyen's settlement detail report (CSV): a line per payment, refund, chargeback or fee of a
settlement batch, and a ``MerchantPayout`` line for what the batch paid out.

Columns are found by their header name (Adyen's column order differs between report versions).
A batch's payout must be its other lines' net (credits − debits): a payout line that says
otherwise is flagged. A batch without a payout line (its balance carried to the next batch by
``Balancetransfer`` lines) expects no payout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from settlewatch.settlementfiles.amounts import to_minor
from settlewatch.settlementfiles.model import FileRejected, Issue, Loc, Payout, Problem, ReportLine
from settlewatch.settlementfiles.text import rows

__all__ = ["HEADER", "parse"]

# The columns every version has; their order does not matter.
HEADER = ("Type", "Batch Number", "Net Currency", "Net Debit (NC)", "Net Credit (NC)")
_FEES = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
_KINDS = {
    "Settled": "sale",
    "SettledBulk": "sale",
    "Refunded": "refund",
    "RefundedBulk": "refund",
    "Chargeback": "chargeback",
    "ChargebackReversed": "chargeback_reversal",
    "SecondChargeback": "chargeback",
    "Fee": "fee",
    "Balancetransfer": "balance_transfer",
    "DepositCorrection": "adjustment",
    "InvoiceDeduction": "fee_debit",
}
_PAYOUT = "MerchantPayout"


@dataclass
class _Batch:
    lines: int = 0
    net_minor: int = 0
    currency: str | None = None
    payout: tuple[Loc, int, date | None, str, str | None] | None = None


def parse(stream: IO[bytes]) -> Iterator[ReportLine | Payout]:
    """The report's lines in order, then one payout per batch that has a payout line."""
    numbered = rows(stream, "utf-8")
    _, header = next(numbered, (1, []))
    missing = [name for name in HEADER if name not in header]
    if missing:
        raise FileRejected(
            [Issue(("line", 1), f"not an Adyen settlement detail report: no {missing}")]
        )
    batches: dict[str, _Batch] = {}
    for number, cells in numbered:
        loc: Loc = ("line", number)
        if not any(value.strip() for value in cells):
            continue
        row = dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=False))
        batch_id = _required(row, "Batch Number", loc)
        batch = batches.setdefault(batch_id, _Batch())
        currency = _required(row, "Net Currency", loc)
        net = _signed(row, "Net Credit (NC)", "Net Debit (NC)", currency, loc)
        booked = _moment(row, "Booking Date", "Booking Date TimeZone", loc)
        if row["Type"] == _PAYOUT:
            # "TX635094301XT batch 380, ACCOUNT": the transfer id is what banks show.
            words = (row.get("Modification Reference") or "").split()
            reference = words[0].rstrip(",") if words else None
            batch.payout = (loc, -net, booked.date() if booked else None, currency, reference)
            continue
        batch.lines += 1
        batch.net_minor += net
        batch.currency = batch.currency or currency
        yield _line(row, loc, batch_id, currency, net, booked)
    for batch_id, batch in batches.items():
        if batch.payout is not None:
            yield _payout(batch_id, batch)


def _line(
    row: dict[str, str], loc: Loc, batch_id: str, currency: str, net: int, booked: datetime | None
) -> ReportLine:
    gross_currency = (row.get("Gross Currency") or "").strip()
    gross = (
        _signed(row, "Gross Credit (GC)", "Gross Debit (GC)", gross_currency, loc)
        if gross_currency == currency
        else None  # another currency: the net is what the merchant gets
    )
    fees = [_amount(row, name, currency, loc) for name in _FEES if (row.get(name) or "").strip()]
    return ReportLine(
        loc=loc,
        kind=_KINDS.get(row["Type"], row["Type"].lower()),
        currency=currency,
        gross_minor=gross,
        fee_minor=sum(fees) if fees else None,
        net_minor=net,
        batch_id=batch_id,
        occurred_at=_moment(row, "Creation Date", "TimeZone", loc),
        value_date=booked.date() if booked else None,
        txn_id=(row.get("Merchant Reference") or "").strip() or None,
        psp_ref=(row.get("Psp Reference") or "").strip() or None,
    )


def _payout(batch_id: str, batch: _Batch) -> Payout:
    assert batch.payout is not None
    loc, amount, value_date, currency, reference = batch.payout
    problems = []
    if amount != batch.net_minor:
        problems.append(
            Problem(
                "summary_mismatch",
                f"batch {batch_id} pays out another amount than its lines' net",
                expected=str(batch.net_minor),
                found=str(amount),
            )
        )
    return Payout(
        loc=loc,
        batch_id=batch_id,
        currency=currency,
        amount_minor=amount,
        value_date=value_date,
        count=batch.lines,
        reference=reference,
        problems=tuple(problems),
    )


def _required(row: dict[str, str], column: str, loc: Loc) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise FileRejected([Issue((*loc, column), "required")])
    return value


def _amount(row: dict[str, str], column: str, currency: str, loc: Loc) -> int:
    try:
        return to_minor(row[column], currency)
    except ValueError as exc:
        raise FileRejected([Issue((*loc, column), str(exc))]) from None


def _signed(row: dict[str, str], credit: str, debit: str, currency: str, loc: Loc) -> int:
    """Credit − debit, each column empty or an amount."""
    total = 0
    if (row.get(credit) or "").strip():
        total += _amount(row, credit, currency, loc)
    if (row.get(debit) or "").strip():
        total -= _amount(row, debit, currency, loc)
    return total


def _moment(row: dict[str, str], column: str, zone_column: str, loc: Loc) -> datetime | None:
    value = (row.get(column) or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FileRejected([Issue((*loc, column), f"not a date-time: {value!r}")]) from None
    zone = (row.get(zone_column) or "").strip()
    try:
        return moment.replace(tzinfo=ZoneInfo(zone)) if zone else moment
    except (ZoneInfoNotFoundError, ValueError):
        raise FileRejected([Issue((*loc, zone_column), f"unknown time zone {zone!r}")]) from None

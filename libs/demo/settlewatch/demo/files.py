"""Settlement files as a clearing network and a bank send them: an Adyen settlement detail report
(a line per payment, a payout per batch) and camt.053 statements of a settlement account, with
single and collective credits. Amounts are integer minor units of a two-decimal currency."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

__all__ = ["Batch", "Credit", "Line", "adyen_report", "camt053"]

_HEADER = (
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,"
    "Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),"
    "Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),"
    "Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
    "Batch Number,Reserved4,Reserved5,Reserved6,Reserved7,Reserved8,Reserved9,Reserved10,"
    "Modification Merchant Reference,Booking Date,Booking Date TimeZone"
)
ADYEN_COLUMNS = _HEADER.split(",")  # the header as Adyen writes it


def _major(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2))


@dataclass(frozen=True)
class Line:
    """A settled payment: the acquirer's txn_id is the report's merchant reference."""

    txn_id: str
    gross_minor: int
    fee_minor: int
    occurred_at: datetime


@dataclass(frozen=True)
class Batch:
    batch_id: str
    reference: str  # the transfer id the bank statement repeats
    value_date: date
    lines: Sequence[Line]

    @property
    def net_minor(self) -> int:
        return sum(line.gross_minor - line.fee_minor for line in self.lines)


def adyen_report(batches: Sequence[Batch], currency: str = "CNY") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, ADYEN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    common = {"Company Account": "Acquirer", "Merchant Account": "ACQ_CN", "TimeZone": "CET"}
    for batch in batches:
        for n, line in enumerate(batch.lines):
            writer.writerow(
                common
                | {
                    "Psp Reference": f"{batch.batch_id}{n:06d}",
                    "Merchant Reference": line.txn_id,
                    "Payment Method": "unionpay",
                    "Creation Date": line.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "TimeZone": "UTC",
                    "Type": "Settled",
                    "Gross Currency": currency,
                    "Gross Credit (GC)": _major(line.gross_minor),
                    "Exchange Rate": "1",
                    "Net Currency": currency,
                    "Net Credit (NC)": _major(line.gross_minor - line.fee_minor),
                    "Commission (NC)": _major(line.fee_minor),
                    "Batch Number": batch.batch_id,
                }
            )
        writer.writerow(
            common
            | {
                "Type": "MerchantPayout",
                "Modification Reference": f"{batch.reference} batch {batch.batch_id}",
                "Net Currency": currency,
                "Net Debit (NC)": _major(batch.net_minor),
                "Batch Number": batch.batch_id,
                "Booking Date": f"{batch.value_date.isoformat()} 09:00:00",
                "Booking Date TimeZone": "UTC",
            }
        )
    return out.getvalue().encode()


@dataclass(frozen=True)
class Credit:
    """A booked credit; with `details`, a collective one (a line per payout it carries)."""

    amount_minor: int
    value_date: date
    text: str
    details: Sequence[tuple[int, str]] = field(default_factory=tuple)  # amount, EndToEndId


def camt053(
    iban: str, statement_id: str, credits: Sequence[Credit], currency: str = "CNY"
) -> bytes:
    entries = []
    for n, credit in enumerate(credits):
        details = ""
        if credit.details:
            details = (
                f"<NtryDtls><Btch><NbOfTxs>{len(credit.details)}</NbOfTxs>"
                f'<TtlAmt Ccy="{currency}">{_major(credit.amount_minor)}</TtlAmt></Btch>'
                + "".join(
                    f"<TxDtls><Refs><EndToEndId>{escape(ref)}</EndToEndId></Refs>"
                    f'<Amt Ccy="{currency}">{_major(amount)}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                    "</TxDtls>"
                    for amount, ref in credit.details
                )
                + "</NtryDtls>"
            )
        day = credit.value_date.isoformat()
        entries.append(
            f"<Ntry><NtryRef>{statement_id}-{n}</NtryRef>"
            f'<Amt Ccy="{currency}">{_major(credit.amount_minor)}</Amt>'
            "<CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt>"
            f"{details}<AddtlNtryInf>{escape(credit.text)}</AddtlNtryInf></Ntry>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{statement_id}</MsgId></GrpHdr><Stmt><Id>{statement_id}</Id>"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id></Acct>{''.join(entries)}</Stmt></BkToCstmrStmt>"
        "</Document>"
    ).encode()

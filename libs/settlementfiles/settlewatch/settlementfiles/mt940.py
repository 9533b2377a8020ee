"""SWIFT MT940 (statement) and MT942 (interim report), read with the ``mt-940`` package.

The file is read line by line and cut at each ``:20:`` (a statement's first tag), so one
statement at a time is in memory, as ``mt940.parse_statements`` would cut it. Every one of the
package's opt-in fixes is switched on (``Options.all()``): without them a reversal of a credit
(``RC``) comes out as money in, a ``:13D:`` offset of ``+0100`` as one minute, a BOM hides the
first statement and long ``:86:`` details are cut. Two bank dialects seen in real files are
read too: a one-line field wrapped over several lines (ING's ``:28C:``, ``:61:`` supplementary
details over two lines) and, for a statement that does not parse otherwise, a ``:61:`` customer
reference longer than SWIFT's 16 characters (SNS writes the counterparty's IBAN there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import IO, Any

import mt940
import mt940.tags
from mt940.models import Transactions

from settlewatch.settlementfiles.amounts import to_minor
from settlewatch.settlementfiles.model import Entry, FileRejected, Issue, Loc, Problem, Statement

__all__ = ["parse"]

_OPTIONS = mt940.Options.all()
_STATEMENT_START = re.compile(r"^:20:")
_TAG = re.compile(r"^:(\d\d[A-Z]?|NS):", re.MULTILINE)
_ENCODINGS = ("utf-8-sig", "cp1252")


class _Statement(mt940.tags.Statement):  # named so: its processors (date fix-up) go by name
    """``:61:`` with a customer reference of up to 35 characters instead of 16."""

    pattern = mt940.tags.Statement.pattern.replace("{0,16}", "{0,35}", 1)


_LONG_REFERENCES: dict[int | str, mt940.tags.Tag] = {61: _Statement()}


def parse(stream: IO[bytes], encoding: str | None = None) -> Iterator[Statement | Entry]:
    """Every statement of the file, in order: its entries, then the statement itself."""
    found = 0
    for number, (first_line, block) in enumerate(_blocks(_lines(stream, encoding))):
        found += 1
        yield from _statement(number, first_line, block)
    if found == 0:
        raise FileRejected([Issue(("line", 1), "no :20: tag: not an MT940/MT942 statement")])


def _lines(stream: IO[bytes], encoding: str | None) -> Iterator[str]:
    """Decoded lines; banks write ASCII, Latin-1 or UTF-8 (with or without BOM). A line none
    of them reads rejects the file: a line silently left out could be an entry."""
    candidates = (encoding,) if encoding else _ENCODINGS
    for number, raw in enumerate(stream, start=1):
        for candidate in candidates:
            try:
                yield raw.decode(candidate).removeprefix("\ufeff")
                break
            except UnicodeDecodeError:
                continue
        else:
            message = f"not {' or '.join(candidates)}: a byte no bank's encoding has"
            raise FileRejected([Issue(("line", number), message)])


def _blocks(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each statement: from a ``:20:`` to the next."""
    block: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if _STATEMENT_START.match(line):
            if block:
                yield start, "".join(block)
            block, start = [], number
        if start:
            block.append(line)
    if block:
        yield start, "".join(block)


def _statement(number: int, first_line: int, text: str) -> Iterator[Statement | Entry]:
    loc: Loc = ("statement", number, "line", first_line)
    text = _unwrapped(text)
    try:
        statement = Transactions(options=_OPTIONS)
        statement.parse(text)
    except Exception:  # the package raises what its regexes meet: all mean "malformed"
        try:  # as a dialect with long customer references, then
            statement = Transactions(tags=_LONG_REFERENCES, options=_OPTIONS)
            statement.parse(text)
        except Exception as exc:
            raise FileRejected([Issue(loc, f"unreadable statement: {exc}")]) from None
    data: dict[str, Any] = statement.data
    account = data.get("account_identification")
    if not account:
        raise FileRejected([Issue(loc, "no :25: account identification")])
    currency = statement.currency
    booked = 0
    for index, transaction in enumerate(statement.transactions):
        entry = _entry((*loc, "entry", index), account, transaction.data, currency)
        booked += entry.signed_minor
        yield entry
    opening = _balance(data, ("final_opening_balance", "intermediate_opening_balance"), loc)
    closing = _balance(data, ("final_closing_balance", "intermediate_closing_balance"), loc)
    problems = []
    if opening is not None and closing is not None and opening + booked != closing:
        problems.append(
            Problem(
                "balance_mismatch",
                "opening balance + entries ≠ closing balance",
                expected=str(closing),
                found=str(opening + booked),
            )
        )
    yield Statement(
        loc=loc,
        kind="interim" if "final_opening_balance" not in data else "statement",
        id=data.get("transaction_reference"),
        account=str(account),
        currency=currency,
        created_at=_moment(data.get("date_time_indication")),
        opening_minor=opening,
        closing_minor=closing,
        problems=tuple(problems),
    )


def _unwrapped(text: str) -> str:
    """Lines a bank wrapped inside a one-line field joined again."""
    lines: list[str] = []
    tag, continued = None, 0
    for line in text.splitlines():
        if found := _TAG.match(line):
            tag, continued = found.group(1), 0
        elif tag in ("28", "28C") and lines:
            lines[-1] += line.strip()
            continue
        elif tag == "61" and lines:
            continued += 1
            if continued > 1:  # the tag allows one line of supplementary details
                lines[-1] += " " + line.strip()
                continue
        lines.append(line)
    return "\n".join(lines)


def _entry(loc: Loc, account: str, data: dict[str, Any], currency: str | None) -> Entry:
    amount = data.get("amount")
    if amount is None:
        raise FileRejected([Issue(loc, "a :61: line without an amount")])
    code = amount.currency or currency
    if not code:
        raise FileRejected(
            [Issue(loc, "no currency: the statement has no balance to take it from")]
        )
    minor = _minor(amount.amount, code, loc)
    status = str(data.get("status", "")).upper()
    reference = data.get("customer_reference")
    return Entry(
        loc=loc,
        account=str(account),
        amount_minor=abs(minor),
        currency=code,
        direction="credit" if minor > 0 else "debit",
        status="booked",
        reversal=status.startswith("R"),
        booking_date=_date(data.get("entry_date")),
        value_date=_date(data.get("date")),
        entry_ref=None if reference in (None, "NONREF") else reference,
        servicer_ref=data.get("bank_reference"),
        remittance=data.get("transaction_details"),
        info=data.get("extra_details") or None,
    )


def _balance(data: dict[str, Any], names: tuple[str, ...], loc: Loc) -> int | None:
    for name in names:
        if (balance := data.get(name)) is not None:
            return _minor(balance.amount.amount, balance.amount.currency, (*loc, name))
    return None


# The package's own Date and DateTime subclass the standard ones; only the standard ones are
# plain data (they cross to the service's process as JSON).
def _date(value: date | None) -> date | None:
    return None if value is None else date(value.year, value.month, value.day)


def _moment(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    offset = value.utcoffset()
    zone = None if offset is None else timezone(offset)
    return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=zone)


def _minor(value: Decimal, currency: str, loc: Loc) -> int:
    try:
        return to_minor(str(value), currency)
    except ValueError as exc:
        raise FileRejected([Issue(loc, str(exc))]) from None

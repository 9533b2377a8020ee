"""ISO 20022 camt.053 (statement), camt.054 (notification) and camt.052 (intraday report), any
version (tested on 2, 4 and 8), streamed with lxml ``iterparse``.

Elements are matched by local name, so a bank's non-standard namespace reads the same. Each
``Ntry`` is turned into an :class:`Entry` when its end tag is read and then dropped from the
tree, and so is every other element once read (a balance folded into the statement's, a group
header ignored): memory stays flat whatever the file's size, and one part of a statement holds
at most ``MAX_ELEMENTS`` elements. Entities are never resolved and nothing is
fetched from the network (XXE). Differences between versions handled here: ``Sts`` is text in
v2 and ``Sts/Cd`` from v8 on; a v2 ``TxDtls`` has its amount under ``AmtDtls/TxAmt`` and may
lack ``CdtDbtInd`` (it then takes the entry's). A camt.053 entry without ``Sts`` (mandatory,
left out by some banks' converters) is read as booked, with a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Literal

from lxml import etree

from settlewatch.settlementfiles.amounts import to_minor
from settlewatch.settlementfiles.model import (
    Batch,
    Detail,
    Direction,
    Entry,
    FileRejected,
    Issue,
    Loc,
    Problem,
    Statement,
)

__all__ = ["FORMATS", "parse"]

# The message element under Document, and its statements' element, by format.
StatementKind = Literal["statement", "notification", "interim"]
FORMATS: dict[str, tuple[str, str, StatementKind]] = {
    "camt.053": ("BkToCstmrStmt", "Stmt", "statement"),
    "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn", "notification"),
    "camt.052": ("BkToCstmrAcctRpt", "Rpt", "interim"),
}
_STATUS: dict[str, Literal["booked", "pending", "info"]] = {
    "BOOK": "booked",
    "PDNG": "pending",
    "FUTR": "pending",
    "INFO": "info",
}
_OPENING = {"OPBD", "PRCD"}
_CLOSING = {"CLBD"}
# Elements held at once for one part of a statement (an entry with its details, an account…):
# a collective entry of 20 000 card payments fits; a hostile one is refused, not held in memory.
MAX_ELEMENTS = 1_000_000
_REFERENCES = ("MsgId", "AcctSvcrRef", "PmtInfId", "InstrId", "TxId", "MndtId", "ChqNb", "UETR")


def _local(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child(element: etree._Element | None, *path: str) -> etree._Element | None:
    """The first descendant along `path`, by local names."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c) == name), None)
    return element


def _drop(element: etree._Element) -> None:
    """An element read and done with, out of the tree: memory stays flat."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if element is None else [c for c in element if _local(c) == name]


def _text(element: etree._Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def parse(stream: IO[bytes], expected: str | None = None) -> Iterator[Statement | Entry | Issue]:
    """The statements and entries of a camt document, in file order (a statement after its
    entries, with its warnings). `expected` (``camt.053`` …) refuses a document of another
    kind."""
    reader = _Reader(expected)
    events = etree.iterparse(
        stream,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
    )
    try:
        for event, element in events:
            yield from reader.on(event, element)
    except etree.XMLSyntaxError as exc:
        issue = Issue(("line", exc.lineno or 0), f"not well-formed XML: {exc.msg}")
        raise FileRejected([issue]) from None
    reader.finish()


class _Reader:
    def __init__(self, expected: str | None) -> None:
        self._expected = expected
        self._depth = 0
        self._format: str | None = None
        self._statement_tag = ""
        self._kind: StatementKind = "statement"
        self._statements = 0  # seen so far
        self._statement: etree._Element | None = None
        self._account: tuple[str, str | None] | None = None
        self._entries = 0
        self._booked = 0  # signed sum of the booked entries of the current statement
        self._references: dict[str, int] = {}  # EndToEndId → hash of what it said first
        self._part_name = ""  # the statement's element being read (Ntry, Acct…)
        self._held = 0  # elements read inside it
        self._balances = 0  # Bal elements of the current statement
        self._opening: int | None = None
        self._closing: int | None = None
        self._unstated = 0  # entries of the current statement without Sts

    # -- events -------------------------------------------------------------------------------

    def on(self, event: str, element: etree._Element) -> Iterator[Statement | Entry | Issue]:
        name = _local(element)
        if event == "start":
            self._depth += 1
            if self._depth == 1 and name != "Document":
                raise FileRejected([Issue((name,), "not an ISO 20022 document (no Document root)")])
            if self._depth == 2:
                self._start_message(name)
            elif self._depth == 3 and name == self._statement_tag:
                self._statement = element
                self._account, self._entries, self._booked = None, 0, 0
                self._balances, self._opening, self._closing, self._unstated = 0, None, None, 0
            elif self._depth == 4 and self._statement is not None:
                self._part_name, self._held = name, 0
            elif self._depth > 4 and self._statement is not None:
                self._held += 1
                if self._held > MAX_ELEMENTS:
                    where = (*self._statement_loc(), self._part_name)
                    message = f"more than {MAX_ELEMENTS} elements in one part of a statement"
                    raise FileRejected([Issue(where, message)])
            return
        self._depth -= 1
        if self._statement is None:
            if self._depth >= 2:  # read and done with (GrpHdr…): nothing of it is kept
                _drop(element)
            return
        if self._depth == 3:  # a statement's own element, read whole
            yield from self._part(name, element)
        elif self._depth == 2 and element is self._statement:
            if self._unstated:
                yield Issue(
                    (*self._statement_loc(), "Ntry", "Sts"),
                    f"{self._unstated} entries without Sts read as booked (BOOK): an end-of-day "
                    "statement books every entry",
                )
            yield self._statement_record(element)
            self._statements += 1
            self._statement = None
            _drop(element)

    def _part(self, name: str, element: etree._Element) -> Iterator[Entry]:
        """An element of the statement, once its end tag is read: an entry or a balance is
        turned into what it says and dropped; of the rest only the first account, id and
        creation time are kept (the statement's record needs them at its end)."""
        if name == "Ntry":
            entry = self._entry(element)
            self._entries += 1
            if entry.status == "booked":
                self._booked += entry.signed_minor
            _drop(element)
            yield entry
        elif name == "Bal":
            self._balance(element)
            _drop(element)
        elif name not in ("Acct", "Id", "CreDtTm") or sum(
            _local(sibling) == name for sibling in element.itersiblings(preceding=True)
        ):
            _drop(element)

    def _start_message(self, name: str) -> None:
        for fmt, (message, statement, kind) in FORMATS.items():
            if name == message:
                if self._expected is not None and self._expected != fmt:
                    raise FileRejected(
                        [Issue(("Document", name), f"this is a {fmt}, not a {self._expected}")]
                    )
                self._format, self._statement_tag, self._kind = fmt, statement, kind
                return
        raise FileRejected(
            [Issue(("Document", name), "not a camt.052, camt.053 or camt.054 message")]
        )

    def finish(self) -> None:
        if self._format is None:
            raise FileRejected([Issue(("Document",), "empty document")])
        if self._statements == 0:
            message = FORMATS[self._format][0]
            raise FileRejected(
                [
                    Issue(
                        ("Document", message),
                        f"no {self._statement_tag}: a {self._format} holds at least one",
                    )
                ]
            )

    # -- records ------------------------------------------------------------------------------

    def _statement_loc(self) -> Loc:
        return (self._statement_tag, self._statements)

    def _account_of(self, statement: etree._Element) -> tuple[str, str | None]:
        if self._account is None:
            account = _child(statement, "Acct")
            number = _text(account, "Id", "IBAN") or _text(account, "Id", "Othr", "Id")
            if number is None:
                raise FileRejected([Issue((*self._statement_loc(), "Acct"), "no account Id")])
            self._account = (number, _text(account, "Ccy"))
        return self._account

    def _statement_record(self, element: etree._Element) -> Statement:
        loc = self._statement_loc()
        account, currency = self._account_of(element)
        opening, closing = self._opening, self._closing
        problems: list[Problem] = []
        if opening is not None and closing is not None and opening + self._booked != closing:
            problems.append(
                Problem(
                    "balance_mismatch",
                    "opening balance + booked entries ≠ closing balance",
                    expected=str(closing),
                    found=str(opening + self._booked),
                )
            )
        created = _text(element, "CreDtTm")
        return Statement(
            loc=loc,
            kind=self._kind,
            id=_text(element, "Id"),
            account=account,
            currency=currency,
            created_at=_datetime(created, (*loc, "CreDtTm")) if created else None,
            opening_minor=opening,
            closing_minor=closing,
            problems=tuple(problems),
        )

    def _balance(self, balance: etree._Element) -> None:
        code = _text(balance, "Tp", "CdOrPrtry", "Cd")
        if code in _OPENING or code in _CLOSING:
            amount = self._signed(balance, (*self._statement_loc(), "Bal", self._balances))
            if code in _OPENING:
                self._opening = amount
            else:
                self._closing = amount
        self._balances += 1

    def _entry(self, element: etree._Element) -> Entry:
        assert self._statement is not None
        loc: Loc = (*self._statement_loc(), "Ntry", self._entries)
        account, _ = self._account_of(self._statement)
        amount, currency = _amount(_child(element, "Amt"), (*loc, "Amt"))
        direction = _direction(element, loc)
        status_el = _child(element, "Sts")
        status_code = _text(status_el, "Cd") or _text(status_el, "Prtry") or _text(element, "Sts")
        if status_el is None and self._kind == "statement":
            # Mandatory in the schema, left out by some banks' converters: harmless in an
            # end-of-day statement, which books every entry (a warning on the file says so).
            status_code = "BOOK"
            self._unstated += 1
        if status_code not in _STATUS:
            raise FileRejected([Issue((*loc, "Sts"), f"unknown entry status {status_code!r}")])
        charges, included = _charges(_child(element, "Chrgs"), currency, (*loc, "Chrgs"))
        batch: Batch | None = None
        details: list[Detail] = []
        all_details = [
            (index, tx)
            for index, entry_details in enumerate(_children(element, "NtryDtls"))
            for tx in _children(entry_details, "TxDtls")
        ]
        single = (amount, currency) if len(all_details) == 1 else None
        for index, entry_details in enumerate(_children(element, "NtryDtls")):
            batch = batch or _batch(_child(entry_details, "Btch"), (*loc, "NtryDtls", index))
        for index, tx in all_details:
            tx_loc = (*loc, "NtryDtls", index, "TxDtls", len(details))
            details.append(self._detail(tx, tx_loc, direction, currency, single))
        problems = _batch_problems(batch, details)
        for detail in details:  # the entry cannot be matched as a whole either
            problems += [p for p in detail.problems if p not in problems]
        return Entry(
            loc=loc,
            account=account,
            amount_minor=amount,
            currency=currency,
            direction=direction,
            status=_STATUS[status_code],
            reversal=_text(element, "RvslInd") == "true",
            booking_date=_date(_child(element, "BookgDt"), (*loc, "BookgDt")),
            value_date=_date(_child(element, "ValDt"), (*loc, "ValDt")),
            entry_ref=_text(element, "NtryRef"),
            servicer_ref=_text(element, "AcctSvcrRef"),
            info=_text(element, "AddtlNtryInf"),
            charges_minor=charges,
            charges_included=included,
            batch=batch,
            details=tuple(details),
            problems=tuple(problems),
        )

    def _detail(
        self,
        tx: etree._Element,
        loc: Loc,
        entry_direction: Direction,
        entry_currency: str,
        single: tuple[int, str] | None,
    ) -> Detail:
        amount_el = _first(
            _child(tx, "Amt"),
            _child(tx, "AmtDtls", "TxAmt", "Amt"),
            _child(tx, "AmtDtls", "InstdAmt", "Amt"),
        )
        amount: int | None
        if amount_el is not None:
            amount, currency = _amount(amount_el, (*loc, "Amt"))
        elif single is not None:  # the entry's only detail: its amount is the entry's
            amount, currency = single
        else:  # allowed by the schema: only the entry's total is known
            amount, currency = None, entry_currency
        direction = _direction(tx, loc) if _child(tx, "CdtDbtInd") is not None else entry_direction
        refs = _child(tx, "Refs")
        references = {name: value for name in _REFERENCES if (value := _text(refs, name))}
        if proprietary := _text(refs, "Prtry", "Ref"):
            references["Prtry"] = proprietary
        end_to_end = _text(refs, "EndToEndId")
        if end_to_end == "NOTPROVIDED":
            end_to_end = None
        remittance = _remittance(_child(tx, "RmtInf"))
        charges, _ = _charges(_child(tx, "Chrgs"), currency, (*loc, "Chrgs"))
        problems: list[Problem] = []
        if direction != entry_direction:
            problems.append(
                Problem(
                    "direction_mismatch",
                    f"a {direction} detail in a {entry_direction} entry",
                    expected=entry_direction,
                    found=direction,
                )
            )
        amounts = _child(tx, "AmtDtls")
        exchanged = amounts is not None and any(_local(e) == "CcyXchg" for e in amounts.iter())
        if currency != entry_currency and not exchanged:
            problems.append(
                Problem(
                    "currency_mismatch",
                    "a detail in another currency than its entry, with no exchange rate",
                    expected=entry_currency,
                    found=currency,
                )
            )
        if end_to_end is not None:
            said = hash("".join(str(text).strip() for text in tx.itertext()))
            first = self._references.setdefault(end_to_end, said)
            if first != said:
                problems.append(
                    Problem(
                        "duplicate_line",
                        f"EndToEndId {end_to_end} seen before with other content",
                        found=end_to_end,
                    )
                )
        return Detail(
            loc=loc,
            amount_minor=amount,
            currency=currency,
            direction=direction,
            end_to_end_id=end_to_end,
            references=references,
            remittance=remittance,
            charges_minor=charges,
            problems=tuple(problems),
        )

    def _signed(self, element: etree._Element, loc: Loc) -> int:
        amount, _ = _amount(_child(element, "Amt"), (*loc, "Amt"))
        return amount if _direction(element, loc) == "credit" else -amount


# -- element readers ----------------------------------------------------------------------------


def _first(*elements: etree._Element | None) -> etree._Element | None:
    return next((e for e in elements if e is not None), None)


def _amount(element: etree._Element | None, loc: Loc) -> tuple[int, str]:
    if element is None or not (element.text or "").strip():
        raise FileRejected([Issue(loc, "missing amount")])
    currency = element.get("Ccy")
    if not currency:
        raise FileRejected([Issue(loc, "amount without a Ccy attribute")])
    try:
        minor = to_minor(element.text or "", currency)
    except ValueError as exc:
        raise FileRejected([Issue(loc, str(exc))]) from None
    if minor < 0:
        raise FileRejected([Issue(loc, "a negative amount (the direction is CdtDbtInd's)")])
    return minor, currency


def _direction(element: etree._Element, loc: Loc) -> Direction:
    indicator = _text(element, "CdtDbtInd")
    if indicator == "CRDT":
        return "credit"
    if indicator == "DBIT":
        return "debit"
    raise FileRejected([Issue((*loc, "CdtDbtInd"), f"must be CRDT or DBIT, not {indicator!r}")])


def _date(element: etree._Element | None, loc: Loc) -> date | None:
    """``Dt`` or ``DtTm``; a date-time keeps the date it has in its own offset."""
    if element is None:
        return None
    if (day := _text(element, "Dt")) is not None:
        try:
            return date.fromisoformat(day[:10])
        except ValueError:
            raise FileRejected([Issue((*loc, "Dt"), f"not a date: {day!r}")]) from None
    if (moment := _text(element, "DtTm")) is not None:
        return _datetime(moment, (*loc, "DtTm")).date()
    return None


def _datetime(text: str, loc: Loc) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise FileRejected([Issue(loc, f"not a date-time: {text!r}")]) from None


def _charges(
    element: etree._Element | None, currency: str, loc: Loc
) -> tuple[int | None, bool | None]:
    """Total charges (v2: ``Chrgs/Amt``; v4+: ``TtlChrgsAndTaxAmt`` or the ``Rcrd`` amounts) and
    whether they are included in the booked amount."""
    if element is None:
        return None, None
    total = _child(element, "TtlChrgsAndTaxAmt")
    records = _children(element, "Rcrd") or [element]
    included = {_text(r, "ChrgInclInd") for r in records} - {None}
    if total is not None:
        amount, _ = _amount(total, (*loc, "TtlChrgsAndTaxAmt"))
    else:
        amount = 0
        for index, record in enumerate(records):
            if _child(record, "Amt") is not None:
                amount += _amount(_child(record, "Amt"), (*loc, "Rcrd", index, "Amt"))[0]
    return amount, (included == {"true"}) if included else None


def _batch(element: etree._Element | None, loc: Loc) -> Batch | None:
    if element is None:
        return None
    count = _text(element, "NbOfTxs")
    total_el = _child(element, "TtlAmt")
    total, currency = (
        _amount(total_el, (*loc, "Btch", "TtlAmt"))
        if total_el is not None
        else (
            None,
            None,
        )
    )
    indicator = _text(element, "CdtDbtInd")
    return Batch(
        count=int(count)
        if count and count.isascii() and count.isdigit() and len(count) < 10
        else None,
        total_minor=total,
        currency=currency,
        direction="credit" if indicator == "CRDT" else "debit" if indicator == "DBIT" else None,
        reference=_text(element, "PmtInfId") or _text(element, "MsgId"),
    )


def _batch_problems(batch: Batch | None, details: list[Detail]) -> list[Problem]:
    """A batch header checked against its details, when the details are there."""
    if batch is None or not details:
        return []
    problems = []
    if batch.count is not None and batch.count != len(details):
        problems.append(
            Problem(
                "batch_total_mismatch",
                "the batch header's NbOfTxs is not its number of details",
                expected=str(batch.count),
                found=str(len(details)),
            )
        )
    amounts = [d.amount_minor for d in details]
    if batch.total_minor is not None and None not in amounts:
        total = sum(a for a in amounts if a is not None)  # directions are checked one by one
        if total != batch.total_minor:
            problems.append(
                Problem(
                    "batch_total_mismatch",
                    "the batch header's TtlAmt is not the sum of its details",
                    expected=str(batch.total_minor),
                    found=str(total),
                )
            )
    return problems


def _remittance(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    parts = [u.text.strip() for u in _children(element, "Ustrd") if u.text and u.text.strip()]
    parts += [ref for s in _children(element, "Strd") if (ref := _text(s, "CdtrRefInf", "Ref"))]
    return " ".join(parts) or None

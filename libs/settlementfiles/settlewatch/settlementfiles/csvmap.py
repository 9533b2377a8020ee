"""Any bank's or clearing network's CSV 对账单, read through a named column mapping
(``PUT /v1/file-mappings/{name}``): which column is which field, and how the file writes text,
dates and amounts. Each data row becomes a :class:`ReportLine`.

A 对账单 can also say what was paid out, as Adyen's reports do (SPEC §16), in one of two ways:
rows of a kind the mapping calls ``payout`` (``kinds: {"划款": "payout"}``) are payouts, each
of its batch, its net the amount paid to the merchant; or ``payouts: "by_batch"`` makes one
payout per batch and value date from its lines' net. A payout row whose batch's lines add up to
another amount carries the difference as a problem, as Adyen's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from settlewatch.common.events import Text
from settlewatch.settlementfiles.amounts import exponent, to_minor
from settlewatch.settlementfiles.model import (
    FileRejected,
    Issue,
    Loc,
    Payout,
    Problem,
    ReportLine,
)
from settlewatch.settlementfiles.text import rows

__all__ = ["FIELDS", "FileMapping", "parse"]

# The fields a column can be mapped to: ReportLine's, with the amounts by their short names.
MappedField = Literal[
    "txn_id",
    "original_txn_id",
    "psp_ref",
    "merchant_id",
    "terminal_id",
    "rrn",
    "auth_code",
    "stan",
    "occurred_at",
    "value_date",
    "batch_id",
    "kind",
    "currency",
    "gross",
    "fee",
    "net",
]
FIELDS: tuple[str, ...] = get_args(MappedField)
_ENCODINGS = {"utf-8": "utf-8", "gbk": "gb18030", "gb18030": "gb18030"}  # GB18030 ⊃ GBK


class FileMapping(BaseModel):
    """How one kind of CSV 对账单 is written."""

    model_config = ConfigDict(extra="forbid")

    delimiter: Annotated[str, StringConstraints(pattern=r"^[^\"\r\n]$")] = ","  # not a quote
    encoding: Literal["utf-8", "gbk", "gb18030"] = "utf-8"
    header_row: Annotated[int, Field(ge=1, le=100)] = 1  # 1-based: title lines may come first
    columns: dict[MappedField, Text]  # field → the header's name for its column
    currency: str = "CNY"  # when no column gives it
    datetime_format: Text = "%Y-%m-%d %H:%M:%S"
    date_format: Text = "%Y-%m-%d"
    timezone: str = "Asia/Shanghai"
    amount_unit: Literal["major", "minor"] = "major"  # 元 or 分
    decimal_comma: bool = False
    thousands_separator: Annotated[Text, Field(max_length=1)] | None = None
    # The file's word → sale, refund, fee…
    kinds: Annotated[dict[Text, Text], Field(max_length=100)] = Field(default_factory=dict)
    stop_at: Annotated[list[Text], Field(max_length=20)] = Field(  # footer rows
        default_factory=lambda: ["合计", "总计", "汇总"]
    )
    # "by_batch": one payout per batch and value date, from its lines' net (rows mapped to the
    # kind "payout" are payouts in any case).
    payouts: Literal["by_batch"] | None = None

    @property
    def declares_payouts(self) -> bool:
        return self.payouts is not None or "payout" in self.kinds.values()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        exponent(value)
        return value

    @model_validator(mode="after")
    def _amounts(self) -> FileMapping:
        if "net" not in self.columns and "gross" not in self.columns:
            raise ValueError("columns must map net, or gross (and fee)")
        if self.declares_payouts and "batch_id" not in self.columns:
            raise ValueError("payouts need a batch_id column: a payout pays a batch")
        return self


def parse(stream: IO[bytes], mapping: FileMapping) -> Iterator[ReportLine | Payout]:
    """The file's lines in order, then its payouts (see the module's docstring)."""
    batches: dict[tuple[str, date | None], _Batch] = {}
    paid: list[ReportLine] = []
    for line in _lines(stream, mapping):
        if line.kind == "payout":
            paid.append(line)
            continue
        if mapping.declares_payouts and line.batch_id is not None:
            batch = batches.setdefault((line.batch_id, line.value_date), _Batch(line.loc))
            batch.add(line)
        yield line
    for row in paid:
        yield _payout_row(row, batches)
    if mapping.payouts == "by_batch":
        for (batch_id, value_date), batch in batches.items():
            if not any(row.batch_id == batch_id for row in paid):
                yield batch.payout(batch_id, value_date)


class _Batch:
    """A batch's lines so far: where it starts, its currency, count and net."""

    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        self.currency: str | None = None
        self.count = 0
        self.net_minor = 0

    def add(self, line: ReportLine) -> None:
        if self.currency not in (None, line.currency):
            raise FileRejected([Issue(line.loc, "a batch's lines are in one currency")])
        self.currency = line.currency
        self.count += 1
        self.net_minor += line.net_minor

    def payout(self, batch_id: str, value_date: date | None) -> Payout:
        assert self.currency is not None
        return Payout(
            loc=self.loc,
            batch_id=batch_id,
            currency=self.currency,
            amount_minor=self.net_minor,
            value_date=value_date,
            count=self.count,
            reference=batch_id,
        )


def _payout_row(row: ReportLine, batches: dict[tuple[str, date | None], _Batch]) -> Payout:
    """A row the mapping calls a payout: what it says was paid, against its batch's lines."""
    if row.batch_id is None:
        raise FileRejected([Issue(row.loc, "a payout row names no batch")])
    lines = [b for (batch_id, _), b in batches.items() if batch_id == row.batch_id]
    count = sum(b.count for b in lines)
    net = sum(b.net_minor for b in lines)
    problems = []
    if lines and net != row.net_minor:
        problems.append(
            Problem(
                "summary_mismatch",
                f"batch {row.batch_id} pays out another amount than its lines' net",
                expected=str(net),
                found=str(row.net_minor),
            )
        )
    return Payout(
        loc=row.loc,
        batch_id=row.batch_id,
        currency=row.currency,
        amount_minor=row.net_minor,
        value_date=row.value_date,
        count=count,
        reference=row.txn_id or row.rrn or row.batch_id,
        problems=tuple(problems),
    )


def _lines(stream: IO[bytes], mapping: FileMapping) -> Iterator[ReportLine]:
    numbered = rows(stream, _ENCODINGS[mapping.encoding], mapping.delimiter)
    zone = ZoneInfo(mapping.timezone)
    try:
        for _ in range(mapping.header_row - 1):
            next(numbered)
        header = [name.strip() for name in next(numbered)[1]]
    except StopIteration:
        raise FileRejected([Issue(("line", mapping.header_row), "no header row")]) from None
    missing = [column for column in mapping.columns.values() if column not in header]
    if missing:
        raise FileRejected(
            [Issue(("line", mapping.header_row), f"no column {missing} in the header")]
        )
    where: dict[str, int] = {name: header.index(col) for name, col in mapping.columns.items()}
    reader = _Row(mapping, where, zone)
    for number, values in numbered:
        cells = [value.strip() for value in values]
        if not any(cells):
            continue
        if any(cells[0].startswith(word) for word in mapping.stop_at):
            return
        yield reader.line(("line", number), cells)


class _Row:
    def __init__(self, mapping: FileMapping, where: dict[str, int], zone: ZoneInfo) -> None:
        self._mapping = mapping
        self._where = where
        self._zone = zone

    def _column(self, name: str) -> str:
        """The header name of the column mapped to `name`, for errors."""
        return next(column for field, column in self._mapping.columns.items() if field == name)

    def _get(self, cells: list[str], name: str) -> str | None:
        index = self._where.get(name)
        if index is None or index >= len(cells):
            return None
        return cells[index].removeprefix("`").removeprefix("'").strip() or None

    def line(self, loc: Loc, cells: list[str]) -> ReportLine:
        currency = self._get(cells, "currency") or self._mapping.currency
        gross = self._amount(cells, "gross", currency, loc)
        fee = self._amount(cells, "fee", currency, loc)
        net = self._amount(cells, "net", currency, loc)
        if net is None:
            if gross is None:
                amount = "net" if "net" in self._mapping.columns else "gross"
                raise FileRejected([Issue((*loc, self._column(amount)), "no amount")])
            net = gross - (fee or 0)
        kind = self._get(cells, "kind")
        return ReportLine(
            loc=loc,
            kind=self._mapping.kinds.get(kind, kind) if kind else ("refund" if net < 0 else "sale"),
            currency=currency,
            gross_minor=gross,
            fee_minor=fee,
            net_minor=net,
            batch_id=self._get(cells, "batch_id"),
            occurred_at=self._moment(cells, loc),
            value_date=self._date(cells, loc),
            txn_id=self._get(cells, "txn_id"),
            original_txn_id=self._get(cells, "original_txn_id"),
            psp_ref=self._get(cells, "psp_ref"),
            merchant_id=self._get(cells, "merchant_id"),
            terminal_id=self._get(cells, "terminal_id"),
            rrn=self._get(cells, "rrn"),
            auth_code=self._get(cells, "auth_code"),
            stan=self._get(cells, "stan"),
        )

    def _amount(self, cells: list[str], name: str, currency: str, loc: Loc) -> int | None:
        written = self._get(cells, name)
        if written is None:
            return None
        try:
            return to_minor(
                written,
                currency,
                decimal_comma=self._mapping.decimal_comma,
                thousands_separator=self._mapping.thousands_separator,
                unit=self._mapping.amount_unit,
            )
        except ValueError as exc:
            raise FileRejected([Issue((*loc, self._column(name)), str(exc))]) from None

    def _moment(self, cells: list[str], loc: Loc) -> datetime | None:
        written = self._get(cells, "occurred_at")
        if written is None:
            return None
        try:
            parsed = datetime.strptime(written, self._mapping.datetime_format)
        except ValueError:
            column = self._column("occurred_at")
            message = f"{written!r} is not {self._mapping.datetime_format}"
            raise FileRejected([Issue((*loc, column), message)]) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self._zone)

    def _date(self, cells: list[str], loc: Loc) -> date | None:
        written = self._get(cells, "value_date")
        if written is None:
            return None
        try:
            return datetime.strptime(written, self._mapping.date_format).date()
        except ValueError:
            column = self._column("value_date")
            message = f"{written!r} is not {self._mapping.date_format}"
            raise FileRejected([Issue((*loc, column), message)]) from None

"""WeChat Pay bills (微信支付对账单): the trade bill (交易账单: ALL, SUCCESS, REFUND) and the fund
flow bill (资金账单), as downloaded from the merchant platform or the v3 API.

Every value is written with a leading backtick (so spreadsheets keep long numbers as text);
columns are found by their Chinese header name; the rows are followed by a summary header and
one summary row, which is checked against the rows. Times are Beijing time. The trade bill's fee
(手续费) has five decimals: it is rounded half-up to the fen, as WeChat Pay does when it settles;
every other amount must be exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO
from zoneinfo import ZoneInfo

from settlewatch.settlementfiles.amounts import to_minor
from settlewatch.settlementfiles.model import (
    FileRejected,
    Issue,
    Loc,
    Payout,
    Problem,
    ReportLine,
    Summary,
)
from settlewatch.settlementfiles.text import rows

__all__ = ["FUND_FLOW", "TRADE", "parse"]

BEIJING = ZoneInfo("Asia/Shanghai")
TRADE = ("交易时间", "商户号", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额")
FUND_FLOW = ("记账时间", "微信支付业务单号", "业务类型", "收支类型", "收支金额(元)")
_TRADE_SUMMARY = "总交易单数"
_FUND_SUMMARY = "资金流水总笔数"
_FUND_KINDS = {"交易": "sale", "退款": "refund", "提现": "payout", "扣除交易手续费": "fee"}


def parse(stream: IO[bytes]) -> Iterator[ReportLine | Payout | Summary]:
    """The bill's rows in order, then its checked summary."""
    numbered = rows(stream, "utf-8")
    header = [_clean(name) for name in next(numbered, (1, []))[1]]
    if all(name in header for name in TRADE):
        bill: _Bill = _TradeBill(header)
    elif all(name in header for name in FUND_FLOW):
        bill = _FundFlowBill(header)
    else:
        raise FileRejected([Issue(("line", 1), "not a WeChat Pay trade or fund flow bill header")])
    for number, row in numbered:
        values = [_clean(value) for value in row]
        if not any(values):
            continue
        if values[0] == bill.summary_header:
            number, summary = next(numbered, (number + 1, None))
            if summary is None:
                raise FileRejected([Issue(("line", number), "summary row missing")])
            yield bill.summary(
                ("line", number), dict(zip(values, map(_clean, summary), strict=False))
            )
            return
        yield bill.row(("line", number), dict(zip(header, values, strict=False)))
    raise FileRejected(
        [Issue(("line", "end"), f"no summary ({bill.summary_header}…): file truncated?")]
    )


def _clean(value: str) -> str:
    return value.strip().removeprefix("`").strip()


def _yuan(row: dict[str, str], column: str, loc: Loc, currency: str = "CNY") -> int:
    try:
        return to_minor(row.get(column) or "0", currency)
    except ValueError as exc:
        raise FileRejected([Issue((*loc, column), str(exc))]) from None


def _count(row: dict[str, str], column: str, loc: Loc) -> int:
    """A summary's count; -1 when it is missing (then it disagrees with the rows)."""
    written = row.get(column) or ""
    if not written:
        return -1
    if not (written.isascii() and written.isdigit() and len(written) <= 12):
        raise FileRejected([Issue((*loc, column), f"{written[:40]!r} is not a count of rows")])
    return int(written)


def _time(row: dict[str, str], column: str, loc: Loc) -> datetime:
    try:
        return datetime.fromisoformat(row[column]).replace(tzinfo=BEIJING)
    except (KeyError, ValueError):
        raise FileRejected([Issue((*loc, column), f"not a time: {row.get(column)!r}")]) from None


def _mismatch(problems: list[Problem], what: str, claimed: int, found: int) -> None:
    if claimed != found:
        problems.append(
            Problem(
                "summary_mismatch", f"the summary's {what}", expected=str(claimed), found=str(found)
            )
        )


@dataclass
class _Bill:
    header: list[str]
    summary_header: str = ""
    rows: int = 0

    def row(self, loc: Loc, row: dict[str, str]) -> ReportLine | Payout:
        raise NotImplementedError

    def summary(self, loc: Loc, summary: dict[str, str]) -> Summary:
        raise NotImplementedError


@dataclass
class _TradeBill(_Bill):
    summary_header: str = _TRADE_SUMMARY
    totals: dict[str, int] = field(default_factory=lambda: {"settle": 0, "refund": 0, "fee": 0})

    def row(self, loc: Loc, row: dict[str, str]) -> ReportLine:
        currency = row.get("货币种类") or "CNY"
        settle = _yuan(row, "应结订单金额", loc, currency)
        refund = _yuan(row, "退款金额", loc, currency)
        fee = self._fee(row, loc, currency)
        self.rows += 1
        self.totals["settle"] += settle
        self.totals["refund"] += refund
        self.totals["fee"] += fee
        refunded = row.get("交易状态") == "REFUND"
        sub_merchant = row.get("特约商户号")
        return ReportLine(
            loc=loc,
            kind="refund" if refunded else "sale",
            currency=currency,
            gross_minor=-refund if refunded else _yuan(row, "订单金额", loc, currency) or settle,
            fee_minor=fee,
            net_minor=settle - refund - fee,
            occurred_at=_time(row, "交易时间", loc),
            txn_id=(row.get("商户退款单号") if refunded else row.get("商户订单号")) or None,
            original_txn_id=row.get("商户订单号") if refunded else None,
            psp_ref=(row.get("微信退款单号") if refunded else row.get("微信订单号")) or None,
            merchant_id=sub_merchant if sub_merchant not in (None, "", "0") else row.get("商户号"),
            terminal_id=row.get("设备号") or None,
        )

    @staticmethod
    def _fee(row: dict[str, str], loc: Loc, currency: str) -> int:
        # WeChat Pay writes fees to the thousandth of a yuan (0.006) and settles them rounded.
        try:
            return to_minor(row.get("手续费") or "0", currency, round_half_up=True)
        except ValueError as exc:
            raise FileRejected([Issue((*loc, "手续费"), str(exc))]) from None

    def summary(self, loc: Loc, summary: dict[str, str]) -> Summary:
        problems: list[Problem] = []
        _mismatch(problems, "总交易单数 (rows)", _count(summary, _TRADE_SUMMARY, loc), self.rows)
        _mismatch(
            problems, "应结订单总金额", _yuan(summary, "应结订单总金额", loc), self.totals["settle"]
        )
        _mismatch(problems, "退款总金额", _yuan(summary, "退款总金额", loc), self.totals["refund"])
        fee = _TradeBill._fee({"手续费": summary.get("手续费总金额", "0")}, loc, "CNY")
        _mismatch(problems, "手续费总金额", fee, self.totals["fee"])
        return Summary(loc=loc, rows=self.rows, problems=tuple(problems))


@dataclass
class _FundFlowBill(_Bill):
    summary_header: str = _FUND_SUMMARY
    income: list[int] = field(default_factory=lambda: [0, 0])  # count, amount
    expense: list[int] = field(default_factory=lambda: [0, 0])

    def row(self, loc: Loc, row: dict[str, str]) -> ReportLine | Payout:
        amount = _yuan(row, "收支金额(元)", loc)
        direction = row.get("收支类型")
        if direction not in ("收入", "支出"):
            raise FileRejected(
                [Issue((*loc, "收支类型"), f"must be 收入 or 支出, not {direction!r}")]
            )
        tally = self.income if direction == "收入" else self.expense
        tally[0] += 1
        tally[1] += amount
        self.rows += 1
        signed = amount if direction == "收入" else -amount
        at = _time(row, "记账时间", loc)
        kind = _FUND_KINDS.get(row.get("业务类型") or "", row.get("业务类型") or "other")
        reference = row.get("微信支付业务单号") or None
        if kind == "payout":  # 提现: the balance sent to the merchant's bank account
            return Payout(
                loc=loc,
                batch_id=reference or f"line-{loc[-1]}",
                currency="CNY",
                amount_minor=amount,
                value_date=at.date(),
                count=0,
                reference=reference,
            )
        return ReportLine(
            loc=loc,
            kind=kind,
            currency="CNY",
            gross_minor=None,
            fee_minor=None,
            net_minor=signed,
            occurred_at=at,
            value_date=at.date(),
            txn_id=row.get("业务凭证号") or None,
            psp_ref=reference,
        )

    def summary(self, loc: Loc, summary: dict[str, str]) -> Summary:
        problems: list[Problem] = []
        _mismatch(problems, "资金流水总笔数 (rows)", _count(summary, _FUND_SUMMARY, loc), self.rows)
        _mismatch(problems, "收入笔数", _count(summary, "收入笔数", loc), self.income[0])
        _mismatch(problems, "收入金额", _yuan(summary, "收入金额", loc), self.income[1])
        _mismatch(problems, "支出笔数", _count(summary, "支出笔数", loc), self.expense[0])
        _mismatch(problems, "支出金额", _yuan(summary, "支出金额", loc), self.expense[1])
        return Summary(loc=loc, rows=self.rows, problems=tuple(problems))

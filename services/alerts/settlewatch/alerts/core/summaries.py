"""Human summaries of alerts in the merchant's locale (SPEC §6), e.g.
「交易 T123（¥128.00，11月20日 10:02）未按 T+1 到账，应于 11月21日 24:00 前到账；
可能原因：银行系统维护。」

Money is formatted per currency by Babel (¥128.00, JP¥500: the currency's own minor units),
times in the merchant's time zone; a deadline at local midnight reads as 24:00 of the day before,
as banks and merchants say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from settlewatch.common.money import BABEL, Locale, money

__all__ = ["Locale", "summary"]

_TIME = {"zh-CN": "M月d日 HH:mm", "en": "MMM d, HH:mm"}
_CAUSE = {
    "zh-CN": {
        "bank_maintenance": "银行系统维护",
        "bank_incident": "银行系统故障",
        "unknown": "未知",
    },
    "en": {
        "bank_maintenance": "bank maintenance",
        "bank_incident": "bank-wide incident",
        "unknown": "unknown",
    },
}


def _time(moment: str | None, tz: ZoneInfo, locale: Locale, *, midnight_as_24: bool) -> str:
    if not moment:
        return "?"
    local = datetime.fromisoformat(moment).astimezone(tz)
    if midnight_as_24 and (local.hour, local.minute) == (0, 0):
        pattern = _TIME[locale].replace("HH:mm", "'24:00'")
        return format_datetime(local - timedelta(days=1), pattern, locale=BABEL[locale])
    return format_datetime(local, _TIME[locale], locale=BABEL[locale])


def _cycle(cycle: str | None, locale: Locale) -> str:
    if cycle == "instant":
        return "约定时效" if locale == "zh-CN" else "within its instant SLA"
    if cycle and cycle[0] in "TD" and cycle[1:].isdigit():
        return f"{cycle[0]}+{cycle[1:]}"
    return cycle or "?"


def summary(
    alert_type: str,
    evidence: Mapping[str, Any],
    *,
    locale: Locale,
    timezone: str,
    probable_cause: str | None,
) -> str:
    """One or two sentences a merchant can act on, built only from the alert's evidence."""
    tz = ZoneInfo(timezone)
    e = evidence
    currency = e.get("currency")
    facts = {
        "txn": e.get("txn_id", "?"),
        "sid": e.get("settlement_id") or "?",
        "reason": e.get("failure_reason") or ("未说明" if locale == "zh-CN" else "no reason given"),
        "amount": money(e["amount_minor"], currency, locale) if currency else "?",
        "occurred": _time(e.get("occurred_at"), tz, locale, midnight_as_24=False),
        "due": _time(e.get("due_at"), tz, locale, midnight_as_24=True),
        "cycle": _cycle(e.get("settlement_cycle"), locale),
        "cause": _CAUSE[locale].get(probable_cause or "unknown", probable_cause or ""),
        "pair": " / ".join(e.get("txn_ids") or [e.get("txn_id", "?")]),
    }
    if currency and "settled_net_minor" in e:
        expected = e.get("expected_net_minor")
        facts["expected_net"] = (
            money(expected, currency, locale) if expected is not None else _NO_RULE[locale]
        )
        facts["settled_net"] = money(e["settled_net_minor"], currency, locale)
        facts["fees"] = ""
        if e.get("expected_fee_minor") is not None and "charged_fee_minor" in e:
            charged = money(e["charged_fee_minor"], currency, locale)
            owed = money(e["expected_fee_minor"], currency, locale)
            facts["fees"] = _FEES[locale].format(charged=charged, expected=owed)
    if currency and "refunded_minor" in e:
        facts["refunded"] = money(e["refunded_minor"], currency, locale)
        facts["refunds"] = (
            "、".join(e.get("refunds") or [])
            if locale == "zh-CN"
            else ", ".join(e.get("refunds") or [])
        )
    facts |= _file_facts(alert_type, e, locale) | _terminal_facts(e, tz, locale)
    template = (_ZH if locale == "zh-CN" else _EN).get(alert_type)
    if template is None:
        return alert_type
    text = template.format_map(facts)
    if e.get("deadline_basis") == "estimated" and "{due}" in template:
        text += _ESTIMATED[locale]
    return text


_LINE_KINDS = {
    "zh-CN": {"fee": "手续费", "fee_debit": "扣费", "chargeback": "拒付", "adjustment": "调账"},
    "en": {
        "fee": "fee",
        "fee_debit": "fee debit",
        "chargeback": "chargeback",
        "adjustment": "adjustment",
    },
}
_NO_RULE = {"zh-CN": "未知（无适用的费率规则）", "en": "unknown (no fee rule fits)"}
_FEES = {
    "zh-CN": "；手续费实扣 {charged}，应为 {expected}",
    "en": "; fee charged {charged}, expected {expected}",
}
# A deadline computed on Monday–Friday because the holiday calendar of its year is not loaded.
_ESTIMATED = {
    "zh-CN": "（应到账时间按周一至周五估算：该年度节假日安排尚未载入。）",
    "en": " (The deadline is estimated on Monday–Friday: that year's holiday calendar is not "
    "loaded yet.)",
}


def _terminal_facts(e: Mapping[str, Any], tz: ZoneInfo, locale: Locale) -> dict[str, str]:
    """The facts of terminals' findings (跳码, books after a migration) and of an announced
    maintenance window (SPEC §12)."""
    facts: dict[str, str] = {}
    if "regions" in e:
        facts["terminal"] = str(e.get("terminal_id"))
        facts["regions"] = " → ".join(e["regions"])
        times = [t.get("occurred_at") for t in e.get("transactions", [])]
        join = "、" if locale == "zh-CN" else ", "
        facts["jump_times"] = join.join(_time(t, tz, locale, midnight_as_24=False) for t in times)
    if "replaced_terminal_id" in e:
        facts["old_terminal"] = str(e["replaced_terminal_id"])
        facts["new_terminal"] = str(e["new_terminal_id"])
        facts["booked"] = str(e.get("booked_under"))
        facts["day"] = str(e.get("business_date"))
    if "window_id" in e:
        facts["bank"] = str(e.get("bank_code"))
        facts["starts"] = _time(e.get("starts_at"), tz, locale, midnight_as_24=False)
        facts["ends"] = _time(e.get("ends_at"), tz, locale, midnight_as_24=False)
        facts["window_reason"] = str(e.get("reason"))
        facts["moved_count"] = str(e.get("moved_count", 0))
    return facts


def _entry(e: Mapping[str, Any]) -> str | None:
    """How the statement names an entry: the bank's reference, else our id of it."""
    found = e.get("entry_ref") or e.get("servicer_ref") or e.get("credit_id")
    return str(found) if found else None


def _file_facts(alert_type: str, e: Mapping[str, Any], locale: Locale) -> dict[str, str]:
    """The facts of the settlement files' findings (SPEC §9): where in which file, which
    payout, which statement entry, and the record's problem this finding is about."""
    currency = e.get("currency")
    problems = e.get("problems") or [{}]
    code = "duplicate_line" if alert_type == "settlement.duplicate_line" else "total"
    problem = next((p for p in problems if code in str(p.get("code"))), problems[0])
    facts = {
        "file": e.get("file_id") or "?",
        "where": "/".join(map(str, e.get("loc") or [])) or "?",
        "payout": e.get("reference") or e.get("payout_id") or "?",
        "value_date": e.get("value_date") or "?",
        "count": str(e.get("count", "?")),
        "account": e.get("account") or "?",
        "entry": _entry(e) or _entry(e.get("credit") or {}) or "?",
        "expected": problem.get("expected") or "?",
        "found": problem.get("found") or "?",
        "line_kind": _LINE_KINDS[locale].get(e.get("line_kind") or "", e.get("line_kind") or "?"),
    }
    for name in ("credited", "difference"):
        if currency and f"{name}_minor" in e:
            facts[name] = money(e[f"{name}_minor"], currency, locale)
    return facts


_ZH = {
    "settlement.overdue": (
        "交易 {txn}（{amount}，{occurred}）未按 {cycle} 到账，"
        "应于 {due} 前到账；可能原因：{cause}。"
    ),
    "settlement.settled_late": (
        "交易 {txn}（{amount}，{occurred}）已到账（结算单 {sid}），晚于应到账时间 {due}。"
    ),
    "settlement.failed": (
        "交易 {txn}（{amount}，{occurred}）打款失败（结算单 {sid}：{reason}）；可能原因：{cause}。"
    ),
    "settlement.recovered": (
        "交易 {txn}（{amount}，{occurred}）此前打款失败，现已到账（结算单 {sid}）。"
    ),
    "settlement.amount_mismatch": (
        "交易 {txn}（{amount}，{occurred}）到账金额不符："
        "应到账 {expected_net}，实际到账 {settled_net}（结算单 {sid}）{fees}。"
    ),
    "settlement.unknown_transaction": (
        "结算单 {sid} 中的交易 {txn} 在 15 分钟后仍未收到，无法核对。"
    ),
    "settlement.expired": (
        "交易 {txn}（{amount}，{occurred}）应于 {due} 前到账，30 天后仍未到账，"
        "已停止跟踪；可能原因：{cause}。"
    ),
    "transaction.duplicate_suspected": (
        "疑似重复扣款：交易 {pair}（同一张卡，{amount}，{occurred}）。"
    ),
    "transaction.conflict": "交易 {txn} 被再次上送但内容不同，以首次上送的内容为准。",
    "refund.exceeds_sale": (
        "交易 {txn}（{amount}，{occurred}）的退款合计 {refunded}，超过了原交易金额"
        "（退款 {refunds}）。"
    ),
    "settlement.paid_after_void": (
        "交易 {txn}（{amount}，{occurred}）已撤销，银行仍然付款了（结算单 {sid}，{settled_net}）。"
    ),
    "payout.missing": (
        "结算报告中的付款批次 {payout}（{amount}，{count} 笔）应于 {value_date} 到账，"
        "宽限期已过，银行流水中仍未见这笔入账（未到账）。"
    ),
    "payout.short": (
        "付款批次 {payout} 应到账 {amount}，银行流水实际入账 {credited}（{value_date}，"
        "流水 {entry}），差额 {difference}。"
    ),
    "payout.unexpected_credit": (
        "账户 {account} 于 {value_date} 收到一笔 {amount} 的入账（流水 {entry}），"
        "没有结算报告与之对应。"
    ),
    "payout.unexpected_debit": (
        "账户 {account} 于 {value_date} 被扣款 {amount}（流水 {entry}），没有结算报告与之对应。"
    ),
    "settlement.batch_total_mismatch": (
        "文件 {file}（{where}）的批次汇总与明细不符：应为 {expected}，实为 {found}；"
        "该批次未予核对。"
    ),
    "settlement.duplicate_line": (
        "文件 {file}（{where}）中同一笔明细（{found}）出现两次且内容不同，未予核对。"
    ),
    "settlement.ambiguous_line": (
        "文件 {file}（{where}）中的一笔结算（{amount}）可对应多笔交易（{pair}），需人工确认。"
    ),
    "fee.unexpected_deduction": (
        "文件 {file}（{where}）从结算款中扣除了 {amount}（{line_kind}），"
        "没有事先通知的扣费或拒付与之对应。"
    ),
    "terminal.region_jump": (
        "终端 {terminal} 的交易出现在不同地区（{regions}，{jump_times}），疑似跳码或终端被移机，"
        "请核实终端所在位置。"
    ),
    "terminal.books_mismatch": (
        "终端迁移后账务不一致：{day} 终端 {new_terminal}（替换 {old_terminal}）的交易被银行记在"
        "终端 {booked} 名下；请核对当日分终端账目。"
    ),
    "bank.maintenance_scheduled": (
        "{bank} 将于 {starts} 至 {ends} 进行系统维护（{window_reason}）；"
        "您有 {moved_count} 笔交易的应到账时间因此顺延。"
    ),
}
_EN = {
    "settlement.overdue": "Transaction {txn} ({amount}, {occurred}) was not settled {cycle}; "
    "it was due by {due}. Probable cause: {cause}.",
    "settlement.settled_late": "Transaction {txn} ({amount}, {occurred}) has been settled "
    "(settlement {sid}), after its deadline of {due}.",
    "settlement.failed": "The payout of transaction {txn} ({amount}, {occurred}) failed "
    "(settlement {sid}: {reason}). Probable cause: {cause}.",
    "settlement.recovered": "Transaction {txn} ({amount}, {occurred}), whose payout had failed, "
    "has now been settled (settlement {sid}).",
    "settlement.amount_mismatch": "Transaction {txn} ({amount}, {occurred}) was settled with the "
    "wrong amount: expected net {expected_net}, received {settled_net} (settlement {sid}){fees}.",
    "settlement.unknown_transaction": "Settlement {sid} pays transaction {txn}, which is still "
    "unknown 15 minutes later and cannot be checked.",
    "settlement.expired": "Transaction {txn} ({amount}, {occurred}), due by {due}, is still not "
    "settled 30 days later and is no longer watched. Probable cause: {cause}.",
    "transaction.duplicate_suspected": "Suspected duplicate charge: transactions {pair} (same "
    "card, {amount}, {occurred}).",
    "transaction.conflict": "Transaction {txn} was sent again with different content; the first "
    "version is kept.",
    "refund.exceeds_sale": "The refunds of transaction {txn} ({amount}, {occurred}) add up to "
    "{refunded}, more than the sale (refunds {refunds}).",
    "settlement.paid_after_void": "Transaction {txn} ({amount}, {occurred}) was cancelled, yet "
    "the bank paid it (settlement {sid}, {settled_net}).",
    "payout.missing": "Payout {payout} ({amount}, {count} payments) was due on the account on "
    "{value_date}; the grace period is over and no such credit is on the bank statement.",
    "payout.short": "Payout {payout} should have credited {amount}; the statement shows "
    "{credited} ({value_date}, entry {entry}), a difference of {difference}.",
    "payout.unexpected_credit": "Account {account} was credited {amount} on {value_date} (entry "
    "{entry}), and no settlement report explains it.",
    "payout.unexpected_debit": "Account {account} was debited {amount} on {value_date} (entry "
    "{entry}), and no settlement report explains it.",
    "settlement.batch_total_mismatch": "In file {file} ({where}) a batch header disagrees with "
    "its lines: expected {expected}, found {found}; the batch was not matched.",
    "settlement.duplicate_line": "File {file} ({where}) holds the same line ({found}) twice with "
    "different content; it was not matched.",
    "settlement.ambiguous_line": "A settlement line of file {file} ({where}, {amount}) fits "
    "several payments ({pair}); it needs a person to choose.",
    "fee.unexpected_deduction": "File {file} ({where}) deducts {amount} ({line_kind}) from the "
    "payout, and no announced fee debit or chargeback explains it.",
    "terminal.region_jump": "Terminal {terminal} was used in different regions ({regions}, "
    "{jump_times}): it may have been moved or cloned (跳码); check where it is.",
    "terminal.books_mismatch": "Books disagree after a terminal migration: on {day} the bank "
    "booked payments of terminal {new_terminal} (which replaced {old_terminal}) under terminal "
    "{booked}; check that day's books per terminal.",
    "bank.maintenance_scheduled": "{bank} announced maintenance from {starts} to {ends} "
    "({window_reason}); the deadlines of {moved_count} of your payments move accordingly.",
}

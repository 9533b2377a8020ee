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

from settlewatch.common.findings import kind
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


class _Facts(dict[str, Any]):
    """A fact the evidence lacks reads as "?" rather than failing the alert."""

    def __missing__(self, key: str) -> str:
        return "?"


def _plain(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence's own numbers and words, as on-call templates show them."""
    return {k: v for k, v in evidence.items() if isinstance(v, str | int)}


def summary(
    alert_type: str,
    evidence: Mapping[str, Any],
    *,
    locale: Locale,
    timezone: str,
    probable_cause: str | None,
) -> str:
    """One or two sentences a merchant can act on, built only from the alert's evidence with its
    type's template (common.findings; KeyError for a type the registry lacks)."""
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
    template = kind(alert_type).template[locale]
    text = template.format_map(_Facts(_plain(e) | facts))
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

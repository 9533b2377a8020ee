"""The names of the things people read about — payments' kinds and statuses, a bank's settlement
outcomes, payouts' and alerts' statuses, the desk's exceptions — in each language (finding types
name themselves in common.findings), and the entries of a payment's history. Shown by the
evidence PDF, the alerts, the payments API and the console; the keys are the API's values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from settlewatch.common.findings import KINDS
from settlewatch.common.money import Locale

__all__ = [
    "ALERT_STATUSES",
    "DESK_ACTIONS",
    "DESK_AGES",
    "DESK_KINDS",
    "DESK_STATUSES",
    "DIGEST_TYPE",
    "HISTORY",
    "HistoryArgs",
    "HistoryCode",
    "PAYMENT_KINDS",
    "PAYMENT_STATUSES",
    "PAYOUT_STATUSES",
    "SETTLEMENT_OUTCOMES",
    "TEST_TYPE",
    "WEBHOOK_TYPES",
    "Names",
    "history_text",
    "say",
    "webhook_type",
]

Names = Mapping[str, Mapping[Locale, str]]

PAYMENT_KINDS: Names = {
    "sale": {"zh-CN": "消费", "en": "sale"},
    "refund": {"zh-CN": "退货", "en": "refund"},
    "chargeback": {"zh-CN": "拒付", "en": "chargeback"},
    "fee_debit": {"zh-CN": "扣费", "en": "fee debit"},
    "adjustment": {"zh-CN": "调账", "en": "adjustment"},
}
PAYMENT_STATUSES: Names = {
    "pending": {"zh-CN": "待到账", "en": "pending"},
    "overdue": {"zh-CN": "逾期未到账", "en": "overdue"},
    "settled": {"zh-CN": "已到账", "en": "settled"},
    "settled_late": {"zh-CN": "已到账（逾期）", "en": "settled late"},
    "failed": {"zh-CN": "打款失败", "en": "payout failed"},
    "cancelled": {"zh-CN": "已撤销", "en": "cancelled"},
    "expired": {"zh-CN": "逾期 30 天以上", "en": "expired (over 30 days)"},
}
SETTLEMENT_OUTCOMES: Names = {
    "settled": {"zh-CN": "已到账", "en": "settled"},
    "failed": {"zh-CN": "打款失败", "en": "failed"},
    "returned": {"zh-CN": "退票", "en": "returned"},
}
PAYOUT_STATUSES: Names = {
    "expected": {"zh-CN": "待到账", "en": "expected"},
    "arrived": {"zh-CN": "已到账", "en": "arrived"},
    "short": {"zh-CN": "到账不足", "en": "short"},
    "missing": {"zh-CN": "未到账", "en": "missing"},
    "unexpected": {"zh-CN": "无来源入账", "en": "unexpected"},
}
DESK_KINDS: Names = {
    "unmatched_line": {"zh-CN": "未匹配的对账明细", "en": "unmatched line"},
    "ambiguous_line": {"zh-CN": "多笔可匹配的对账明细", "en": "ambiguous line"},
    "invalid_line": {"zh-CN": "无法入账的对账明细", "en": "invalid line"},
    "flagged": {"zh-CN": "文件内容不一致", "en": "inconsistent in its file"},
    "missing_payout": {"zh-CN": "划款未到账", "en": "missing payout"},
    "short_payout": {"zh-CN": "划款金额不足", "en": "short payout"},
    "unexpected_credit": {"zh-CN": "无来源入账", "en": "unexpected credit"},
    "unexpected_debit": {"zh-CN": "无来源扣款", "en": "unexpected debit"},
}
DESK_STATUSES: Names = {
    "open": {"zh-CN": "待处理", "en": "open"},
    "pending_approval": {"zh-CN": "核销待复核", "en": "write-off awaiting approval"},
    "matched": {"zh-CN": "已匹配", "en": "matched"},
    "written_off": {"zh-CN": "已核销", "en": "written off"},
    "resolved": {"zh-CN": "已解决", "en": "resolved"},
}
# What happened to an exception (its history's `action`): by the desk or by settlewatch.
DESK_ACTIONS: Names = {
    "opened": {"zh-CN": "创建", "en": "opened"},
    "match": {"zh-CN": "人工匹配", "en": "matched by hand"},
    "matched": {"zh-CN": "自动匹配", "en": "matched"},
    "arrived": {"zh-CN": "款项到账", "en": "money arrived"},
    "write-off": {"zh-CN": "核销", "en": "written off"},
    "reopen": {"zh-CN": "重新打开", "en": "reopened"},
    "propose": {"zh-CN": "提交核销（待复核）", "en": "write-off proposed"},
    "approve": {"zh-CN": "复核通过，已核销", "en": "write-off approved"},
    "reject": {"zh-CN": "复核退回", "en": "write-off rejected"},
    "assign": {"zh-CN": "分派给", "en": "assigned to"},
    "unassign": {"zh-CN": "取消分派", "en": "unassigned"},
}
# The desk's ageing buckets (SPEC §15), by whole days open, named as the APIs name them.
DESK_AGES = ("0-1", "2-7", "8-30", ">30")
ALERT_STATUSES: Names = {
    "open": {"zh-CN": "待处理", "en": "open"},
    "acknowledged": {"zh-CN": "已确认", "en": "acknowledged"},
    "resolved": {"zh-CN": "已解决", "en": "resolved"},
}

# A webhook's type is its alerts' finding type (common.findings), or one of these.
DIGEST_TYPE = "settlement.reminder"  # what is still open, reminded (alerts.core.reminders)
TEST_TYPE = "webhook.test"  # sent by hand to check an endpoint (POST /v1/deliveries/test)
WEBHOOK_TYPES: Names = {
    DIGEST_TYPE: {"zh-CN": "未到账提醒", "en": "reminder of what is still open"},
    TEST_TYPE: {"zh-CN": "测试消息", "en": "test message"},
}


def webhook_type(value: str, locale: Locale) -> str:
    """A webhook's type (a finding type, or one of WEBHOOK_TYPES) in `locale`."""
    return KINDS[value].title[locale] if value in KINDS else say(WEBHOOK_TYPES, value, locale)


def say(names: Names, value: str, locale: Locale) -> str:
    """`value`'s name in `locale`; a value the table lacks (a newer service's) as it is."""
    words = names.get(value)
    return words[locale] if words else value


# A payment's history entry is (at, code, args): what happened, kept as data so that each
# language words it here, and rewording one changes no stored row. The args are JSON scalars.
HistoryCode = Literal[
    "received",  # kind
    "moved_by_calendar",  # due_at (ISO 8601), calendar, year, version
    "moved_by_maintenance",
    "cancelled",  # by: the void or reversal
    "settlement",  # settlement_id, status, and matched_by when a file's line was matched
    "overdue",
    "expired",
]
# Read-only: entries share their arguments where they can (see matcher.core.model.shared_args).
HistoryArgs = Mapping[str, str | int]
Words = Callable[[HistoryArgs, Locale], str]


def _settlement(a: HistoryArgs, locale: Locale) -> str:
    outcome = say(SETTLEMENT_OUTCOMES, str(a["status"]), locale)
    by = a.get("matched_by")
    if locale == "zh-CN":
        return f"银行结算 {a['settlement_id']}：{outcome}" + (f"（按 {by} 匹配）" if by else "")
    return f"settlement {a['settlement_id']}: {outcome}" + (f" (matched by {by})" if by else "")


HISTORY: Mapping[HistoryCode, Words] = {
    "received": lambda a, locale: (
        f"收到{say(PAYMENT_KINDS, str(a['kind']), locale)}交易"
        if locale == "zh-CN"
        else f"{say(PAYMENT_KINDS, str(a['kind']), locale)} received"
    ),
    "moved_by_calendar": lambda a, locale: (
        f"应到账时间改为 {a['due_at']}：已载入 {a['calendar']} {a['year']} 年节假日安排"
        f"（第 {a['version']} 版）"
        if locale == "zh-CN"
        else f"due date moved to {a['due_at']}: calendar {a['calendar']} {a['year']} loaded "
        f"(version {a['version']})"
    ),
    "moved_by_maintenance": lambda a, locale: (
        "银行系统维护，应到账时间顺延"
        if locale == "zh-CN"
        else "due date moved by bank maintenance"
    ),
    "cancelled": lambda a, locale: (
        f"交易已被 {a['by']} 撤销" if locale == "zh-CN" else f"cancelled by {a['by']}"
    ),
    "settlement": _settlement,
    "overdue": lambda a, locale: "逾期未到账" if locale == "zh-CN" else "overdue",
    "expired": lambda a, locale: "逾期 30 天仍未到账，停止跟踪" if locale == "zh-CN" else "expired",
}


def history_text(code: str, args: HistoryArgs, locale: Locale) -> str:
    """A history entry in `locale`; a code this version lacks (a newer matcher's) as it is."""
    words = HISTORY.get(code)  # type: ignore[call-overload]
    return words(args, locale) if words else code

"""The names of the things people read about — payments' kinds and statuses, a bank's settlement
outcomes, payouts' and alerts' statuses — in each language (finding types name themselves in
common.findings). Shown by the evidence PDF and the alerts; the keys are the API's values."""

from __future__ import annotations

from collections.abc import Mapping

from settlewatch.common.money import Locale

__all__ = [
    "ALERT_STATUSES",
    "PAYMENT_KINDS",
    "PAYMENT_STATUSES",
    "PAYOUT_STATUSES",
    "SETTLEMENT_OUTCOMES",
    "Names",
    "say",
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
ALERT_STATUSES: Names = {
    "open": {"zh-CN": "待处理", "en": "open"},
    "acknowledged": {"zh-CN": "已确认", "en": "acknowledged"},
    "resolved": {"zh-CN": "已解决", "en": "resolved"},
}


def say(names: Names, value: str, locale: Locale) -> str:
    """`value`'s name in `locale`; a value the table lacks (a newer service's) as it is."""
    words = names.get(value)
    return words[locale] if words else value

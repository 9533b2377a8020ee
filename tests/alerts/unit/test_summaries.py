"""Merchant summaries: locale, money per currency, times in the merchant's zone (SPEC §6)."""

from __future__ import annotations

import pytest

from settlewatch.alerts.core.summaries import money, summary

OVERDUE = {
    "txn_id": "T123",
    "amount_minor": 12800,
    "currency": "CNY",
    "occurred_at": "2026-11-20T02:02:00+00:00",  # 10:02 in Shanghai
    "settlement_cycle": "T1",
    "due_at": "2026-11-21T16:00:00+00:00",  # midnight in Shanghai: the end of 21 November
    "bank_code": "ICBC",
}


def test_overdue_summary_reads_like_the_spec_example() -> None:
    text = summary(
        "settlement.overdue",
        OVERDUE,
        locale="zh-CN",
        timezone="Asia/Shanghai",
        probable_cause="bank_maintenance",
    )
    assert text == (
        "交易 T123（¥128.00，11月20日 10:02）未按 T+1 到账，应于 11月21日 24:00 前到账；"
        "可能原因：银行系统维护。"
    )


def test_english_summary_uses_the_merchants_time_zone() -> None:
    text = summary(
        "settlement.overdue",
        OVERDUE,
        locale="en",
        timezone="Europe/London",
        probable_cause="unknown",
    )
    assert text == (
        "Transaction T123 (CN¥128.00, Nov 20, 02:02) was not settled T+1; it was due by "
        "Nov 21, 16:00. Probable cause: unknown."
    )


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "shown"),
    [
        (12800, "CNY", "zh-CN", "¥128.00"),
        (5, "CNY", "zh-CN", "¥0.05"),
        (500, "JPY", "zh-CN", "JP¥500"),  # no minor units
        (1234567, "USD", "en", "$12,345.67"),
        (1001, "KWD", "en", "KWD1.001"),  # three minor units
    ],
)
def test_money_uses_the_currencys_minor_units(
    minor: int, currency: str, locale: str, shown: str
) -> None:
    assert money(minor, currency, locale).replace("\xa0", " ") == shown  # type: ignore[arg-type]


def test_failed_payout_names_settlement_and_reason() -> None:
    evidence = OVERDUE | {"settlement_id": "S9", "failure_reason": "账户已冻结"}
    text = summary(
        "settlement.failed",
        evidence,
        locale="zh-CN",
        timezone="Asia/Shanghai",
        probable_cause="bank_incident",
    )
    assert "打款失败（结算单 S9：账户已冻结）" in text and "银行系统故障" in text


def test_amount_mismatch_shows_expected_and_received_net() -> None:
    evidence = OVERDUE | {
        "settlement_id": "S2",
        "expected_net_minor": 12723,
        "settled_net_minor": 12500,
    }
    text = summary(
        "settlement.amount_mismatch",
        evidence,
        locale="en",
        timezone="Asia/Shanghai",
        probable_cause=None,
    )
    assert "expected net CN¥127.23, received CN¥125.00 (settlement S2)" in text


def test_duplicate_names_both_transactions_and_instant_cycle_reads_naturally() -> None:
    duplicate = OVERDUE | {"txn_ids": ["T1", "T2"]}
    text = summary(
        "transaction.duplicate_suspected",
        duplicate,
        locale="zh-CN",
        timezone="Asia/Shanghai",
        probable_cause=None,
    )
    assert text.startswith("疑似重复扣款：交易 T1 / T2（同一张卡，¥128.00")
    instant = OVERDUE | {"settlement_cycle": "instant", "due_at": "2026-11-20T02:07:00+00:00"}
    text = summary(
        "settlement.overdue", instant, locale="en", timezone="Asia/Shanghai", probable_cause=None
    )
    assert "was not settled within its instant SLA; it was due by Nov 20, 10:07" in text

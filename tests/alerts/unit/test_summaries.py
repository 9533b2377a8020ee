"""Merchant summaries: locale, money per currency, times in the merchant's zone (SPEC §6)."""

from __future__ import annotations

import pytest

from settlewatch.alerts.core.summaries import summary
from settlewatch.common.events import MaintenanceWindow
from settlewatch.common.money import money
from tests.matcher.unit.scenario import Run, at, merchant, sale, terminal

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


PAYOUT = {  # as the reconciler writes a payout's evidence
    "payout_id": "file_ab:229",
    "file_id": "file_ab",
    "reference": "TX635094301XT",
    "currency": "CNY",
    "amount_minor": 5_530_807,
    "count": 228,
    "value_date": "2026-11-24",
    "due_on": "2026-11-26",
}
CREDIT = {
    "credit_id": "file_cd:3",
    "account": "CN00DEMO1",
    "entry_ref": "STMT-3",
    "value_date": "2026-11-24",
    "amount_minor": 12,
    "currency": "CNY",
}
FILE_RECORD = {
    "file_id": "file_ef",
    "loc": ["Ntfctn", 0, "Ntry", 0],
    "currency": "SEK",
    "amount_minor": 950,
    "problems": [{"code": "batch_total_mismatch", "msg": "…", "expected": "2", "found": "3"}],
}


@pytest.mark.parametrize(
    ("alert_type", "evidence", "zh", "en"),
    [
        (
            "payout.missing",
            PAYOUT,
            ["TX635094301XT", "¥55,308.07", "228 笔", "未到账"],
            ["TX635094301XT", "¥55,308.07", "228 payments", "2026-11-24"],
        ),
        (
            "payout.short",
            PAYOUT | {"credited_minor": 5_530_607, "difference_minor": 200, "credit": CREDIT},
            ["¥55,306.07", "差额 ¥2.00", "STMT-3"],
            ["¥55,306.07", "difference of CN¥2.00", "STMT-3"],
        ),
        (
            "payout.unexpected_credit",
            CREDIT,
            ["CN00DEMO1", "¥0.12", "STMT-3"],
            ["CN00DEMO1", "¥0.12", "STMT-3"],
        ),
        ("payout.unexpected_debit", CREDIT, ["被扣款 ¥0.12"], ["debited CN¥0.12"]),
        (
            "settlement.batch_total_mismatch",
            FILE_RECORD,
            ["file_ef", "Ntfctn/0/Ntry/0", "应为 2，实为 3"],
            ["expected 2, found 3"],
        ),
        (
            "settlement.duplicate_line",
            FILE_RECORD
            | {
                "problems": FILE_RECORD["problems"] + [{"code": "duplicate_line", "found": "E2E-7"}]
            },
            ["E2E-7", "两次"],
            ["E2E-7", "twice"],
        ),
        (
            "settlement.ambiguous_line",
            FILE_RECORD | {"txn_ids": ["T4", "T5"]},
            ["T4 / T5", "人工确认"],
            ["T4 / T5", "a person"],
        ),
    ],
)
def test_the_settlement_files_findings_read_in_both_locales(
    alert_type: str, evidence: dict[str, object], zh: list[str], en: list[str]
) -> None:
    for locale, wanted in (("zh-CN", zh), ("en", en)):
        text = summary(
            alert_type, evidence, locale=locale, timezone="Asia/Shanghai", probable_cause=None
        )
        assert text != alert_type  # a template exists
        for part in wanted:
            assert part in text, (locale, text)


def test_amount_mismatch_shows_the_fees_charged_and_expected_or_that_no_rule_fits() -> None:
    evidence = OVERDUE | {
        "settlement_id": "S2",
        "expected_net_minor": 998_000,
        "settled_net_minor": 995_000,
        "expected_fee_minor": 2000,
        "charged_fee_minor": 5000,
    }
    zh = summary(
        "settlement.amount_mismatch",
        evidence,
        locale="zh-CN",
        timezone="Asia/Shanghai",
        probable_cause=None,
    )
    assert "（结算单 S2）；手续费实扣 ¥50.00，应为 ¥20.00。" in zh
    unknown = evidence | {"expected_net_minor": None, "expected_fee_minor": None}
    en = summary(
        "settlement.amount_mismatch",
        unknown,
        locale="en",
        timezone="Asia/Shanghai",
        probable_cause=None,
    )
    assert "expected net unknown (no fee rule fits), received CN¥9,950.00 (settlement S2)." in en


def test_an_estimated_deadline_is_said_to_be_estimated() -> None:
    for locale, said in (("zh-CN", "按周一至周五估算"), ("en", "estimated on Monday–Friday")):
        text = summary(
            "settlement.overdue",
            OVERDUE | {"deadline_basis": "estimated"},
            locale=locale,  # type: ignore[arg-type]
            timezone="Asia/Shanghai",
            probable_cause=None,
        )
        assert said in text
        plain = summary(
            "settlement.overdue",
            OVERDUE | {"deadline_basis": "calendar"},
            locale=locale,  # type: ignore[arg-type]
            timezone="Asia/Shanghai",
            probable_cause=None,
        )
        assert said not in plain


def test_terminal_and_maintenance_findings_read_as_sentences_in_both_locales() -> None:
    window = MaintenanceWindow(
        id="mw1",
        bank_code="ICBC",
        starts_at=at("2025-11-21T22:00+08:00"),
        ends_at=at("2025-11-22T06:00+08:00"),
        reason="核心系统升级",
    )
    run = Run().feed(
        merchant(),
        terminal("POS-1", region="北京"),
        sale("S1", "2025-11-20T10:00+08:00", region="上海"),
        window,
    )
    found = {f.type: f for f in run.tick("2025-11-20T10:05+08:00")}
    said = {
        (kind, locale): summary(
            kind, found[kind].evidence, locale=locale, timezone="Asia/Shanghai", probable_cause=None
        )
        for kind in ("terminal.region_jump", "bank.maintenance_scheduled")
        for locale in ("zh-CN", "en")
    }
    assert said["terminal.region_jump", "zh-CN"] == (
        "终端 POS-1 的交易出现在不同地区（北京 → 上海，11月20日 10:00），疑似跳码或终端被移机，"
        "请核实终端所在位置。"
    )
    assert "(北京 → 上海, Nov 20, 10:00)" in said["terminal.region_jump", "en"]
    assert said["bank.maintenance_scheduled", "zh-CN"] == (
        "ICBC 将于 11月21日 22:00 至 11月22日 06:00 进行系统维护（核心系统升级）；"
        "您有 1 笔交易的应到账时间因此顺延。"
    )
    assert "the deadlines of 1 of your payments move" in said["bank.maintenance_scheduled", "en"]

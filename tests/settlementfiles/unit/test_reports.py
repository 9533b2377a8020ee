"""Clearing reports on the real files of ../shared/data (issue 13): Adyen's settlement detail
report and WeChat Pay's bills, columns found by name, summaries checked, no float anywhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from settlewatch.settlementfiles import adyen, wechatpay
from settlewatch.settlementfiles.model import FileRejected, Payout, ReportLine, Summary

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
ADYEN = DATA / "OCA-bank-statement-import_adyen"
WECHAT = DATA / "gunsluo-wechatpay-go"


def adyen_report(path: Path) -> list[ReportLine | Payout]:
    with path.open("rb") as stream:
        return list(adyen.parse(stream))


def test_adyen_batch_380_pays_out_its_net_credits_less_its_net_debits() -> None:
    records = adyen_report(ADYEN / "settlement_detail_report_batch_380.csv")
    lines = [r for r in records if isinstance(r, ReportLine)]
    (payout,) = [r for r in records if isinstance(r, Payout)]
    assert len(lines) + 1 == 228  # 228 rows: the lines and the payout's
    credits = sum(line.net_minor for line in lines if line.net_minor > 0)
    debits = -sum(line.net_minor for line in lines if line.net_minor < 0)
    assert (credits, debits) == (5_643_852, 113_045)  # 56 438.52 and 1 130.45 USD
    assert (payout.amount_minor, payout.currency, payout.batch_id) == (5_530_807, "USD", "380")
    assert payout.problems == () and payout.count == len(lines)
    assert str(payout.value_date) == "2021-01-07"
    assert payout.reference == "TX635094301XT"  # what the bank statement will show


def test_adyen_lines_carry_gross_fee_net_and_both_references() -> None:
    (first, *_) = adyen_report(ADYEN / "settlement_detail_report_batch_380.csv")
    assert isinstance(first, ReportLine)
    assert (first.kind, first.gross_minor, first.fee_minor, first.net_minor) == (
        "sale",
        3145,
        30,
        3115,
    )
    assert (first.txn_id, first.psp_ref) == ("CM1000028854", "1829098024817852")
    assert first.occurred_at is not None and first.occurred_at.utcoffset() is not None


def test_adyen_batch_238_has_other_columns_and_expects_no_payout() -> None:
    records = adyen_report(ADYEN / "settlement_detail_report_batch_238.csv")
    assert not [r for r in records if isinstance(r, Payout)]
    kinds = [r.kind for r in records if isinstance(r, ReportLine)]
    assert kinds == ["balance_transfer", "fee", "balance_transfer"]
    assert sum(r.net_minor for r in records if isinstance(r, ReportLine)) == 0


def test_an_adyen_payout_that_is_not_its_lines_net_is_flagged() -> None:
    source = (ADYEN / "settlement_detail_report_batch_380.csv").read_bytes()
    altered = source.replace(
        b'MerchantPayout,"TX635094301XT batch 380, YOURCOMPANY_ACCOUNT",,,,,USD,55308.07',
        b'MerchantPayout,"TX635094301XT batch 380, YOURCOMPANY_ACCOUNT",,,,,USD,55300.00',
    )
    assert altered != source
    (payout,) = [r for r in adyen.parse(io.BytesIO(altered)) if isinstance(r, Payout)]
    assert [(p.code, p.expected, p.found) for p in payout.problems] == [
        ("summary_mismatch", "5530807", "5530000")
    ]


def test_an_adyen_amount_with_more_decimals_than_its_currency_is_refused_at_its_line() -> None:
    source = (ADYEN / "settlement_detail_report_batch_380.csv").read_bytes()
    altered = source.replace(b",31.45,1,USD,,31.15,", b",31.45,1,USD,,31.155,", 1)
    with pytest.raises(FileRejected) as rejected:
        list(adyen.parse(io.BytesIO(altered)))
    assert rejected.value.issues[0].loc == ("line", 2, "Net Credit (NC)")


def wechat(name: str) -> list[ReportLine | Payout | Summary]:
    with (WECHAT / name).open("rb") as stream:
        return list(wechatpay.parse(stream))


def test_wechat_trade_bill_rows_and_summary_agree() -> None:
    *lines, summary = wechat("tradebill_ALL_sample.csv")
    assert isinstance(summary, Summary) and summary.problems == () and summary.rows == 3
    first = lines[0]
    assert isinstance(first, ReportLine)
    assert (first.kind, first.net_minor, first.currency) == ("sale", 1, "CNY")
    assert (first.txn_id, first.psp_ref) == (
        "S20210128170702357723",
        "4200000925202101284997714292",
    )
    assert first.merchant_id == "1601959334"  # backticks gone
    assert (
        first.occurred_at is not None and first.occurred_at.utcoffset().total_seconds() == 8 * 3600
    )  # type: ignore[union-attr]


def test_wechat_refunds_name_their_sale() -> None:
    *lines, summary = wechat("tradebill_REFUND_sample.csv")
    assert isinstance(summary, Summary) and summary.problems == ()
    refund = lines[0]
    assert isinstance(refund, ReportLine)
    assert (refund.kind, refund.net_minor) == ("refund", -1)
    assert (refund.txn_id, refund.original_txn_id) == (
        "S20210201143320649393",
        "S20210124161554311546",
    )


def test_wechat_fund_flow_summary_claiming_a_missing_row_is_flagged() -> None:
    *lines, summary = wechat("fundflowbill_BASIC_sample.csv")
    assert len(lines) == 2 and isinstance(summary, Summary)
    found = {(p.msg.split("summary's ")[1], p.expected, p.found) for p in summary.problems}
    assert ("资金流水总笔数 (rows)", "3", "2") in found
    assert ("收入笔数", "1", "0") in found


def test_a_truncated_wechat_bill_is_refused() -> None:
    source = (WECHAT / "tradebill_ALL_sample.csv").read_bytes()
    with pytest.raises(FileRejected, match="no summary"):
        list(wechatpay.parse(io.BytesIO(source[: source.index("总交易单数".encode())])))

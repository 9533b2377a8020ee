"""A bank's CSV 对账单 through a column mapping (issue 13): GBK or UTF-8 with BOM, any delimiter,
title lines before the header, a 合计 footer, amounts in 元 or 分."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from settlewatch.settlementfiles import csvmap, formats
from settlewatch.settlementfiles.model import FileRejected, Payout, ReportLine

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"

BILL = """某某银行商户对账单
商户号：M1001,日期：2026-11-25
交易时间|终端号|参考号|授权码|交易类型|交易金额|手续费|清算日期
2026-11-25 10:01:02|T0001|600000000001|A1B2C3|消费|1,280.00|7.68|2026-11-26
2026-11-25 11:15:00|T0001|600000000002|D4E5F6|退货|-80.00|0.00|2026-11-26
合计|2笔||||1,200.00|7.68|
"""

MAPPING = csvmap.FileMapping(
    delimiter="|",
    encoding="gbk",
    header_row=3,
    columns={
        "occurred_at": "交易时间",
        "terminal_id": "终端号",
        "rrn": "参考号",
        "auth_code": "授权码",
        "kind": "交易类型",
        "gross": "交易金额",
        "fee": "手续费",
        "value_date": "清算日期",
    },
    thousands_separator=",",
    kinds={"消费": "sale", "退货": "refund"},
)


def test_a_gbk_bill_with_title_lines_and_a_footer() -> None:
    lines = list(csvmap.parse(io.BytesIO(BILL.encode("gbk")), MAPPING))
    assert [(line.kind, line.gross_minor, line.fee_minor, line.net_minor) for line in lines] == [
        ("sale", 128_000, 768, 127_232),
        ("refund", -8_000, 0, -8_000),
    ]
    sale = lines[0]
    assert (sale.terminal_id, sale.rrn, sale.auth_code) == ("T0001", "600000000001", "A1B2C3")
    assert sale.value_date == date(2026, 11, 26)
    assert sale.occurred_at is not None and sale.occurred_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert sale.loc == ("line", 4)


def test_utf8_with_a_byte_order_mark_and_amounts_in_fen() -> None:
    bill = "\ufeffrrn,amount_fen\n600000000001,12800\n"
    mapping = csvmap.FileMapping(columns={"rrn": "rrn", "net": "amount_fen"}, amount_unit="minor")
    (line,) = csvmap.parse(io.BytesIO(bill.encode()), mapping)
    assert (line.rrn, line.net_minor, line.kind) == ("600000000001", 12800, "sale")


def test_a_missing_column_is_named() -> None:
    mapping = MAPPING.model_copy(update={"columns": {**MAPPING.columns, "stan": "流水号"}})
    with pytest.raises(FileRejected, match="流水号") as rejected:
        list(csvmap.parse(io.BytesIO(BILL.encode("gbk")), mapping))
    assert rejected.value.issues[0].loc == ("line", 3)


@pytest.mark.parametrize(
    ("bad", "column"),
    [("2026/11/25 10:01:02", "交易时间"), ("1,280.005", "交易金额")],
)
def test_a_bad_value_is_refused_at_its_line_and_column(bad: str, column: str) -> None:
    good = "2026-11-25 10:01:02" if column == "交易时间" else "1,280.00"
    bill = BILL.replace(good, bad, 1)
    with pytest.raises(FileRejected) as rejected:
        list(csvmap.parse(io.BytesIO(bill.encode("gbk")), MAPPING))
    assert rejected.value.issues[0].loc == ("line", 4, column)


def test_a_utf8_file_read_as_declared_gbk_is_not_garbled_silently() -> None:
    mapping = MAPPING.model_copy(update={"encoding": "utf-8"})
    with pytest.raises(FileRejected, match="not utf-8"):
        list(csvmap.parse(io.BytesIO(BILL.encode("gbk")), mapping))


def test_a_mapping_without_an_amount_or_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="net, or gross"):
        csvmap.FileMapping(columns={"rrn": "参考号"})
    with pytest.raises(ValidationError):
        csvmap.FileMapping.model_validate({"columns": {"pan": "卡号", "net": "金额"}})


SAMPLES = {
    "genkgo-camt/camt053.v8.xml": "camt.053",
    "genkgo-camt/camt054.v4.xml": "camt.054",
    "viafintech-camt_parser/053/valid_example_stuzza.xml": "camt.053",
    "WoLpH-mt940/mBank/mt942.sta": "mt940",
    "OCA-bank-statement-import_mt940/test-rabo.swi": "mt940",
    "OCA-bank-statement-import_adyen/settlement_detail_report_batch_238.csv": "adyen",
    "gunsluo-wechatpay-go/fundflowbill_BASIC_sample.csv": "wechatpay",
    "gunsluo-wechatpay-go/tradebill_ALL_sample.csv": "wechatpay",
}


@pytest.mark.parametrize(("name", "fmt"), SAMPLES.items())
def test_format_auto_finds_each_format(name: str, fmt: str) -> None:
    with (DATA / name).open("rb") as stream:
        assert formats.detect(stream) == fmt
        assert stream.tell() == 0  # rewound for the parser
        assert list(formats.read(stream, fmt))


def test_a_csv_bill_is_not_guessed() -> None:
    with pytest.raises(FileRejected, match="format=csv:<name>"):
        formats.detect(io.BytesIO(BILL.encode("gbk")))


def test_the_cli_names_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    """`settlewatch import --help` reads the one table of formats the API reads (its help once
    left camt.052 out)."""
    from settlewatch.cli.main import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(["import", "--help"])
    cli_help = " ".join(capsys.readouterr().out.split())
    for fmt in [*formats.FORMATS, "csv:<mapping name>"]:
        assert fmt in cli_help
        assert fmt in formats.HELP


PAYOUT_BILL = """某某银行商户结算对账单
商户号：M1001
流水号|交易时间|参考号|交易类型|交易金额|手续费|清算日期|批次号
|2026-11-25 10:01:02|600000000001|消费|1,280.00|7.68|2026-11-26|B01
|2026-11-25 11:15:00|600000000002|消费|200.00|1.20|2026-11-26|B01
|2026-11-25 12:00:00|600000000003|消费|50.00|0.30|2026-11-26|B02
HK20261126001|2026-11-26 09:00:00||划款|1,471.12|0.00|2026-11-26|B01
合计|4笔||||3,001.12|9.18|
"""
PAYOUT_COLUMNS = {
    "txn_id": "流水号",
    "occurred_at": "交易时间",
    "rrn": "参考号",
    "kind": "交易类型",
    "gross": "交易金额",
    "fee": "手续费",
    "value_date": "清算日期",
    "batch_id": "批次号",
}


def payout_mapping(**changes: object) -> csvmap.FileMapping:
    given = {
        "delimiter": "|",
        "encoding": "gbk",
        "header_row": 3,
        "columns": PAYOUT_COLUMNS,
        "thousands_separator": ",",
        "kinds": {"消费": "sale", "划款": "payout"},
    }
    return csvmap.FileMapping.model_validate(given | changes)


def test_a_gbk_bills_payout_rows_are_payouts_checked_against_their_batch() -> None:
    records = list(csvmap.parse(io.BytesIO(PAYOUT_BILL.encode("gbk")), payout_mapping()))
    lines = [r for r in records if isinstance(r, ReportLine)]
    (payout,) = [r for r in records if isinstance(r, Payout)]
    assert [line.rrn for line in lines] == ["600000000001", "600000000002", "600000000003"]
    assert (payout.batch_id, payout.amount_minor, payout.count) == ("B01", 147_112, 2)
    assert (payout.reference, payout.value_date, payout.loc) == (
        "HK20261126001",
        date(2026, 11, 26),
        ("line", 7),
    )
    assert payout.problems == ()  # 1,272.32 + 198.80 = 1,471.12

    short = PAYOUT_BILL.replace("1,471.12", "1,470.00")
    (wrong,) = [
        r
        for r in csvmap.parse(io.BytesIO(short.encode("gbk")), payout_mapping())
        if isinstance(r, Payout)
    ]
    assert [p.code for p in wrong.problems] == ["summary_mismatch"]
    assert (wrong.problems[0].expected, wrong.problems[0].found) == ("147112", "147000")


def test_by_batch_makes_one_payout_per_batch_and_value_date_from_its_lines() -> None:
    bill = "\n".join(line for line in PAYOUT_BILL.splitlines() if "划款" not in line) + "\n"
    mapping = payout_mapping(kinds={"消费": "sale"}, payouts="by_batch")
    payouts = [
        r for r in csvmap.parse(io.BytesIO(bill.encode("gbk")), mapping) if isinstance(r, Payout)
    ]
    assert [(p.batch_id, p.amount_minor, p.count, p.value_date) for p in payouts] == [
        ("B01", 147_112, 2, date(2026, 11, 26)),
        ("B02", 4_970, 1, date(2026, 11, 26)),
    ]
    assert all(p.reference == p.batch_id and p.currency == "CNY" for p in payouts)


def test_payouts_need_a_batch_column() -> None:
    columns = {k: v for k, v in PAYOUT_COLUMNS.items() if k != "batch_id"}
    with pytest.raises(ValidationError, match="batch_id"):
        payout_mapping(columns=columns, payouts="by_batch")

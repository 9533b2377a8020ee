"""Exports (SPEC §15): everything matching a list's filter, page after page of the API, as CSV
(UTF-8 with a BOM, Chinese headers in zh-CN) or XLSX; a merchant's export holds only its own."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from settlewatch.console.pages import payments
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def five_sales(desk: Desk) -> None:
    for merchant in ("M1", "M2"):
        assert (await desk.api["ingest"].put(f"/v1/merchants/{merchant}", json=PROFILE)).is_success
    sold = datetime.now(UTC) - timedelta(hours=1)
    sales = [
        sale(
            f"E{n}", occurred_at=(sold + timedelta(minutes=n)).isoformat(), card_fingerprint=f"f{n}"
        )
        for n in range(4)
    ] + [sale("E9", merchant_id="M2", occurred_at=sold.isoformat(), amount_minor=1234567)]
    assert (await desk.api["ingest"].post("/v1/transactions", json={"items": sales})).is_success

    async def known() -> bool:
        page = (await desk.api["matcher"].get("/v1/payments", params={"limit": 10})).json()
        return len(page["items"]) == 5

    await eventually(known)


async def test_a_csv_export_holds_every_matching_payment_page_after_page(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    await five_sales(desk)
    monkeypatch.setattr(payments, "EXPORT_PAGE", 2)  # three pages of the API for five rows
    await desk.sign_in(ACQUIRER)
    answer = await desk.browser.get("/payments/export.csv", params={"status": "pending"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="payments.csv"' in answer.headers["content-disposition"]
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["交易时间", "交易号", "商户", "类型", "金额"]
    assert sorted(r[1] for r in rows[1:]) == ["E0", "E1", "E2", "E3", "E9"]
    e9 = next(r for r in rows if r[1] == "E9")
    assert e9[4:7] == ["12345.67", "CNY", "待到账"]

    english = await desk.browser.get("/payments/export.csv", headers={"accept-language": "en"})
    assert english.content.decode("utf-8-sig").startswith("Time,Transaction,Merchant")

    await desk.sign_in(MERCHANT_M1)
    own = await desk.browser.get("/payments/export.csv", params={"merchant_id": "M2"})
    assert sorted(r[1] for r in csv.reader(io.StringIO(own.content.decode("utf-8-sig")))) == [
        "E0",
        "E1",
        "E2",
        "E3",
        "交易号",
    ]


async def test_an_xlsx_export_is_a_workbook_of_every_matching_payment(desk: Desk) -> None:
    await five_sales(desk)
    await desk.sign_in(ACQUIRER)
    answer = await desk.browser.get("/payments/export.xlsx", params={"merchant_id": "M1"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].endswith("spreadsheetml.sheet")
    with zipfile.ZipFile(io.BytesIO(answer.content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 5  # the header and four payments
    assert all(f">E{n}<" in sheet for n in range(4)) and ">E9<" not in sheet
    assert ">交易号<" in sheet

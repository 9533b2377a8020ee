"""The console's Payments (SPEC §15): found by the RRN on a POS slip, a payment's page with its
deadline, timeline and evidence PDF, in zh-CN and en, its times in the merchant's zone; its
findings, the report line and the payout that settled it; a merchant's session sees only its
own; whatever a person typed or another party wrote is shown as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from settlewatch.demo.files import Batch, Line, adyen_report
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")
ENGLISH = {"accept-language": "en-GB,en;q=0.9"}


LONDON = "Europe/London"


async def two_merchants_sales(desk: Desk) -> None:
    """M1's T1 and M2's T2, sold an hour ago; M2 is in London."""
    profiles = {"M1": PROFILE, "M2": PROFILE | {"timezone": LONDON}}
    for merchant, profile in profiles.items():
        assert (await desk.api["ingest"].put(f"/v1/merchants/{merchant}", json=profile)).is_success
    sold = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    sales = [
        sale("T1", occurred_at=sold, rrn="532410283771"),
        sale("T2", merchant_id="M2", occurred_at=sold, rrn="998877665544", amount_minor=1280000),
    ]
    assert (await desk.api["ingest"].post("/v1/transactions", json={"items": sales})).is_success

    async def known() -> bool:
        answers = [await desk.api["matcher"].get(f"/v1/payments/{t}") for t in ("T1", "T2")]
        return all(a.status_code == 200 for a in answers)

    await eventually(known)


async def test_a_payment_is_found_by_its_rrn_and_shows_its_deadline_timeline_and_evidence(
    desk: Desk,
) -> None:
    await two_merchants_sales(desk)
    await desk.sign_in(ACQUIRER)
    found = await desk.browser.get("/payments", params={"rrn": "998877665544"})
    assert found.status_code == 200
    assert 'href="/payments/T2"' in found.text and 'href="/payments/T1"' not in found.text
    assert "¥12,800.00" in found.text and "待到账" in found.text

    page = await desk.browser.get("/payments/T2")
    assert page.status_code == 200
    assert "到账时间" in page.text and "时间线" in page.text and "消费" in page.text
    payment = (await desk.api["matcher"].get("/v1/payments/T2")).json()
    due = datetime.fromisoformat(payment["due_at"]).astimezone(ZoneInfo(LONDON))
    assert f"{due:%Y-%m-%d %H:%M}" in page.text and LONDON in page.text  # the merchant's zone
    assert "这笔交易没有发现问题" in page.text and "尚无银行对账单包含这笔交易" in page.text

    english = await desk.browser.get("/payments/T2", headers=ENGLISH)
    assert (
        "Money due" in english.text and "pending" in english.text and "CN¥12,800.00" in english.text
    )

    pdf = await desk.browser.get("/payments/T2/evidence.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]

    nothing = await desk.browser.get("/payments", params={"rrn": "000000000000"})
    assert "没有符合条件的交易" in nothing.text


async def test_a_merchant_session_never_shows_another_merchants_payment(desk: Desk) -> None:
    await two_merchants_sales(desk)
    await desk.sign_in(MERCHANT_M1)
    own = await desk.browser.get("/payments", params={"merchant_id": "M2"})
    assert own.status_code == 200
    assert 'href="/payments/T1"' in own.text and 'href="/payments/T2"' not in own.text
    assert "998877665544" not in own.text and "<td>M2</td>" not in own.text
    for path in ("/payments/T2", "/payments/T2/evidence.pdf"):
        other = await desk.browser.get(path)
        assert other.status_code == 404
        assert "998877665544" not in other.text and "12,800" not in other.text


async def test_what_a_person_types_is_shown_as_text(desk: Desk) -> None:
    await desk.sign_in(ACQUIRER)
    typed = "<script>alert(1)</script>"
    page = await desk.browser.get("/payments", params={"terminal_id": typed, "from": "yesterday"})
    assert page.status_code == 422
    assert typed not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    refused = await desk.browser.get("/payments", params={"terminal_id": typed})
    assert refused.status_code == 422  # the API named the field; the console shows where
    assert typed not in refused.text and 'aria-invalid="true"' in refused.text


async def test_a_late_payment_shows_its_finding_its_report_line_and_its_payout(desk: Desk) -> None:
    d0 = PROFILE | {"settlement_cycle": "D0"}
    assert (await desk.api["ingest"].put("/v1/merchants/M1", json=d0)).is_success
    sold = datetime.now(UTC) - timedelta(days=3)
    late = sale("LATE1", occurred_at=sold.isoformat())
    assert (await desk.api["ingest"].post("/v1/transactions", json={"items": [late]})).is_success

    async def overdue() -> bool:
        found = await desk.api["alerts"].get("/v1/alerts/settlement.overdue:LATE1")
        return found.status_code == 200

    await eventually(overdue)
    paid = (datetime.now(UTC) - timedelta(days=1)).date()
    report = adyen_report([Batch("601", "PO-601", paid, [Line("LATE1", 12800, 77, sold)])])
    imported = await desk.api["recon"].post("/v1/settlement-files?format=adyen", content=report)
    assert imported.status_code == 202, imported.text
    file_id = imported.json()["file_id"]

    async def settled() -> bool:
        payment = (await desk.api["matcher"].get("/v1/payments/LATE1")).json()
        return bool(payment["status"] == "settled_late")

    await eventually(settled, timeout=40)
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/payments/LATE1")
    assert page.status_code == 200
    assert 'href="/alerts/settlement.overdue%3ALATE1"' in page.text and "逾期未到账" in page.text
    assert f'href="/files/{file_id}"' in page.text and "adyen" in page.text
    assert "PO-601" in page.text and 'href="/payouts/' in page.text
    english = await desk.browser.get("/payments/LATE1", headers=ENGLISH)
    assert "Findings" in english.text and "overdue" in english.text

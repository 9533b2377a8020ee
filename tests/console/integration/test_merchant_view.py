"""A merchant's own view (SPEC §16): its money still to arrive, what is late with the date it was
due and its evidence, its payouts and alerts; it acknowledges its own alerts with a note, and
nothing of another merchant shows anywhere — not a page, an export or an error page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def two_merchants_late(desk: Desk) -> None:
    ingest = desk.api["ingest"]
    for merchant in ("M1", "M2"):
        d0 = PROFILE | {"settlement_cycle": "D0", "name": f"Shop {merchant}"}
        assert (await ingest.put(f"/v1/merchants/{merchant}", json=d0)).is_success
    sold = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    sales = [
        sale("LATE1", occurred_at=sold),
        sale("LATE2", merchant_id="M2", occurred_at=sold, amount_minor=990000),
        sale("NOW1", occurred_at=datetime.now(UTC).isoformat(), card_fingerprint="f2"),
    ]
    assert (await ingest.post("/v1/transactions", json={"items": sales})).status_code == 202

    async def alerted() -> bool:
        answers = [
            await desk.api["alerts"].get(f"/v1/alerts/settlement.overdue:{t}")
            for t in ("LATE1", "LATE2")
        ]
        return all(a.status_code == 200 for a in answers)

    await eventually(alerted)


async def test_a_merchant_sees_its_late_money_and_acknowledges_its_alert(desk: Desk) -> None:
    await two_merchants_late(desk)
    await desk.sign_in(MERCHANT_M1)
    home = await desk.browser.get("/")
    assert home.status_code == 200 and "我的款项" in home.text
    assert (
        'href="/payments/LATE1"' in home.text and 'href="/payments/LATE1/evidence.pdf"' in home.text
    )
    assert "LATE2" not in home.text and "¥9,900.00" not in home.text
    assert 'href="/alerts/settlement.overdue%3ALATE1"' in home.text
    assert 'href="/exceptions"' not in home.text  # the desk's queue is not a merchant's page

    page = await desk.browser.get("/alerts/settlement.overdue:LATE1")
    assert "/alerts/settlement.overdue%3ALATE1/ack" in page.text
    assert "/alerts/settlement.overdue%3ALATE1/resolve" not in page.text
    acked = await desk.browser.post(
        "/alerts/settlement.overdue:LATE1/ack", data={"note": "已联系银行", "csrf": desk.csrf(page)}
    )
    assert acked.status_code == 303
    alert = (await desk.api["alerts"].get("/v1/alerts/settlement.overdue:LATE1")).json()
    assert alert["status"] == "acknowledged" and alert["notes"][-1]["by"] == "merchant:M1"

    # Another merchant's alert, payment and evidence are not there at all for M1.
    for path in (
        "/alerts/settlement.overdue:LATE2",
        "/payments/LATE2",
        "/payments/LATE2/evidence.pdf",
        "/merchants/M2",
    ):
        answer = await desk.browser.get(path)
        assert answer.status_code == 404, path
        assert "Shop M2" not in answer.text and "9,900" not in answer.text  # nothing of M2's
    forged = await desk.browser.post(
        "/alerts/settlement.overdue:LATE2/ack", data={"note": "x", "csrf": desk.csrf(page)}
    )
    assert forged.status_code == 404
    other = (await desk.api["alerts"].get("/v1/alerts/settlement.overdue:LATE2")).json()
    assert other["status"] == "open"
    for export in ("/payments/export.csv", "/alerts/export.csv", "/payouts/export.csv"):
        exported = await desk.browser.get(export, params={"merchant_id": "M2", "status": ""})
        assert exported.status_code in (200, 404) and b"LATE2" not in exported.content

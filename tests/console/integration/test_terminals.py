"""The console's Terminals (SPEC §15): a merchant's books of a business day per terminal; a
merchant sees only its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_days_books_per_terminal_and_in_total(desk: Desk) -> None:
    for merchant in ("M1", "M2"):
        assert (await desk.api["ingest"].put(f"/v1/merchants/{merchant}", json=PROFILE)).is_success
    sold = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    sales = [
        sale("B1", occurred_at=sold, terminal_id="POS-1"),
        sale("B2", occurred_at=sold, terminal_id="POS-2", card_fingerprint="f2", amount_minor=5000),
    ]
    assert (await desk.api["ingest"].post("/v1/transactions", json={"items": sales})).is_success

    async def known() -> bool:
        return (await desk.api["matcher"].get("/v1/payments/B2")).status_code == 200

    await eventually(known)
    day = (await desk.api["matcher"].get("/v1/payments/B2")).json()["business_date"]
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/terminals", params={"merchant_id": "M1", "date": day})
    assert page.status_code == 200
    assert "POS-1" in page.text and "POS-2" in page.text and "合计" in page.text
    assert "¥178.00" in page.text  # the day's sales, 128.00 + 50.00
    assert (
        await desk.browser.get("/terminals", params={"merchant_id": "M1", "date": "x"})
    ).status_code == 422

    await desk.sign_in(MERCHANT_M1)
    other = await desk.browser.get("/terminals", params={"merchant_id": "M2", "date": day})
    assert other.status_code == 200 and "POS-1" in other.text  # its own books, whatever it asked
    assert "M2" not in other.text.split("<main>")[1]

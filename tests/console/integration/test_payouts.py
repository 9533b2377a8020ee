"""The console's Payouts (SPEC §15): what a report said the bank would pay, with its lines."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER

pytestmark = pytest.mark.asyncio(loop_scope="session")
ADYEN_380 = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "data"
    / "OCA-bank-statement-import_adyen"
    / "settlement_detail_report_batch_380.csv"
)


async def test_a_reported_payout_is_listed_and_shows_its_lines(desk: Desk) -> None:
    imported = await desk.api["recon"].post("/v1/settlement-files", content=ADYEN_380.read_bytes())
    assert imported.status_code == 202
    found: list[dict[str, str]] = []

    async def reconciled() -> bool:
        found[:] = (await desk.api["recon"].get("/v1/payouts")).json()["items"]
        return bool(found)

    await eventually(reconciled, timeout=40)
    (payout,) = found
    await desk.sign_in(ACQUIRER)
    listed = await desk.browser.get("/payouts")
    assert listed.status_code == 200 and "待到账" in listed.text and "US$" in listed.text
    page = await desk.browser.get(f"/payouts/{payout['payout_id']}")
    assert page.status_code == 200
    assert page.text.count("<tr>") >= 200  # its lines (227 in the report)
    assert "对账单上尚无对应入账" in page.text
    exported = await desk.browser.get("/payouts/export.csv", params={"status": "expected"})
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["划款", "状态", "商户"]
    assert [r[0] for r in rows[1:]] == [payout["payout_id"]]
    refused = await desk.browser.get("/payouts/export.csv", params={"status": "lost"})
    assert refused.status_code == 422 and "status" in refused.text  # a page, not a broken file

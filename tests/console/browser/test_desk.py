"""The desk in a browser (issue 30): sign in, find a payment by the RRN on a POS slip, download
its evidence PDF, switch to English; a read-only token changes nothing from the console."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser.conftest import dev_token, sign_in
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def a_sale_on_a_slip(stack: RunningStack, merchant: str, txn_id: str, rrn: str) -> None:
    acquirer = {"authorization": f"Bearer {dev_token(stack)}"}
    profile = {k: v for k, v in PROFILE.items() if k != "webhook"}
    sold = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    with httpx.Client(headers=acquirer, timeout=10) as http:
        assert http.put(f"{stack.url('ingest')}/v1/merchants/{merchant}", json=profile).is_success
        sales = [
            sale(txn_id, merchant_id=merchant, rrn=rrn, occurred_at=sold, amount_minor=1280000)
        ]
        posted = http.post(f"{stack.url('ingest')}/v1/transactions", json={"items": sales})
        assert posted.status_code == 202
        deadline = time.monotonic() + 30
        while http.get(f"{stack.url('matcher')}/v1/payments/{txn_id}").status_code != 200:
            assert time.monotonic() < deadline, "the matcher never stored the sale"
            time.sleep(0.2)


def test_a_payment_found_by_the_rrn_on_a_slip_and_its_evidence_downloaded(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    a_sale_on_a_slip(stack, "SLIP1", "SLIP-T1", "660011223344")
    sign_in(page, stack, dev_token(stack))
    expect(page.get_by_role("heading", name="总览")).to_be_visible()
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    page.get_by_role("navigation").get_by_role("link", name="交易").click()
    expect(page.get_by_role("heading", name="交易")).to_be_visible()

    page.get_by_label("参考号 RRN（见签购单）").fill("660011223344")
    page.get_by_role("button", name="查询").click()
    row = page.get_by_role("row").filter(has_text="SLIP-T1")
    expect(row).to_contain_text("¥12,800.00")
    expect(row).to_contain_text("待到账")
    page.screenshot(path=tmp_path / "payments.png", full_page=True)
    row.get_by_role("link", name="SLIP-T1").click()

    expect(page.get_by_role("heading", name="交易 SLIP-T1")).to_be_visible()
    expect(page.get_by_text("到账时间")).to_be_visible()
    page.screenshot(path=tmp_path / "payment.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="证据材料（PDF）").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "settlewatch-evidence-SLIP-T1.pdf"
    assert saved.read_bytes().startswith(b"%PDF")

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Payment SLIP-T1")).to_be_visible()
    expect(page.get_by_text("CN¥12,800.00").first).to_be_visible()
    page.get_by_role("link", name="Payments").first.click()
    expect(page.get_by_role("heading", name="Payments")).to_be_visible()  # English stays

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{stack.url('console')}/payments/SLIP-T1")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # no session, no page

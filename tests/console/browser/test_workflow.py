"""The merchant's view and the desk's workflow in a browser (issue 31): a merchant signs in and
sees only its own money, a late payment with its due date and its evidence PDF; a write-off
over the limit waits for a second person, and its proposer cannot approve it; an exception
given to a person is found by owner and age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser.conftest import dev_token, sign_in
from tests.console.browser.test_exceptions import MAPPING, twins_and_a_file, until
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def acquirer(stack: RunningStack) -> httpx.Client:
    return httpx.Client(headers={"authorization": f"Bearer {dev_token(stack)}"}, timeout=10)


def issue(http: httpx.Client, stack: RunningStack, scope: str) -> str:
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    issued = http.post(
        f"{stack.url('ingest')}/v1/tokens",
        json={"scope": scope, "description": f"browser {scope}", "expires_at": expires},
    )
    assert issued.status_code == 201, issued.text
    token: str = issued.json()["token"]
    return token


def test_a_merchant_sees_only_its_own_money_and_a_late_payments_evidence(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    http = acquirer(stack)
    ingest = stack.url("ingest")
    sold = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    for merchant, amount in (("MV1", 12800), ("MV2", 990000)):
        profile = {k: v for k, v in PROFILE.items() if k != "webhook"}
        profile |= {"settlement_cycle": "D0", "name": f"{merchant} 面馆"}
        assert http.put(f"{ingest}/v1/merchants/{merchant}", json=profile).is_success
        late = sale(f"{merchant}-LATE", merchant_id=merchant, occurred_at=sold, amount_minor=amount)
        assert http.post(f"{ingest}/v1/transactions", json={"items": [late]}).status_code == 202
    until(
        lambda: all(
            http.get(f"{stack.url('matcher')}/v1/payments/{m}-LATE").json().get("status")
            == "overdue"
            for m in ("MV1", "MV2")
        ),
        timeout=60,
    )
    sign_in(page, stack, issue(http, stack, "merchant:MV1"))
    expect(page.get_by_role("heading", name="我的款项")).to_be_visible()
    late = page.get_by_role("row").filter(has_text="MV1-LATE")
    expect(late).to_contain_text("¥128.00")
    expect(page.get_by_text("MV2-LATE")).to_have_count(0)
    expect(page.get_by_text("¥9,900.00")).to_have_count(0)
    page.screenshot(path=tmp_path / "my-money.png", full_page=True)
    late.get_by_role("link", name="MV1-LATE").click()
    expect(page.get_by_role("heading", name="交易 MV1-LATE")).to_be_visible()
    expect(page.get_by_text("到账时间")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="证据材料（PDF）").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    page.goto(f"{stack.url('console')}/payments/MV2-LATE")
    expect(page.get_by_text("MV2 面馆")).to_have_count(0)
    expect(page.get_by_text("¥9,900.00")).to_have_count(0)


def test_a_large_write_off_waits_for_a_second_person(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    http = acquirer(stack)
    recon = stack.url("recon")
    assert http.put(f"{recon}/v1/file-mappings/bank", json=MAPPING).is_success
    day = datetime.now(UTC).date().isoformat()
    bill = f"rrn,auth,gross,fee,day\nBIG4EYES,X,50000.00,0,{day}\n"
    imported = http.post(f"{recon}/v1/settlement-files?format=csv:bank", content=bill.encode())
    big = f"line:{imported.json()['file_id']}:0"
    until(lambda: http.get(f"{recon}/v1/exceptions/{big}").status_code == 200)

    sign_in(page, stack, dev_token(stack))
    page.goto(f"{stack.url('console')}/exceptions/{big}")
    page.locator("form").filter(has_text="原因").first.get_by_label("原因").fill("银行差错，已退款")
    page.get_by_role("button", name="核销").click()
    expect(page.get_by_role("status")).to_contain_text("需由另一人复核")
    expect(page.get_by_text("此核销由您提交，须由另一人复核。")).to_be_visible()
    expect(page.get_by_role("button", name="复核通过")).to_have_count(0)
    assert http.get(f"{recon}/v1/exceptions/{big}").json()["status"] == "pending_approval"
    page.get_by_role("button", name="退出").click()

    sign_in(page, stack, issue(http, stack, "acquirer"))
    page.goto(f"{stack.url('console')}/exceptions")
    page.get_by_role("link", name="待我复核的核销").click()
    page.get_by_role("link", name=big).click()
    page.get_by_label("备注").fill("已核对银行回单")
    page.get_by_role("button", name="复核通过").click()
    expect(page.get_by_role("status")).to_have_text("复核通过，已核销。")
    page.screenshot(path=tmp_path / "approved.png", full_page=True)
    assert http.get(f"{recon}/v1/exceptions/{big}").json()["status"] == "written_off"


def test_an_exception_given_to_a_person_is_found_by_owner_and_age(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    http, file_id = twins_and_a_file(stack, "OWN1")
    sign_in(page, stack, dev_token(stack))
    page.goto(f"{stack.url('console')}/exceptions/line:{file_id}:1")
    page.get_by_label("分派给").fill("李伟")
    page.get_by_role("button", name="分派").click()
    expect(page.get_by_role("status")).to_have_text("已分派。")
    page.goto(f"{stack.url('console')}/exceptions")
    page.get_by_label("处理人").fill("李伟")
    page.get_by_label("账龄（天）").select_option("0-1")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("link", name=f"line:{file_id}:1")).to_be_visible()
    expect(page.get_by_role("link", name=f"line:{file_id}:2")).to_have_count(0)
    page.screenshot(path=tmp_path / "assigned.png", full_page=True)
    page.get_by_label("账龄（天）").select_option(">30")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("link", name=f"line:{file_id}:1")).to_have_count(0)
    item = http.get(f"{stack.url('recon')}/v1/exceptions/line:{file_id}:1").json()
    assert item["assignee"] == "李伟"

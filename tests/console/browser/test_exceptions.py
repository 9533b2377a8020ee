"""The desk's exceptions in a browser (issue 30): an ambiguous line resolved by choosing its
candidate (the payment is then settled); every exception matching a filter written off with a
reason; a read-only token sees no write control."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.console.browser.conftest import dev_token, sign_in
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e
MAPPING = {
    "columns": {
        "rrn": "rrn",
        "auth_code": "auth",
        "gross": "gross",
        "fee": "fee",
        "value_date": "day",
    }
}


def until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def twins_and_a_file(stack: RunningStack, merchant: str) -> tuple[httpx.Client, str]:
    """Two sales of `merchant` no rule tells apart, and a file with a line that is either and
    two lines of no payment; the acquirer's client and the file's id, its exceptions open."""
    http = httpx.Client(headers={"authorization": f"Bearer {dev_token(stack)}"}, timeout=10)
    ingest, recon = stack.url("ingest"), stack.url("recon")
    profile = {k: v for k, v in PROFILE.items() if k != "webhook"}
    assert http.put(f"{ingest}/v1/merchants/{merchant}", json=profile).is_success
    now = datetime.now(UTC).isoformat()
    rrn = f"{merchant[-4:]}44"
    twins = [
        sale(f"{merchant}-A", merchant_id=merchant, rrn=rrn, auth_code="A4", occurred_at=now),
        sale(
            f"{merchant}-B",
            merchant_id=merchant,
            rrn=rrn,
            auth_code="A4",
            occurred_at=now,
            terminal_id="POS-2",
            card_fingerprint="fp-b",
        ),
    ]
    assert http.post(f"{ingest}/v1/transactions", json={"items": twins}).status_code == 202
    until(
        lambda: all(
            http.get(f"{stack.url('matcher')}/v1/payments/{t['txn_id']}").status_code == 200
            for t in twins
        )
    )
    assert http.put(f"{recon}/v1/file-mappings/bank", json=MAPPING).is_success
    day = now[:10]
    bill = (
        f"rrn,auth,gross,fee,day\n{rrn},A4,128.00,0.77,{day}\n"
        f"{merchant}1,X,1.00,0,{day}\n{merchant}2,X,2.00,0,{day}\n"
    )
    imported = http.post(f"{recon}/v1/settlement-files?format=csv:bank", content=bill.encode())
    assert imported.status_code == 202, imported.text
    file_id: str = imported.json()["file_id"]
    until(
        lambda: (
            len(http.get(f"{recon}/v1/exceptions", params={"file_id": file_id}).json()["items"])
            == 3
        )
    )
    return http, file_id


def test_an_ambiguous_line_is_resolved_by_choosing_its_candidate(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    http, file_id = twins_and_a_file(stack, "AMB1")
    sign_in(page, stack, dev_token(stack))
    page.get_by_role("link", name="差错处理").click()
    page.get_by_label("文件").fill(file_id)
    page.get_by_role("button", name="查询").click()
    page.get_by_role("link", name=f"line:{file_id}:0").click()

    expect(page.get_by_role("heading", name="候选交易")).to_be_visible()
    candidate = page.locator("section.candidate").filter(has_text="AMB1-B")
    expect(candidate.locator("tr.agrees")).to_have_count(2)  # amount and RRN
    page.screenshot(path=tmp_path / "candidates.png", full_page=True)
    candidate.get_by_role("button", name="匹配到 AMB1-B").click()
    expect(page.get_by_role("status")).to_have_text("已匹配。")
    until(
        lambda: http.get(f"{stack.url('matcher')}/v1/payments/AMB1-B").json()["status"] == "settled"
    )
    assert http.get(f"{stack.url('matcher')}/v1/payments/AMB1-A").json()["status"] == "pending"


def test_every_exception_matching_a_filter_is_written_off_with_a_reason(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    http, file_id = twins_and_a_file(stack, "OFF1")
    sign_in(page, stack, dev_token(stack))
    page.goto(
        f"{stack.url('console')}/exceptions?file_id={file_id}&kind=unmatched_line&status=open"
    )
    expect(page.get_by_role("row")).to_have_count(3)  # the header and two lines
    page.get_by_label("操作").select_option("write-off")
    page.get_by_label("全部符合筛选条件的差错（最多 10000 条）").check()
    page.get_by_role("button", name="执行").click()
    expect(page.get_by_role("alert")).to_have_text("请填写原因。")  # nothing was written off

    page.get_by_label("全部符合筛选条件的差错（最多 10000 条）").check()
    page.get_by_label("原因").fill("测试数据，银行已确认")
    page.get_by_role("button", name="执行").click()
    expect(page.get_by_role("status")).to_have_text("已处理 2 条差错。")
    page.screenshot(path=tmp_path / "written-off.png", full_page=True)
    recon = stack.url("recon")
    for seq in (1, 2):
        written = http.get(f"{recon}/v1/exceptions/line:{file_id}:{seq}").json()
        assert written["status"] == "written_off"
        assert written["history"][-1]["note"] == "测试数据，银行已确认"
    assert http.get(f"{recon}/v1/exceptions/line:{file_id}:0").json()["status"] == "open"


def test_a_read_only_token_sees_no_write_control(stack: RunningStack, page: Page) -> None:
    http, file_id = twins_and_a_file(stack, "RO1")
    issued = http.post(
        f"{stack.url('ingest')}/v1/tokens", json={"scope": "acquirer:read", "description": "audit"}
    )
    sign_in(page, stack, issued.json()["token"])
    page.goto(f"{stack.url('console')}/exceptions?file_id={file_id}")
    expect(page.get_by_role("row")).to_have_count(4)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("button", name="执行")).to_have_count(0)
    page.get_by_role("link", name=f"line:{file_id}:0").click()
    expect(page.get_by_role("heading", name="候选交易")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(1)  # signing out, nothing else
    expect(page.get_by_role("button", name="退出")).to_be_visible()

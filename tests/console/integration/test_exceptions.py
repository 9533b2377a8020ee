"""The console's Exceptions (SPEC §15): an ambiguous line beside its candidates, resolved by
choosing one (the payment is then settled); a write-off of everything matching a filter, with its
reason; a read-only token sees no control and a forged form from it changes nothing; what a bank
wrote is shown as text."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from settlewatch.common.tokens import digest, token_id
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCRIPT = "<script>alert(1)</script>"
BILL = """rrn,auth,gross,fee,value_date,batch
R4,A4,128.00,0.77,{day},B1
R8,A8,128.00,0.77,{day},B1
R9,A9,99.00,0.77,{day},{script}
"""
MAPPING = {
    "columns": {
        "rrn": "rrn",
        "auth_code": "auth",
        "gross": "gross",
        "fee": "fee",
        "value_date": "value_date",
        "batch_id": "batch",
    }
}


async def a_days_file(desk: Desk) -> str:
    """Two sales no rule can tell apart (T4, T5) and a file whose first line is either, then
    two lines of no payment; the file's id once its exceptions are open."""
    ingest, recon = desk.api["ingest"], desk.api["recon"]
    assert (await ingest.put("/v1/merchants/M1", json=PROFILE)).is_success
    now = datetime.now(UTC)
    twins = [
        sale(
            t,
            rrn="R4",
            auth_code="A4",
            card_fingerprint=t,
            occurred_at=now.isoformat(),
            terminal_id=p,
        )
        for t, p in (("T4", "P2"), ("T5", "P3"))
    ]
    assert (await ingest.post("/v1/transactions", json={"items": twins})).status_code == 202

    async def watched() -> bool:
        answers = [await desk.api["matcher"].get(f"/v1/payments/{t}") for t in ("T4", "T5")]
        return all(a.status_code == 200 for a in answers)

    await eventually(watched)
    assert (await recon.put("/v1/file-mappings/bank", json=MAPPING)).is_success
    bill = BILL.format(day=now.date().isoformat(), script=SCRIPT).encode()
    imported = await recon.post("/v1/settlement-files?format=csv:bank", content=bill)
    assert imported.status_code == 202, imported.text
    file_id: str = imported.json()["file_id"]

    async def opened() -> bool:
        answer = await recon.get("/v1/exceptions", params={"file_id": file_id})
        return len(answer.json()["items"]) == 3

    await eventually(opened)
    return file_id


async def exception(desk: Desk, exception_id: str) -> dict[str, Any]:
    answer = await desk.api["recon"].get(f"/v1/exceptions/{exception_id}")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


async def test_an_ambiguous_line_is_resolved_by_choosing_its_candidate(desk: Desk) -> None:
    file_id = await a_days_file(desk)
    await desk.sign_in(ACQUIRER)
    queue = await desk.browser.get("/exceptions", params={"file_id": file_id})
    assert queue.status_code == 200
    assert "多笔可匹配的对账明细" in queue.text and "未匹配的对账明细" in queue.text

    ambiguous = f"line:{file_id}:0"
    page = await desk.browser.get(f"/exceptions/{ambiguous}")
    assert page.status_code == 200
    assert "候选交易" in page.text and 'href="/payments/T4"' in page.text
    assert 'href="/payments/T5"' in page.text
    assert page.text.count('class="agrees"') >= 4  # amount and RRN, for each of the two

    chosen = await desk.browser.post(
        f"/exceptions/{ambiguous}/match", data={"txn_id": "T5", "csrf": desk.csrf(page)}
    )
    assert chosen.status_code == 303
    assert (await exception(desk, ambiguous))["status"] == "matched"
    history = (await exception(desk, ambiguous))["history"]
    assert history[-1]["by"] == f"token:{token_id(digest(ACQUIRER))}"

    async def settled() -> bool:
        payment = (await desk.api["matcher"].get("/v1/payments/T5")).json()
        return bool(payment["status"] == "settled")

    await eventually(settled)
    after = await desk.browser.get(chosen.headers["location"])
    assert "已匹配" in after.text and "人工匹配" in after.text


async def test_every_exception_matching_a_filter_is_written_off_with_its_reason(desk: Desk) -> None:
    file_id = await a_days_file(desk)
    await desk.sign_in(ACQUIRER)
    shown = {"file_id": file_id, "kind": "unmatched_line", "status": "open"}
    page = await desk.browser.get("/exceptions", params=shown)
    # The action's form is sent to the list's own filter, as the page wrote it.
    found = re.search(r'<form method="post" action="(/exceptions/decide[^"]*)"', page.text)
    assert found is not None
    decide = html.unescape(found[1])
    form = {"csrf": desk.csrf(page), "action": "write-off", "everything": "true"}

    no_reason = await desk.browser.post(decide, data=form | {"reason": " "})
    assert no_reason.status_code == 422 and "请填写原因" in no_reason.text
    no_csrf = await desk.browser.post(
        decide, data={k: v for k, v in form.items() if k != "csrf"} | {"reason": "x"}
    )
    assert no_csrf.status_code == 403
    for seq in (1, 2):
        assert (await exception(desk, f"line:{file_id}:{seq}"))["status"] == "open"

    done = await desk.browser.post(decide, data=form | {"reason": "bank's test lines"})
    assert done.status_code == 303 and "done=2" in done.headers["location"]
    for seq in (1, 2):
        written = await exception(desk, f"line:{file_id}:{seq}")
        assert written["status"] == "written_off"
        assert written["history"][-1]["note"] == "bank's test lines"
    assert (await exception(desk, f"line:{file_id}:0"))["status"] == "open"  # not unmatched
    listed = await desk.browser.get(done.headers["location"])
    assert "已处理 2 条差错" in listed.text


async def test_a_read_only_token_sees_no_control_and_a_forged_form_changes_nothing(
    desk: Desk,
) -> None:
    file_id = await a_days_file(desk)
    issued = await desk.api["ingest"].post(
        "/v1/tokens", json={"scope": "acquirer:read", "description": "auditor"}
    )
    await desk.sign_in(issued.json()["token"])
    queue = await desk.browser.get("/exceptions", params={"file_id": file_id})
    page = await desk.browser.get(f"/exceptions/line:{file_id}:0")
    for shown in (queue, page):
        assert shown.status_code == 200
        assert not re.search(r'<form method="post" action="/exceptions', shown.text)
        assert 'type="checkbox"' not in shown.text
    forged = await desk.browser.post(
        "/exceptions/decide",
        data={
            "csrf": desk.csrf(queue),
            "action": "write-off",
            "reason": "x",
            "selected": [f"line:{file_id}:1"],
        },
    )
    assert forged.status_code == 403 and "may only read" in forged.text
    assert (await exception(desk, f"line:{file_id}:1"))["status"] == "open"


async def test_what_a_bank_wrote_is_shown_as_text(desk: Desk) -> None:
    file_id = await a_days_file(desk)
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get(f"/exceptions/line:{file_id}:2")
    assert page.status_code == 200
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_exceptions_are_given_to_a_person_and_found_by_owner_and_age(desk: Desk) -> None:
    file_id = await a_days_file(desk)
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/exceptions", params={"file_id": file_id})
    found = re.search(r'<form method="post" action="(/exceptions/decide[^"]*)"', page.text)
    assert found is not None
    given = await desk.browser.post(
        html.unescape(found[1]),
        data={
            "csrf": desk.csrf(page),
            "action": "assign",
            "assignee": "li.wei",
            "everything": "true",
        },
    )
    assert given.status_code == 303 and "done=3" in given.headers["location"]
    owned = await desk.browser.get("/exceptions", params={"assignee": "li.wei", "age": "0-1"})
    assert owned.text.count(f'href="/exceptions/line%3A{file_id}') == 3

    one = f"line:{file_id}:1"
    item = await desk.browser.get(f"/exceptions/{one}")
    moved = await desk.browser.post(
        f"/exceptions/{one}/assign", data={"csrf": desk.csrf(item), "assignee": "王芳"}
    )
    assert moved.status_code == 303
    shown = await desk.browser.get(moved.headers["location"])
    assert "已分派" in shown.text and "分派给" in shown.text and "王芳" in shown.text
    assert (await exception(desk, one))["assignee"] == "王芳"
    assert (await exception(desk, one))["history"][-1]["by"].startswith("token:")
    left = await desk.browser.get("/exceptions", params={"assignee": "li.wei"})
    assert left.text.count(f'href="/exceptions/line%3A{file_id}') == 2
    older = await desk.browser.get("/exceptions", params={"assignee": "li.wei", "age": ">30"})
    assert f'href="/exceptions/line%3A{file_id}' not in older.text


async def test_a_large_write_off_waits_for_a_second_person_who_is_not_its_proposer(
    desk: Desk,
) -> None:
    recon = desk.api["recon"]
    assert (await recon.put("/v1/file-mappings/bank", json=MAPPING)).is_success
    day = datetime.now(UTC).date().isoformat()
    bill = f"rrn,auth,gross,fee,value_date,batch\nRBIG,ABIG,50000.00,0,{day},B9\n".encode()
    imported = await recon.post("/v1/settlement-files?format=csv:bank", content=bill)
    big = f"line:{imported.json()['file_id']}:0"

    async def opened() -> bool:
        return (await recon.get(f"/v1/exceptions/{big}")).status_code == 200

    await eventually(opened)
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get(f"/exceptions/{big}")
    proposed = await desk.browser.post(
        f"/exceptions/{big}/decide",
        data={"csrf": desk.csrf(page), "action": "write-off", "reason": "bank error, refunded"},
    )
    assert proposed.status_code == 303 and "done=propose" in proposed.headers["location"]
    assert (await exception(desk, big))["status"] == "pending_approval"
    mine = await desk.browser.get(f"/exceptions/{big}")
    assert "此核销由您提交" in mine.text and f"/exceptions/{big}/approve" not in mine.text
    forged = await desk.browser.post(f"/exceptions/{big}/approve", data={"csrf": desk.csrf(mine)})
    assert forged.status_code == 422 and "another person" in forged.text  # recon refused it
    assert (await exception(desk, big))["status"] == "pending_approval"

    issued = await desk.api["ingest"].post(
        "/v1/tokens", json={"scope": "acquirer", "description": "wang.fang"}
    )
    await desk.sign_in(issued.json()["token"])
    queue = await desk.browser.get("/exceptions?status=pending_approval&approvable=true")
    assert f'href="/exceptions/{big.replace(":", "%3A")}"' in queue.text
    theirs = await desk.browser.get(f"/exceptions/{big}")
    approved = await desk.browser.post(
        f"/exceptions/{big}/approve", data={"csrf": desk.csrf(theirs), "note": "checked"}
    )
    assert approved.status_code == 303 and "done=approve" in approved.headers["location"]
    done = await exception(desk, big)
    assert done["status"] == "written_off"
    second = f"token:{issued.json()['token_id']}"
    assert [(h["action"], h["by"]) for h in done["history"][-2:]] == [
        ("propose", f"token:{token_id(digest(ACQUIRER))}"),
        ("approve", second),
    ]

"""Four eyes on write-offs (SPEC §16): above SETTLEWATCH_WRITE_OFF_APPROVAL a write-off waits
(pending_approval) until another token approves it; the proposer's own approval is refused; a
rejection sends it back to the queue; each step in the exception's history, by whom."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from settlewatch.common.config import IngestSettings, ReconSettings
from settlewatch.common.tokens import digest, token_id
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.recon.app import create_app as create_recon
from tests.ingest.integration.conftest import ACQUIRER, PROFILE
from tests.recon.integration.conftest import Gateway
from tests.recon.integration.test_assignment import three_unmatched_lines

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def desk(
    ingest_settings: IngestSettings, recon_settings: ReconSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """An acquirer's client of ingest and a recon whose write-offs above ¥1.00 need approval."""
    approving = recon_settings.model_copy(update={"write_off_approval": "CNY=100"})
    ingest, recon = create_ingest(ingest_settings), create_recon(approving)
    async with ingest.router.lifespan_context(ingest), recon.router.lifespan_context(recon):
        headers = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(
            transport=Gateway(ingest, recon), base_url="http://sw", headers=headers
        ) as http:
            assert (await http.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
            yield http


async def status(desk: httpx.AsyncClient, exception_id: str) -> dict[str, object]:
    item: dict[str, object] = (await desk.get(f"/v1/exceptions/{exception_id}")).json()
    return item


async def test_a_write_off_over_the_limit_waits_for_a_second_person(
    desk: httpx.AsyncClient,
) -> None:
    small, over, other = await three_unmatched_lines(desk)  # ¥1.00, ¥1.01, ¥1.02
    proposed = await desk.post(
        "/v1/exceptions/write-off",
        json={
            "by": "ops:li.wei",
            "reason": "bank's test lines",
            "exception_ids": [small, over, other],
        },
    )
    assert proposed.status_code == 202 and proposed.json() == {"pending_approval": [over, other]}
    assert (await status(desk, small))["status"] == "written_off"  # within the limit: alone
    waiting = await status(desk, over)
    assert waiting["status"] == "pending_approval"
    assert waiting["proposed_by"] == token_id(digest(ACQUIRER))

    own = await desk.post(f"/v1/exceptions/{over}/approve", json={"by": "ops:li.wei"})
    assert own.status_code == 403 and own.json()["errors"][0]["loc"] == ["path", "exception_id"]
    assert (await status(desk, over))["status"] == "pending_approval"
    mine = await desk.get("/v1/exceptions", params={"approvable": "true"})
    assert mine.json()["items"] == []  # nothing this token may approve

    issued = await desk.post("/v1/tokens", json={"scope": "acquirer", "description": "wang.fang"})
    second = {"authorization": f"Bearer {issued.json()['token']}"}
    theirs = await desk.get("/v1/exceptions", params={"approvable": "true"}, headers=second)
    assert sorted(i["exception_id"] for i in theirs.json()["items"]) == [over, other]
    approved = await desk.post(
        f"/v1/exceptions/{over}/approve", json={"by": "ops:wang.fang", "note": "ok"}, headers=second
    )
    assert approved.status_code == 204
    done = await status(desk, over)
    assert done["status"] == "written_off"
    history = done["history"]
    assert isinstance(history, list)
    assert [(h["action"], h["by"]) for h in history[-2:]] == [
        ("propose", "ops:li.wei"),
        ("approve", "ops:wang.fang"),
    ]

    # The proposer may take a proposal back; it is open again, to be decided anew.
    rejected = await desk.post(
        f"/v1/exceptions/{other}/reject", json={"by": "ops:li.wei", "reason": "not a test line"}
    )
    assert rejected.status_code == 204
    back = await status(desk, other)
    assert back["status"] == "open" and back["proposed_by"] is None
    again = await desk.post(f"/v1/exceptions/{other}/approve", json={"by": "x"}, headers=second)
    assert again.status_code == 409  # nothing to approve any more

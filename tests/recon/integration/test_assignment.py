"""Owners for the desk's open exceptions (SPEC §16): given to a person by name, one or many at
once (all or nothing), taken back, filtered by assignee, each change in the exception's history;
only an open exception is given, and only by an acquirer token."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.ingest.integration.conftest import MERCHANT_M1

pytestmark = pytest.mark.asyncio(loop_scope="session")
MAPPING = {
    "columns": {
        "rrn": "rrn",
        "auth_code": "auth",
        "gross": "gross",
        "fee": "fee",
        "value_date": "day",
    }
}


async def three_unmatched_lines(client: httpx.AsyncClient) -> list[str]:
    assert (await client.put("/v1/file-mappings/bank", json=MAPPING)).is_success
    day = datetime.now(UTC).date().isoformat()
    rows = "".join(f"NOBODY{n},A{n},1.0{n},0,{day}\n" for n in range(3))
    imported = await client.post(
        "/v1/settlement-files?format=csv:bank", content=f"rrn,auth,gross,fee,day\n{rows}".encode()
    )
    assert imported.status_code == 202, imported.text
    file_id = imported.json()["file_id"]
    deadline = time.monotonic() + 30
    while True:
        items = (await client.get("/v1/exceptions", params={"file_id": file_id})).json()["items"]
        if len(items) == 3:
            return sorted(i["exception_id"] for i in items)
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.2)


async def mine(client: httpx.AsyncClient, assignee: str) -> list[str]:
    answer = await client.get("/v1/exceptions", params={"assignee": assignee})
    return sorted(i["exception_id"] for i in answer.json()["items"])


async def test_exceptions_are_given_to_people_taken_back_and_found_by_owner(
    client: httpx.AsyncClient,
) -> None:
    first, second, third = await three_unmatched_lines(client)
    both = {"by": "ops:zhang", "assignee": "li.wei", "exception_ids": [first, second]}
    assert (await client.post("/v1/exceptions/assign", json=both)).status_code == 204
    one = {"by": "ops:zhang", "assignee": "王芳"}
    assert (await client.post(f"/v1/exceptions/{third}/assign", json=one)).status_code == 204
    assert await mine(client, "li.wei") == [first, second]
    assert await mine(client, "王芳") == [third]

    taken = {"by": "li.wei", "assignee": None}
    assert (await client.post(f"/v1/exceptions/{second}/assign", json=taken)).status_code == 204
    assert await mine(client, "li.wei") == [first]
    item = (await client.get(f"/v1/exceptions/{second}")).json()
    assert item["assignee"] is None
    assert [(h["action"], h["by"], h["note"]) for h in item["history"][-2:]] == [
        ("assign", "ops:zhang", "li.wei"),
        ("unassign", "li.wei", ""),
    ]

    # Only an open exception is given; a bulk call naming a closed one changes none of them.
    off = {"by": "ops:zhang", "reason": "bank's test line"}
    assert (await client.post(f"/v1/exceptions/{first}/write-off", json=off)).status_code == 204
    refused = await client.post(
        "/v1/exceptions/assign",
        json={"by": "ops", "assignee": "chen", "exception_ids": [third, first]},
    )
    assert refused.status_code == 409 and refused.json()["errors"][0]["loc"] == [
        "body",
        "exception_ids",
        1,
    ]
    assert await mine(client, "chen") == [] and await mine(client, "王芳") == [third]


async def test_an_assignment_is_refused_when_its_body_or_token_is_wrong(
    client: httpx.AsyncClient,
) -> None:
    path = "/v1/exceptions/line:file_x:1/assign"
    for body, field in (
        ({"by": "ops"}, "assignee"),
        ({"by": "ops", "assignee": ""}, "assignee"),
        ({"assignee": "li.wei"}, "by"),
        ({"by": "ops", "assignee": "x" * 101}, "assignee"),
    ):
        answer = await client.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["errors"][0]["loc"] == [field], body
    assert (await client.post(path, json={"by": "ops", "assignee": "a"})).status_code == 404
    merchant = await client.post(
        path,
        json={"by": "ops", "assignee": "a"},
        headers={"authorization": f"Bearer {MERCHANT_M1}"},
    )
    assert merchant.status_code == 403
    # The filter too: a NUL PostgreSQL cannot compare (the API fuzzer's find) is a 422, not a 500.
    nul = await client.get("/v1/exceptions", params={"assignee": "%\x00l"})
    assert nul.status_code == 422 and nul.json()["errors"][0]["loc"] == ["query", "assignee"]

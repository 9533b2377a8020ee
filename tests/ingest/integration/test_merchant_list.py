"""GET /v1/merchants: the profiles by id, page by page, found by id or name and by bank, secrets
and accounts masked; a merchant token lists only itself."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest.integration.conftest import MERCHANT_M1, PROFILE

pytestmark = pytest.mark.asyncio(loop_scope="session")
ACCOUNT = {"holder": "上海小笼包", "bank_name": "ICBC", "number": "6222021234567890123"}


async def test_merchants_are_listed_by_id_page_by_page(client: httpx.AsyncClient) -> None:
    for n in range(5):
        profile = PROFILE | {"name": f"Shop {n} 100%_off", "settlement_bank": "BOC"}
        assert (await client.put(f"/v1/merchants/B{n}", json=profile)).is_success
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        answer = await client.get("/v1/merchants", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [m["merchant_id"] for m in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["B0", "B1", "B2", "B3", "B4", "M1"]
    by_bank = (await client.get("/v1/merchants", params={"settlement_bank": "ICBC"})).json()
    assert [m["merchant_id"] for m in by_bank["items"]] == ["M1"]


async def test_q_finds_an_id_prefix_or_a_name_and_its_wildcards_are_plain_text(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/v1/merchants/B1", json=PROFILE | {"name": "Noodles 100%_off"})
    await client.put("/v1/merchants/B2", json=PROFILE | {"name": "Noodles 1000 off"})

    async def found(q: str) -> list[str]:
        answer = await client.get("/v1/merchants", params={"q": q})
        return [m["merchant_id"] for m in answer.json()["items"]]

    assert await found("dumplings") == ["M1"]  # the name, in any case
    assert await found("B") == ["B1", "B2"]  # an id's start
    assert await found("100%_") == ["B1"]  # % and _ are characters, not wildcards
    assert await found("1") == ["B1", "B2"]  # in both names; no id starts with it
    # A 15-digit merchant number may be sought even where it passes the card-number check.
    assert await found("898310048990004") == []
    for field in ("q", "settlement_bank"):  # a NUL PostgreSQL cannot compare: 422, not 500
        nul = await client.get("/v1/merchants", params={field: "a\x00b"})
        assert nul.status_code == 422 and nul.json()["errors"][0]["loc"] == ["query", field]


async def test_secrets_are_masked_and_a_merchant_sees_only_itself(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/v1/merchants/M1", json=PROFILE | {"receiving_account": ACCOUNT})
    await client.put("/v1/merchants/M2", json=PROFILE)
    listed = (await client.get("/v1/merchants")).json()["items"]
    m1 = next(m for m in listed if m["merchant_id"] == "M1")
    assert m1["webhook"]["secret"] == "whsec_**********"
    assert m1["receiving_account"]["number"].endswith("0123") and "1234567890" not in str(m1)
    own = await client.get("/v1/merchants", headers={"authorization": f"Bearer {MERCHANT_M1}"})
    assert [m["merchant_id"] for m in own.json()["items"]] == ["M1"]
    bad = await client.get("/v1/merchants", params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "cursor"]

"""Tokens issued through the API (SPEC §14): scopes, expiry, revocation, hashes only at rest."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from settlewatch.common.config import IngestSettings
from settlewatch.common.tokens import digest, token_id
from settlewatch.ingest.app import create_app
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE
from tests.support.apps import app_client
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_merchant_token_is_shown_once_reads_its_own_and_dies_when_revoked(
    client: httpx.AsyncClient, ingest_settings: IngestSettings, database_url: str
) -> None:
    assert (await client.put("/v1/merchants/M2", json=PROFILE)).status_code == 201
    created = await client.post(
        "/v1/tokens", json={"scope": "merchant:M1", "description": "M1's portal"}
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    token, token_id = issued["token"], issued["token_id"]
    assert token.startswith("sw_") and len(token) > 40 and len(token_id) == 16
    assert issued["scope"] == "merchant:M1" and issued["revoked_at"] is None

    as_m1 = bearer(token)
    assert (await client.get("/v1/merchants/M1", headers=as_m1)).status_code == 200
    assert (await client.get("/v1/merchants/M2", headers=as_m1)).status_code == 404
    refused = await client.put("/v1/merchants/M1", json=PROFILE, headers=as_m1)
    assert refused.status_code == 403

    listed = (await client.get("/v1/tokens", params={"scope": "merchant:M1"})).json()["items"]
    assert [t["token_id"] for t in listed] == [token_id]
    assert "token" not in listed[0]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT * FROM api_tokens")
    finally:
        await conn.close()
    assert token not in str([dict(r) for r in rows])  # only its hash is kept

    # Another ingest instance on the same database knows the token, and learns of the revocation
    # within SPEC §14's 5 s.
    async with app_client(create_app(ingest_settings)) as other:
        assert (await other.get("/v1/merchants/M1", headers=as_m1)).status_code == 200
        assert (await client.delete(f"/v1/tokens/{token_id}")).status_code == 204
        assert (await client.get("/v1/merchants/M1", headers=as_m1)).status_code == 401
        revoked_at = time.monotonic()
        while (await other.get("/v1/merchants/M1", headers=as_m1)).status_code != 401:
            assert time.monotonic() - revoked_at < 5.0
            await asyncio.sleep(0.1)

    again = await client.delete(f"/v1/tokens/{token_id}")
    assert again.status_code == 204  # revoking twice changes nothing
    [listed] = (await client.get("/v1/tokens", params={"scope": "merchant:M1"})).json()["items"]
    assert listed["revoked_at"] is not None
    assert (await client.delete("/v1/tokens/0123456789abcdef")).status_code == 404
    assert (await client.delete("/v1/tokens/not-an-id")).status_code == 404


async def test_a_read_token_reads_everything_and_changes_nothing(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/tokens", json={"scope": "acquirer:read", "description": "ops desk"}
    )
    desk = bearer(created.json()["token"])
    assert (await client.get("/v1/merchants/M1", headers=desk)).status_code == 200
    assert (await client.get("/v1/maintenance-windows", headers=desk)).status_code == 200
    assert (await client.get("/v1/tokens", headers=desk)).status_code == 200
    assert (await client.get("/v1/audit", headers=desk)).status_code == 200
    for refused in (
        await client.put("/v1/merchants/M1", json=PROFILE, headers=desk),
        await client.post(
            "/v1/tokens", json={"scope": "acquirer", "description": "x"}, headers=desk
        ),
    ):
        assert refused.status_code == 403
        assert "may only read" in refused.json()["detail"]


async def test_a_token_stops_working_when_it_expires(client: httpx.AsyncClient) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    created = await client.post(
        "/v1/tokens",
        json={
            "scope": "merchant:M1",
            "description": "one second",
            "expires_at": expires.isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    short = bearer(created.json()["token"])
    assert (await client.get("/v1/merchants/M1", headers=short)).status_code == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    assert (await client.get("/v1/merchants/M1", headers=short)).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "root", "description": "x"}, "scope"),
        ({"scope": "merchant:", "description": "x"}, "scope"),
        ({"scope": "merchant:M404", "description": "x"}, "scope"),
        ({"scope": "acquirer", "description": ""}, "description"),
        ({"scope": "acquirer"}, "description"),
        (
            {"scope": "acquirer", "description": "x", "expires_at": "2020-01-01T00:00:00Z"},
            "expires_at",
        ),
        (
            {"scope": "acquirer", "description": "x", "expires_at": "2030-01-01T00:00:00"},
            "expires_at",
        ),
        ({"scope": "acquirer", "description": "x", "admin": True}, "admin"),
    ],
)
async def test_a_bad_token_request_names_the_field_and_issues_nothing(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    before = (await client.get("/v1/tokens", params={"limit": 1000})).json()["items"]
    answer = await client.post("/v1/tokens", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in {str(part) for error in answer.json()["errors"] for part in error["loc"]}
    assert (await client.get("/v1/tokens", params={"limit": 1000})).json()["items"] == before


async def test_only_an_acquirer_token_manages_tokens(client: httpx.AsyncClient) -> None:
    as_m1 = bearer(MERCHANT_M1)
    assert (await client.get("/v1/tokens", headers=as_m1)).status_code == 403
    created = await client.post(
        "/v1/tokens", json={"scope": "acquirer", "description": "x"}, headers=as_m1
    )
    assert created.status_code == 403
    assert (await client.get("/v1/tokens", headers=bearer("sw_unknown"))).status_code == 401


async def test_tokens_are_listed_newest_first_page_by_page(client: httpx.AsyncClient) -> None:
    for n in range(5):
        made = await client.post(
            "/v1/tokens", json={"scope": "acquirer:read", "description": f"p{n}"}
        )
        assert made.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "scope": "acquirer:read"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/tokens", params=params)).json()
        seen += [t["description"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen[:5] == [f"p{n}" for n in reversed(range(5))]


async def test_a_list_asked_for_a_scope_that_cannot_exist_is_refused(
    client: httpx.AsyncClient,
) -> None:
    for scope in ("root", "merchant:a\x00b", "x" * 200):
        refused = await client.get("/v1/tokens", params={"scope": scope})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"] == ["query", "scope"]


async def test_a_token_never_outlives_the_token_that_issued_it(client: httpx.AsyncClient) -> None:
    """A token minted by an expiring acquirer token never expired (issue 28 item 6); nor did
    one minted by a token revoked since."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    maker = await client.post(
        "/v1/tokens",
        json={
            "scope": "acquirer",
            "description": "on call tonight",
            "expires_at": expires.isoformat(),
        },
    )
    assert maker.status_code == 201, maker.text
    as_maker = bearer(maker.json()["token"])
    made = await client.post(
        "/v1/tokens", json={"scope": "merchant:M1", "description": "portal"}, headers=as_maker
    )
    assert made.status_code == 201, made.text
    assert datetime.fromisoformat(made.json()["expires_at"]) == expires
    later = (expires + timedelta(minutes=1)).isoformat()
    refused = await client.post(
        "/v1/tokens",
        json={"scope": "merchant:M1", "description": "portal", "expires_at": later},
        headers=as_maker,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "expires_at"]
    # Revoking the maker revokes what it made, and what that made.
    deputy = await client.post(
        "/v1/tokens", json={"scope": "acquirer", "description": "deputy"}, headers=as_maker
    )
    grandchild = await client.post(
        "/v1/tokens",
        json={"scope": "acquirer:read", "description": "report"},
        headers=bearer(deputy.json()["token"]),
    )
    assert grandchild.status_code == 201, grandchild.text
    as_made = bearer(made.json()["token"])
    assert (await client.get("/v1/merchants/M1", headers=as_made)).status_code == 200
    assert (await client.delete(f"/v1/tokens/{maker.json()['token_id']}")).status_code == 204
    for token in (made, deputy, grandchild):
        answer = await client.get("/v1/merchants/M1", headers=bearer(token.json()["token"]))
        assert answer.status_code == 401


async def test_a_token_tells_what_it_may_do(client: httpx.AsyncClient) -> None:
    """The console signs a person in with GET /v1/tokens/current (any scope, no other data)."""
    expires = datetime.now(UTC) + timedelta(hours=1)
    made = {
        scope: (
            await client.post(
                "/v1/tokens",
                json={"scope": scope, "description": scope, "expires_at": expires.isoformat()},
            )
        ).json()
        for scope in ("acquirer:read", "merchant:M1")
    }
    bootstrap = (await client.get("/v1/tokens/current")).json()
    assert bootstrap == {
        "scope": "acquirer",
        "token_id": token_id(digest(ACQUIRER)),
        "expires_at": None,
        "may_write": True,
        "merchant_id": None,
    }
    for scope, issued in made.items():
        current = (await client.get("/v1/tokens/current", headers=bearer(issued["token"]))).json()
        assert current["scope"] == scope and current["token_id"] == issued["token_id"]
        assert datetime.fromisoformat(current["expires_at"]) == expires
        assert current["may_write"] is False
        assert current["merchant_id"] == ("M1" if scope == "merchant:M1" else None)
    unknown = await client.get("/v1/tokens/current", headers=bearer("sw_nobody"))
    assert unknown.status_code == 401

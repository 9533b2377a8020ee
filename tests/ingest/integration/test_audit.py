"""The audit log (SPEC §14): every change through the API with its token's id, nothing else;
rows can be added, never changed."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from settlewatch.common.tokens import digest, token_id
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")
ACQUIRER_ID = token_id(digest(ACQUIRER))
WINDOW = {
    "bank_code": "ICBC",
    "starts_at": "2026-12-01T01:00:00+08:00",
    "ends_at": "2026-12-01T05:00:00+08:00",
    "reason": "core banking upgrade",
}


async def audit(client: httpx.AsyncClient, **params: str) -> list[dict]:
    answer = await client.get("/v1/audit", params=params | {"limit": "1000"})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_changes_are_logged_with_the_token_id_and_nothing_else_is(
    client: httpx.AsyncClient,
) -> None:
    # The fixture registered M1; a change of profile, a window, a token and its revocation.
    changed = PROFILE | {"name": "Shanghai Dumplings No. 2"}
    assert (await client.put("/v1/merchants/M1", json=changed)).status_code == 200
    assert (await client.post("/v1/maintenance-windows", json=WINDOW)).status_code == 201
    issued = (
        await client.post("/v1/tokens", json={"scope": "merchant:M1", "description": "portal"})
    ).json()
    assert (await client.delete(f"/v1/tokens/{issued['token_id']}")).status_code == 204
    # Reads, refusals and events are not changes of configuration.
    assert (await client.get("/v1/merchants/M1")).status_code == 200
    assert (await client.put("/v1/merchants/M1", json={"name": "x"})).status_code == 422
    m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    assert (await client.put("/v1/merchants/M1", json=PROFILE, headers=m1)).status_code == 403
    assert (await client.post("/v1/transactions", json={"items": [sale()]})).status_code == 202

    entries = await audit(client)
    assert [(e["action"], e["target"], e["status"]) for e in reversed(entries)] == [
        ("PUT /v1/merchants/{merchant_id}", "/v1/merchants/M1", 201),
        ("PUT /v1/merchants/{merchant_id}", "/v1/merchants/M1", 200),
        ("POST /v1/maintenance-windows", "/v1/maintenance-windows", 201),
        ("POST /v1/tokens", "/v1/tokens", 201),
        ("DELETE /v1/tokens/{token_id}", f"/v1/tokens/{issued['token_id']}", 204),
    ]
    assert {(e["actor"], e["scope"], e["service"]) for e in entries} == {
        (ACQUIRER_ID, "acquirer", "ingest")
    }
    assert entries[1]["details"] == {"token_id": issued["token_id"], "scope": "merchant:M1"}
    # What a profile change touched, by field name, never a value (profiles hold accounts).
    assert entries[3]["details"] == {"changed": ["name"]}
    registered = entries[4]["details"]["changed"]
    assert set(PROFILE) <= set(registered) and "webhook.secret" in registered
    rotated = PROFILE | {"webhook": PROFILE["webhook"] | {"secret": "whsec_" + "A" * 32}}
    assert (await client.put("/v1/merchants/M1", json=rotated)).status_code == 200
    [latest] = (await client.get("/v1/audit", params={"limit": "1"})).json()["items"]
    assert latest["details"] == {"changed": ["name", "webhook.secret"]}
    assert "whsec_" not in str(await audit(client))
    assert issued["token"] not in str(entries)


async def test_the_log_reads_by_actor_and_time_page_by_page(client: httpx.AsyncClient) -> None:
    second = (
        await client.post("/v1/tokens", json={"scope": "acquirer", "description": "backend 2"})
    ).json()
    as_second = {"authorization": f"Bearer {second['token']}"}
    middle = datetime.now(UTC).isoformat()
    for n in range(3):
        window = WINDOW | {"reason": f"upgrade {n}"}  # the same window, told again
        made = await client.post("/v1/maintenance-windows", json=window, headers=as_second)
        assert made.status_code == 201

    by_second = await audit(client, actor=second["token_id"])
    assert len(by_second) == 3 and {e["actor"] for e in by_second} == {second["token_id"]}
    assert {e["actor"] for e in await audit(client, to=middle)} == {ACQUIRER_ID}
    assert len(await audit(client, **{"from": middle})) == 3

    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/audit", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [e["id"] for e in await audit(client)] and len(seen) == 5

    for bad in ({"actor": "acquirer"}, {"from": middle, "to": middle}, {"from": "yesterday"}):
        refused = await client.get("/v1/audit", params=bad)
        assert refused.status_code == 422, bad
    m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    assert (await client.get("/v1/audit", headers=m1)).status_code == 403


async def test_the_log_cannot_be_changed_even_from_inside_the_database(
    client: httpx.AsyncClient, database_url: str
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for statement in (
            "UPDATE audit_log SET actor = 'someone else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1  # M1's registration
    finally:
        await conn.close()


async def test_a_change_whose_audit_row_cannot_be_written_is_not_made(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """The row was written after the change committed, and a failure was only counted: the
    change stood unaudited (issue 28 item 6). Now it is written in the change's transaction."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit log full'; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        )
        with pytest.raises(DBAPIError, match="audit log full"):  # the service answers 500
            await client.put("/v1/merchants/M9", json=PROFILE)
        assert await conn.fetchval("SELECT count(*) FROM merchants WHERE merchant_id = 'M9'") == 0
        await conn.execute("DROP TRIGGER refuse_audit ON audit_log")
        assert (await client.put("/v1/merchants/M9", json=PROFILE)).status_code == 201
        latest = (await audit(client))[0]
        assert (latest["target"], latest["status"]) == ("/v1/merchants/M9", 201)
        # A refusal commits nothing, and is no change: not logged.
        assert (await client.delete("/v1/tokens/0123456789abcdef")).status_code == 404
        assert (await audit(client))[0]["id"] == latest["id"]
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS refuse_audit ON audit_log")
        await conn.close()

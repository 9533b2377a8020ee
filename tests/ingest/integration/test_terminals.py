"""PUT/GET /v1/terminals and GET /v1/merchants/{id}/books (SPEC §12): a migration whose new
terminal's sales the bank settled under the replaced one shows, per terminal, where the
difference is; the terminal reaches the matcher's partition; bad terminals are named."""

from __future__ import annotations

import httpx
import pytest

from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics
from tests.ingest.integration.conftest import MERCHANT_M1, PROFILE
from tests.matcher.integration.test_search import seed
from tests.matcher.unit.scenario import merchant, paid, sale, settlement, terminal
from tests.support.kafka import decoded, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_migration_is_registered_and_reaches_the_matcher(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    old = await client.put("/v1/terminals/POS-A", json={"merchant_id": "M1", "region": "北京"})
    assert old.status_code == 201, old.text
    new = await client.put(
        "/v1/terminals/POS-B", json={"merchant_id": "M1", "region": "北京", "replaces": "POS-A"}
    )
    assert new.status_code == 201 and new.json()["replaces"] == "POS-A"
    retired = await client.put(
        "/v1/terminals/POS-A", json={"merchant_id": "M1", "region": "北京", "status": "retired"}
    )
    assert retired.status_code == 200
    fetched = (await client.get("/v1/terminals/POS-A")).json()
    assert (fetched["status"], fetched["region"]) == ("retired", "北京")
    records = [
        decoded(r)
        for r in await read_topic(
            ingest_settings.kafka_bootstrap_servers,
            Topics(ingest_settings.topic_prefix).transactions,
        )
    ]
    published = [
        r["body"]
        for r in records
        if r["kind"] == "terminal" and r["body"]["terminal_id"] in ("POS-A", "POS-B")
    ]
    assert [(t["terminal_id"], t.get("replaces"), t["status"]) for t in published] == [
        ("POS-A", None, "active"),
        ("POS-B", "POS-A", "active"),
        ("POS-A", None, "retired"),
    ]


async def test_bad_terminals_are_named_and_change_nothing(client: httpx.AsyncClient) -> None:
    await client.put("/v1/merchants/M2", json=PROFILE)
    await client.put("/v1/terminals/POS-M2", json={"merchant_id": "M2"})
    for body, field in (
        ({"merchant_id": "M1", "replaces": "NOPE"}, "replaces"),
        ({"merchant_id": "M1", "replaces": "POS-X"}, "replaces"),  # itself
        ({"merchant_id": "M1", "replaces": "POS-M2"}, "replaces"),  # another merchant's
        ({"merchant_id": "M1", "status": "lost"}, "status"),
        ({"merchant_id": "M1", "region": ""}, "region"),
    ):
        answer = await client.put("/v1/terminals/POS-X", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["errors"][0]["loc"][-1] == field
    assert (await client.get("/v1/terminals/POS-X")).status_code == 404
    as_m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    assert (await client.get("/v1/terminals/POS-M2", headers=as_m1)).status_code == 404


async def test_the_books_show_where_a_migration_s_difference_is(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await client.put("/v1/terminals/POS-A", json={"merchant_id": "M1"})
    await client.put("/v1/terminals/POS-B", json={"merchant_id": "M1", "replaces": "POS-A"})
    booked_under_a = settlement("S-B", [("B1", 12800, 77, 12723), ("B2", 5000, 30, 4970)])
    for item in booked_under_a["items"]:
        item["terminal_id"] = "POS-A"  # type: ignore[typeddict-unknown-key]
    await seed(
        database_url,
        [
            merchant("M1"),
            terminal("POS-A"),
            terminal("POS-B", replaces="POS-A"),
            sale("A1", "2025-11-20T09:00+08:00", terminal_id="POS-A"),
            sale("B1", "2025-11-20T14:00+08:00", terminal_id="POS-B", card_fingerprint="1"),
            sale("B2", "2025-11-20T15:00+08:00", terminal_id="POS-B", amount_minor=5000),
            sale("B3", "2025-11-20T16:00+08:00", terminal_id="POS-B", card_fingerprint="3"),
            paid("A1"),
            booked_under_a,
        ],
        "2025-11-21T10:00+08:00",
    )
    books = (await client.get("/v1/merchants/M1/books", params={"date": "2025-11-20"})).json()
    by_terminal = {t["terminal_id"]: t for t in books["terminals"]}
    a, b = by_terminal["POS-A"], by_terminal["POS-B"]
    assert (a["sales"], a["expected_net_minor"], a["settled_net_minor"]) == (
        {"count": 1, "amount_minor": 12800},
        12723,
        12723 + 12723 + 4970,
    )
    assert a["difference_minor"] == 12723 + 4970  # the bank booked B's sales under A
    assert (b["replaces"], b["sales"]["count"], b["fees_minor"]) == ("POS-A", 3, 77 + 30 + 77)
    assert b["difference_minor"] == -(12723 + 4970 + 12723) and b["unsettled"] == 1  # B3
    [total] = books["total"]
    assert total["difference_minor"] == -12723  # only B3 is really missing
    assert total["unsettled"] == 1 and total["sales"]["count"] == 4
    empty = (await client.get("/v1/merchants/M1/books", params={"date": "2025-11-19"})).json()
    assert empty["terminals"] == [] and empty["total"] == []
    bad = await client.get("/v1/merchants/M1/books", params={"date": "20-11-2025"})
    assert bad.status_code == 422 and "date" in bad.text

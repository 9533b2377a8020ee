"""GET /v1/payments (SPEC §12): every filter, newest first, a cursor that neither repeats nor
skips while payments are inserted, merchant tokens limited to their own, bad filters named; and
the plans use the search indexes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from settlewatch.common.config import MatcherSettings
from settlewatch.common.db import create_engine
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.search import Filters, search_query
from settlewatch.matcher.store import MatcherStore
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, TOKENS
from tests.matcher.unit.scenario import Event, apply, at, merchant, paid, sale
from tests.support.apps import app_client
from tests.support.matcher import service_env
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")

START = at("2025-11-20T08:00+08:00")
AS_M1 = {"authorization": f"Bearer {MERCHANT_M1}"}


def minutes(n: int) -> str:
    return (START + timedelta(minutes=n)).isoformat()


async def seed(database_url: str, events: list[Event], tick: str, partition: int = 90) -> None:
    """Payments written by the real store, in a partition the running matcher does not own."""
    engine = create_engine(database_url)
    try:
        store = MatcherStore(engine)
        [owned] = await store.claim([partition])
        matcher = Matcher(owned.state)
        for event in events:
            apply(matcher, event)
        matcher.tick(at(tick))
        await store.save([owned], {}, {})
    finally:
        await engine.dispose()


EVENTS: list[Event] = [
    merchant("M1"),
    merchant("M2", settlement_bank="CMB"),
    *(
        sale(
            f"A{n:02d}",
            minutes(n),
            terminal_id=f"POS-{n % 3}",
            rrn=f"RRN{n:03d}",
            card_fingerprint=f"fp{n}",
        )
        for n in range(30)
    ),
    *(
        sale(f"B{n}", minutes(n), merchant_id="M2", terminal_id="POS-B", card_fingerprint=f"g{n}")
        for n in range(5)
    ),
    paid("A00"),
    paid("A01"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def matcher(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database_url, EVENTS, "2025-11-21T12:00+08:00")
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=1, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    async with app_client(create_matcher(MatcherSettings(**env)), ACQUIRER) as client:  # type: ignore[arg-type]
        yield client


async def ids(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        page_params = params | ({"cursor": cursor} if cursor else {})
        answer = await client.get("/v1/payments", params=page_params, headers=headers)
        assert answer.status_code == 200, answer.text
        found += [item["txn_id"] for item in answer.json()["items"]]
        if not (cursor := answer.json()["next_cursor"]):
            return found


async def test_every_filter_newest_first_page_by_page(matcher: httpx.AsyncClient) -> None:
    everything = await ids(matcher, limit=7)
    newest_first = [f"A{n:02d}" for n in range(29, -1, -1)]
    assert [i for i in everything if i.startswith("A")] == newest_first
    assert len(everything) == 35 and len(set(everything)) == 35
    assert await ids(matcher, merchant_id="M2") == [f"B{n}" for n in range(4, -1, -1)]
    assert await ids(matcher, bank_code="CMB", limit=2) == [f"B{n}" for n in range(4, -1, -1)]
    assert await ids(matcher, status="settled") == ["A01", "A00"]
    assert await ids(matcher, terminal_id="POS-1", limit=4) == [
        f"A{n:02d}" for n in range(28, -1, -1) if n % 3 == 1
    ]
    assert await ids(matcher, rrn="RRN007") == ["A07"]
    window = {"from": minutes(10), "to": minutes(13)}
    assert await ids(matcher, merchant_id="M1", **window) == ["A12", "A11", "A10"]
    assert await ids(
        matcher, merchant_id="M1", status="pending", terminal_id="POS-0", **window
    ) == ["A12"]
    first = (await matcher.get("/v1/payments", params={"rrn": "RRN001"})).json()["items"][0]
    assert (first["status"], first["settlement_id"], first["kind"]) == ("settled", "S-A01", "sale")


async def test_a_cursor_neither_repeats_nor_skips_while_payments_are_inserted(
    matcher: httpx.AsyncClient, database_url: str
) -> None:
    first = await matcher.get("/v1/payments", params={"merchant_id": "M1", "limit": 10})
    seen = [item["txn_id"] for item in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    # Newer and older payments arrive between two pages (another partition's batch).
    newer = [sale(f"N{n}", minutes(100 + n), card_fingerprint=f"n{n}") for n in range(3)]
    older = [sale("O1", minutes(-100), card_fingerprint="o1")]
    await seed(database_url, [merchant("M1"), *newer, *older], "2025-11-21T12:00+08:00", 91)
    while cursor:
        page = await matcher.get(
            "/v1/payments", params={"merchant_id": "M1", "limit": 10, "cursor": cursor}
        )
        seen += [item["txn_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert seen == [f"A{n:02d}" for n in range(29, -1, -1)] + ["O1"]  # the newer: next search


async def test_a_merchant_token_sees_only_its_own(matcher: httpx.AsyncClient) -> None:
    mine = await ids(matcher, headers=AS_M1)
    assert mine and all(i.startswith("A") for i in mine)
    other = await matcher.get("/v1/payments", params={"merchant_id": "M2"}, headers=AS_M1)
    assert other.status_code == 404


async def test_a_merchants_summary_agrees_with_its_payments(matcher: httpx.AsyncClient) -> None:
    """The summary reads states alone and the oldest pending from states to facts: the same
    payments the search lists, status by status."""
    summary = (await matcher.get("/v1/merchants/M1/summary")).json()
    for status in ("pending", "overdue"):
        found = await ids(matcher, merchant_id="M1", status=status)
        assert sum(t["count"] for t in summary[status]) == len(found)
    pending = await ids(matcher, merchant_id="M1", status="pending")
    assert pending, "the seed has pending payments of M1"
    times = [(await matcher.get(f"/v1/payments/{t}")).json()["occurred_at"] for t in pending]
    oldest = min(datetime.fromisoformat(t) for t in times)
    assert datetime.fromisoformat(summary["oldest_pending_occurred_at"]) == oldest


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"status": "lost"}, ["query", "status"]),
        ({"from": "2025-11-20T08:00"}, ["query", "from"]),  # no offset
        ({"from": "0001-01-01T00:00:00Z"}, ["query", "from"]),  # 500 before (issue 28)
        ({"to": "9999-12-31T23:59:59Z"}, ["query", "to"]),
        ({"to": "yesterday"}, ["query", "to"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 1001}, ["query", "limit"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ({"merchant_id": "M 1"}, ["query", "merchant_id"]),
        ({"rrn": "12-34"}, ["query", "rrn"]),
    ],
)
async def test_bad_filters_are_refused_naming_the_parameter(
    matcher: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
) -> None:
    answer = await matcher.get("/v1/payments", params=params)
    assert answer.status_code == 422, answer.text
    assert loc in [e["loc"] for e in answer.json()["errors"]]


@pytest.mark.parametrize(
    ("filters", "index", "sorted_by_index"),
    [
        # A day's table names the indexes it inherits after their columns.
        (Filters(merchant_id="M1"), r"_d\d{8}_merchant_id_occurred_at_txn_id_idx ", True),
        (Filters(terminal_id="POS-1"), r"_d\d{8}_terminal_id_occurred_at_txn_id_idx ", True),
        (Filters(rrn="RRN007"), r"_d\d{8}_rrn_idx ", False),  # a few: sorted
        (Filters(), r"_d\d{8}_occurred_at_txn_id_idx ", True),
    ],
)
async def test_each_filter_is_served_by_its_index(
    database_url: str, filters: Filters, index: str, sorted_by_index: bool
) -> None:
    await seed(database_url, EVENTS, "2025-11-21T12:00+08:00")
    query = search_query(filters, None, 100).compile(compile_kwargs={"literal_binds": True})
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("SET enable_seqscan = off")  # a few rows: make the choice visible
        if sorted_by_index:  # as at scale, where sorting them all would cost more
            await conn.execute("SET enable_sort = off")
        plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {query}"))
    finally:
        await conn.close()
    assert re.search(index, plan), plan

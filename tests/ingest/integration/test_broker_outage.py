"""Broker unavailable → 503 with Retry-After, never 202; broker back → accepted."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.ingest.app import PUBLISH_TIMEOUT_S, create_app
from tests.ingest.integration.conftest import ACQUIRER, PARTITIONS, PROFILE, TOKENS, sale
from tests.support.apps import app_client
from tests.support.kafka import data_events
from tests.support.ports import free_port

# A silent broker ends in a 503 once the publish timeout is over, not after aiokafka's own
# request timeout (40 s) or never: a generous bound that still tells the two apart.
ANSWERED_WITHIN = PUBLISH_TIMEOUT_S * 5

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def own_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    await broker.start()
    yield broker
    if broker.pid:
        os.kill(broker.pid, signal.SIGCONT)
    await broker.stop()


async def ingest_on(broker: EmbeddedBroker, database_url: str, topics: Topics) -> IngestSettings:
    await ensure_topics(
        broker.bootstrap_servers, topics, partitions=PARTITIONS, replication_factor=1
    )
    return IngestSettings(  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        SETTLEWATCH_TOPIC_PREFIX=topics.prefix,
        SETTLEWATCH_API_TOKENS=TOKENS,
    )


async def test_a_hung_broker_gets_503_within_the_publish_timeout_and_a_resend_is_accepted_later(
    own_broker: EmbeddedBroker, database_url: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    settings = await ingest_on(own_broker, database_url, topics)
    batch = {"items": [sale(f"T{i}") for i in range(10)]}
    async with app_client(create_app(settings), ACQUIRER) as client:
        assert (await client.put("/v1/merchants/M1", json=PROFILE)).status_code == 201

        assert own_broker.pid is not None
        os.kill(own_broker.pid, signal.SIGSTOP)  # alive but silent, like a partitioned broker
        try:
            started = time.monotonic()
            refused = await client.post("/v1/transactions", json=batch)
            assert time.monotonic() - started < ANSWERED_WITHIN
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["content-type"] == "application/problem+json"

            changed = await client.put(
                "/v1/merchants/M1", json=PROFILE | {"settlement_cycle": "T3"}
            )
            assert changed.status_code == 503
        finally:
            os.kill(own_broker.pid, signal.SIGCONT)

        assert (await client.get("/v1/merchants/M1")).json()[
            "settlement_cycle"
        ] == "T1"  # rolled back
        accepted = await client.post("/v1/transactions", json=batch)
        assert accepted.status_code == 202

    published = await data_events(own_broker.bootstrap_servers, topics.transactions)
    assert {e["body"]["txn_id"] for e in published if e["kind"] == "transaction"} == {
        f"T{i}" for i in range(10)
    }


async def test_a_stopped_broker_gets_503_and_a_restarted_one_accepts(
    own_broker: EmbeddedBroker, database_url: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    settings = await ingest_on(own_broker, database_url, topics)
    async with app_client(create_app(settings), ACQUIRER) as client:
        assert (await client.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
        await own_broker.stop()
        started = time.monotonic()
        refused = await client.post("/v1/transactions", json={"items": [sale()]})
        assert refused.status_code == 503
        assert time.monotonic() - started < ANSWERED_WITHIN

        await own_broker.start()  # an in-memory broker comes back empty: recreate the topics
        await ensure_topics(
            own_broker.bootstrap_servers, topics, partitions=PARTITIONS, replication_factor=1
        )
        # The producer reconnects on its own, usually before the first resend, sometimes a
        # second later: a client resending after Retry-After gets in.
        back = time.monotonic()
        while (
            accepted := await client.post("/v1/transactions", json={"items": [sale()]})
        ).status_code == 503:
            assert time.monotonic() - back < 30, accepted.text
            await asyncio.sleep(float(accepted.headers["retry-after"]))
        assert accepted.status_code == 202, accepted.text

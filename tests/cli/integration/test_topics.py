from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from settlewatch.common.kafka import Topics, ensure_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def partitions_by_topic(bootstrap: str, names: tuple[str, ...]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def test_the_four_topics_are_created_under_the_prefix(
    broker_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=6, replication_factor=1)
    assert await partitions_by_topic(broker_bootstrap, topics.all()) == {
        f"{topic_prefix}.transactions": 6,
        f"{topic_prefix}.settlements": 6,
        f"{topic_prefix}.findings": 6,
        f"{topic_prefix}.dead-letter": 6,
    }


async def test_creating_existing_topics_again_is_harmless(
    broker_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=3, replication_factor=1)
    await ensure_topics(broker_bootstrap, topics, partitions=3, replication_factor=1)
    assert set((await partitions_by_topic(broker_bootstrap, topics.all())).values()) == {3}


async def test_migrate_creates_the_topics_when_given_a_broker(
    broker_bootstrap: str, topic_prefix: str, database_url: str
) -> None:
    env = os.environ | {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
        "SETTLEWATCH_TOPIC_PREFIX": topic_prefix,
        "SETTLEWATCH_TOPIC_PARTITIONS": "5",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "settlewatch.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    partitions = await partitions_by_topic(broker_bootstrap, Topics(topic_prefix).all())
    assert set(partitions.values()) == {5} and len(partitions) == 4

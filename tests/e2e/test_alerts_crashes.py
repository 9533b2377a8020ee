"""SIGKILL the alerts service while it delivers webhooks: every alert still reaches the
merchant, and no alert is ever in two different deliveries (SPEC §7, issue 5)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import orjson
import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.publisher import Publisher
from tests.alerts.integration.conftest import add_merchant
from tests.ingest.integration.conftest import TOKENS
from tests.support.findings import overdue_finding
from tests.support.matcher import service_env
from tests.support.receiver import receiver
from tests.support.service import spawn
from tests.support.urls import asyncpg_dsn

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MERCHANTS = 10
PER_MERCHANT = 60
KILLS = 2


def finding(merchant: str, n: int) -> tuple[bytes, bytes]:
    return merchant.encode(), orjson.dumps(overdue_finding(f"{merchant}-T{n:03d}", merchant))


async def undelivered(database_url: str) -> int:
    """Alerts the service has not yet seen delivered (as its database says)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM alerts a LEFT JOIN deliveries d USING (delivery_id) "
            "WHERE d.status IS DISTINCT FROM 'delivered'"
        )
        return count
    finally:
        await conn.close()


async def test_sigkill_mid_delivery_never_puts_an_alert_in_two_deliveries(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=4, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS) | {
        "SETTLEWATCH_GROUP_WAIT": "PT0.3S",
        "ALERTS_SESSION_TIMEOUT": "PT2S",
        # An attempt's lease is its timeout + 15 s: a shorter timeout (the endpoint answers in
        # 1 s) brings the cut-short attempts back sooner.
        "SETTLEWATCH_WEBHOOK_TIMEOUT": "PT3S",
    }
    merchants = [f"M{m}" for m in range(MERCHANTS)]
    expected = {f"settlement.overdue:{m}-T{n:03d}" for m in merchants for n in range(PER_MERCHANT)}
    log = tmp_path / "alerts.log"
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)
    async with receiver() as rec:
        rec.delay = 1.0  # a slow merchant endpoint, so that kills can land mid-attempt
        for merchant in merchants:
            await add_merchant(database_url, merchant, f"{rec.url}/{merchant}")

        def arrived() -> set[str]:
            return {a["alert_id"] for got in rec.received for a in got.json()["data"]["alerts"]}

        alerts = spawn("alerts", env, log)
        kills = 0
        try:
            for wave in range(PER_MERCHANT // 10):  # findings keep coming while it is killed
                await publisher.publish(
                    topics.findings,
                    [finding(m, wave * 10 + n) for m in merchants for n in range(10)],
                )
                await asyncio.sleep(0.5)
                if kills < KILLS and wave % 2 == 1:
                    while not rec.in_flight:  # kill while an attempt is under way
                        await asyncio.sleep(0.01)
                    alerts.send_signal(signal.SIGKILL)
                    alerts.wait()
                    kills += 1
                    alerts = spawn("alerts", env, log)
            # An attempt cut short is made again after its lease (18 s) and only then recorded.
            deadline = time.monotonic() + 90
            while arrived() != expected or await undelivered(database_url):
                assert time.monotonic() < deadline, f"missing {len(expected - arrived())}"
                await asyncio.sleep(0.5)
        finally:
            alerts.terminate()
            alerts.wait(15)
            await publisher.close()

    assert kills == KILLS
    webhook_ids = [got.headers["webhook-id"] for got in rec.received]
    assert len(webhook_ids) > len(set(webhook_ids))  # the cut-short attempts were made again
    deliveries_of: dict[str, set[str]] = defaultdict(set)
    for got in rec.received:
        for alert in got.json()["data"]["alerts"]:
            deliveries_of[alert["alert_id"]].add(got.headers["webhook-id"])
    assert {a: len(ids) for a, ids in deliveries_of.items() if len(ids) > 1} == {}
    assert set(deliveries_of) == expected

"""SIGKILL the matcher at random points while payments stream in: after it comes back, every
due payment has its overdue finding, exactly once per finding key, and no settled or cancelled
payment has one (SPEC §5, issue 4)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS, sale
from tests.support.kafka import decoded, read_topic
from tests.support.matcher import matcher_clock, service_env
from tests.support.service import served, spawn
from tests.support.urls import asyncpg_dsn

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

SLA_S = 15  # posting the 2 000 payments, with kills, takes a few seconds of it
PAYMENTS = 2000


def paid_in_full(settlement_id: str, merchant_id: str, txns: list[Any]) -> dict[str, Any]:
    """A bank settlement paying the 128.00 CNY sales `txns` of one merchant, fee 0.77."""
    line = {"gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}
    return {
        "settlement_id": settlement_id,
        "merchant_id": merchant_id,
        "bank_code": "ICBC",
        "status": "settled",
        "occurred_at": datetime.now(UTC).isoformat(),
        "items": [{"txn_id": t["txn_id"], **line} for t in txns],
    }


def kill_one(matchers: list[subprocess.Popen[bytes]], rng: random.Random) -> int:
    """SIGKILL one matcher instance (its index is returned); the caller restarts it."""
    victim = rng.randrange(len(matchers))
    matchers[victim].send_signal(signal.SIGKILL)
    matchers[victim].wait()
    return victim


@pytest.mark.parametrize("instances", [1, 2])
async def test_sigkill_at_random_points_loses_and_doubles_nothing(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path, instances: int
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=4, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    rng = random.Random(20261122)
    log = tmp_path / "matcher.log"
    with served("ingest", env, tmp_path / "ingest.log") as ingest_url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(base_url=ingest_url, headers=auth, timeout=30) as ingest:
            merchants = [f"M{i}" for i in range(4)]
            for m in merchants:
                profile = PROFILE | {"settlement_cycle": "instant", "instant_sla": f"PT{SLA_S}S"}
                assert (await ingest.put(f"/v1/merchants/{m}", json=profile)).status_code == 201
            matchers = [spawn("matcher", env, log) for _ in range(instances)]
            kills = 0
            now = datetime.now(UTC)
            txns = [
                sale(
                    f"T{i}",
                    merchant_id=merchants[i % 4],
                    card_fingerprint=f"fp{i}",
                    occurred_at=now.isoformat(),
                )
                for i in range(PAYMENTS)
            ]
            settled, voided = set(), set()
            for start in range(0, PAYMENTS, 200):
                chunk = txns[start : start + 200]
                assert (
                    await ingest.post("/v1/transactions", json={"items": chunk})
                ).status_code == 202
                lines = [t for t in chunk if int(t["txn_id"][1:]) % 4 in (0, 1)]
                settled |= {t["txn_id"] for t in lines}
                settlements = [  # a settlement concerns one merchant's payments
                    paid_in_full(f"S{start}-{m}", m, [t for t in lines if t["merchant_id"] == m])
                    for m in {t["merchant_id"] for t in lines}
                ]
                assert (
                    await ingest.post("/v1/settlements", json={"items": settlements})
                ).status_code == 202
                voids = [
                    sale(
                        f"V{t['txn_id']}",
                        type="void",
                        original_txn_id=t["txn_id"],
                        merchant_id=t["merchant_id"],
                        occurred_at=now.isoformat(),
                    )
                    for t in chunk
                    if int(t["txn_id"][1:]) % 4 == 2
                ]
                voided |= {v["original_txn_id"] for v in voids}
                assert (
                    await ingest.post("/v1/transactions", json={"items": voids})
                ).status_code == 202
                if rng.random() < 0.3:
                    matchers[kill_one(matchers, rng)] = spawn("matcher", env, log)
                    kills += 1
            # Every settlement was sent before the deadlines (else "settled" would be late).
            assert datetime.now(UTC) < now + timedelta(seconds=SLA_S - 5), "posting took long"
            # keep killing while the deadlines fall due
            until = time.monotonic() + SLA_S + 5
            while time.monotonic() < until:
                await asyncio.sleep(rng.uniform(1, 6))
                victim = kill_one(matchers, rng)
                kills += 1
                await asyncio.sleep(rng.uniform(0, 1.5))
                matchers[victim] = spawn("matcher", env, log)
            try:
                last_due = now + timedelta(seconds=SLA_S)
                deadline = time.monotonic() + 60
                while (
                    clock := await matcher_clock(database_url)
                ) is None or clock < last_due + timedelta(seconds=3):
                    assert time.monotonic() < deadline, (
                        f"matcher clock stuck at {clock}\n{log.read_text()[-3000:]}"
                    )
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2)  # publish the last outbox rows
            finally:
                for matcher in matchers:
                    matcher.terminate()
                    matcher.wait(20)

    assert kills >= 3
    keys = [
        f"{decoded(r)['id']}#{decoded(r)['state']}"
        for r in await read_topic(broker_bootstrap, topics.findings)
    ]
    unpaid = {t["txn_id"] for t in txns} - settled - voided
    assert set(keys) == {f"settlement.overdue:{txn_id}#open" for txn_id in unpaid}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        outbox = await conn.fetchval(
            "SELECT count(*) FROM matcher_outbox WHERE key LIKE 'settlement.overdue:%'"
        )
        statuses = dict(
            await conn.fetch("SELECT status, count(*) FROM matcher_payment_states GROUP BY status")
        )
    finally:
        await conn.close()
    assert outbox == len(unpaid)  # exactly once in the store; the topic is at-least-once
    assert statuses == {"overdue": len(unpaid), "settled": len(settled), "cancelled": len(voided)}


async def test_a_matcher_that_was_down_while_settlements_piled_up_fires_no_false_overdue(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=2, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    sla = 5
    with served("ingest", env, tmp_path / "ingest.log") as ingest_url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(base_url=ingest_url, headers=auth, timeout=30) as ingest:
            profile = PROFILE | {"settlement_cycle": "instant", "instant_sla": f"PT{sla}S"}
            assert (await ingest.put("/v1/merchants/M1", json=profile)).status_code == 201
            now = datetime.now(UTC)
            txns = [
                sale(f"T{i}", card_fingerprint=f"fp{i}", occurred_at=now.isoformat())
                for i in range(300)
            ]
            assert (await ingest.post("/v1/transactions", json={"items": txns})).status_code == 202
            settlement = paid_in_full("S1", "M1", txns)
            assert (
                await ingest.post("/v1/settlements", json={"items": [settlement]})
            ).status_code == 202
            await asyncio.sleep(sla + 3)  # every deadline passes while no matcher runs

            matcher = spawn("matcher", env, tmp_path / "matcher.log")
            try:
                deadline = time.monotonic() + 60
                target = datetime.now(UTC)
                while (clock := await matcher_clock(database_url)) is None or clock < target:
                    assert time.monotonic() < deadline, "matcher did not catch up"
                    await asyncio.sleep(0.3)
                await asyncio.sleep(1)
            finally:
                matcher.terminate()
                matcher.wait(20)

    assert await read_topic(broker_bootstrap, topics.findings) == []
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        statuses = dict(
            await conn.fetch("SELECT status, count(*) FROM matcher_payment_states GROUP BY status")
        )
    finally:
        await conn.close()
    assert statuses == {"settled": 300}

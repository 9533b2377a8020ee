"""One bad record never stops the pipeline (issue 11), on `settlewatch up` as a user runs it.

A transaction from a terminal whose clock says year 9999, written straight to the topic (ingest
refuses it now), made the matcher raise OverflowError, die, restart and die on the same record
forever: no payment of any merchant was matched again. Now it is dead-lettered once, a valid sale
published after it is matched and its merchant told on time, and an operator can list, read and
send back what was set aside once its cause is fixed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from settlewatch.common.events import encode_event
from settlewatch.common.kafka import Topics, read_topic
from settlewatch.common.publisher import Publisher
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import receiver
from tests.support.stack import StartStack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

TOKEN = "e2e-poison-token-0123"
SLA_S = 12


def dead_letters(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "settlewatch.cli", "dead-letters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_poison_record_is_set_aside_once_and_the_pipeline_goes_on(
    start_stack: StartStack,
    database_url: str,
    broker_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = Topics(topic_prefix)
    stack = start_stack(
        {
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
            "SETTLEWATCH_TOPIC_PREFIX": topic_prefix,
            "SETTLEWATCH_API_TOKENS": f"{TOKEN}=acquirer",
            "SETTLEWATCH_GROUP_WAIT": "PT1S",
        }
    )
    stack.wait_ready()
    auth = {"authorization": f"Bearer {TOKEN}"}
    ingest = httpx.AsyncClient(base_url=stack.url("ingest"), headers=auth)
    matcher = httpx.AsyncClient(base_url=stack.url("matcher"), headers=auth)
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)
    async with receiver() as merchant, ingest, matcher:
        hook = {"url": f"{merchant.url}/hook", "secret": PROFILE["webhook"]["secret"]}
        instant = {"settlement_cycle": "instant", "instant_sla": f"PT{SLA_S}S", "webhook": hook}
        assert (await ingest.put("/v1/merchants/M1", json=PROFILE | instant)).status_code == 201
        matcher_pid = stack.pid("matcher")

        # Straight onto the topic, past ingest: the year-9999 sale of the issue, and a sale of a
        # merchant not registered yet.
        bad = sale("T-9999", occurred_at="9999-12-31T23:59:59+14:00")
        early = sale("T-early", merchant_id="M9", occurred_at=datetime.now(UTC).isoformat())
        await publisher.publish(
            topics.transactions,
            [
                (b"M1", encode_event("transaction", orjson.dumps(bad))),
                (b"M9", encode_event("transaction", orjson.dumps(early))),
            ],
        )
        await publisher.close()

        occurred = datetime.now(UTC)
        good = sale("T-good", occurred_at=occurred.isoformat(), card_fingerprint="fp-good")
        assert (await ingest.post("/v1/transactions", json={"items": [good]})).status_code == 202

        def told_overdue() -> list[float]:
            return [
                got.wall
                for got in merchant.received
                for alert in got.json()["data"]["alerts"]
                if alert["alert_id"] == "settlement.overdue:T-good"
            ]

        deadline = time.monotonic() + SLA_S + 30
        while not told_overdue():
            assert time.monotonic() < deadline, stack.logs()
            await asyncio.sleep(0.2)
        # On time: due_at + the group wait + a few seconds of pulses and delivery.
        assert told_overdue()[0] - occurred.timestamp() < SLA_S + 1 + 6
        assert stack.pid("matcher") == matcher_pid  # never restarted
        ready = (await matcher.get("/readyz")).json()
        assert ready["checks"]["matcher-loop"] == "ok"

        listed = dead_letters(stack.env, "list")
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()[1:]
        assert len(rows) == 2, listed.stdout  # each set aside once
        year_9999 = next(row for row in rows if "occurred_at" in row)
        unknown = next(row for row in rows if "unknown merchant M9" in row)
        assert "set aside" in year_9999 and "2100-01-01" in year_9999

        shown = dead_letters(stack.env, "show", unknown.split()[0])
        assert shown.returncode == 0, shown.stderr
        assert orjson.loads(shown.stdout)["key"] == "M9"
        assert "T-early" in orjson.loads(shown.stdout)["value"]

        # The cause fixed (M9 registered), the set-aside sale is sent back and matched.
        assert (await ingest.put("/v1/merchants/M9", json=PROFILE)).status_code == 201
        replayed = dead_letters(stack.env, "replay", unknown.split()[0])
        assert replayed.returncode == 0, replayed.stderr
        assert "1 dead letters replayed" in replayed.stdout
        deadline = time.monotonic() + 30
        while (await matcher.get("/v1/payments/T-early")).status_code != 200:
            assert time.monotonic() < deadline, stack.logs()
            await asyncio.sleep(0.2)

        again = dead_letters(stack.env, "replay", unknown.split()[0])
        assert again.returncode == 2 and "already replayed" in again.stderr
        assert "replayed 20" in dead_letters(stack.env, "list").stdout
    dead = await read_topic(broker_bootstrap, topics.dead_letter)
    assert len(dead) == 3  # two dead letters and one replay marker: nothing set aside twice
    assert stack.stop() == 0

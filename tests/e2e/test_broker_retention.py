"""`settlewatch up` puts retention on its embedded broker (issue 12), which enforces none itself:
once its topics hold more than SETTLEWATCH_EMBEDDED_BROKER_MAX_RECORDS records and everything has
been consumed, it is restarted empty — every accepted payment still matched, the dead letters
still listed under their ids, the pipeline working afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from settlewatch.common.kafka import Topics, read_topic
from settlewatch.common.publisher import Publisher
from tests.e2e.test_embedded_parts import all_ready, load, matched
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import RunningStack, StartStack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

TOKEN = "e2e-retention-token-01"
MAX_RECORDS = 120


def broker_pid(stack: RunningStack) -> int | None:
    try:
        return int((stack.data_dir / "run" / "broker.pid").read_text())
    except (FileNotFoundError, ValueError):  # between a stop and a start
        return None


def dead_letter_list(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "settlewatch.cli", "dead-letters", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()[1:]


async def test_a_full_embedded_broker_is_emptied_once_read_and_nothing_is_lost(
    start_stack: StartStack,
) -> None:
    stack = start_stack(
        {
            "SETTLEWATCH_API_TOKENS": f"{TOKEN}=acquirer",
            "SETTLEWATCH_EMBEDDED_BROKER_MAX_RECORDS": str(MAX_RECORDS),
        }
    )
    stack.wait_ready()
    bootstrap = f"127.0.0.1:{stack.broker_port}"
    topics = Topics("settlewatch")
    cli_env = stack.env | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=stack.url("ingest"), headers=auth, timeout=10) as ingest,
        httpx.AsyncClient(base_url=stack.url("matcher"), headers=auth, timeout=10) as matcher,
    ):
        assert (await ingest.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
        publisher = Publisher(bootstrap, enable_idempotence=False, timeout=10)
        await publisher.publish(topics.transactions, [(b"M1", b"not json")])
        await publisher.close()
        deadline = time.monotonic() + 60
        while not (letters := await asyncio.to_thread(dead_letter_list, cli_env)):
            assert time.monotonic() < deadline, stack.logs()
            await asyncio.sleep(0.5)

        first_broker = broker_pid(stack)
        # Sales keep coming as the log fills up: the broker is emptied under load, the last
        # sales before ingest is held included (they are applied after a last pulse).
        async with load(ingest) as accepted:
            deadline = time.monotonic() + 120
            while broker_pid(stack) in (first_broker, None):
                assert time.monotonic() < deadline, f"the broker was not restarted\n{stack.logs()}"
                await asyncio.sleep(0.5)
            await all_ready(stack)
        assert accepted
        await matched(matcher, accepted)  # nothing accepted was lost
        # The log started again: the first record, the poison one, is gone from it. (Counting
        # what is left told it only on an idle machine: pulses fill the new log every second.)
        left = await read_topic(bootstrap, topics.transactions)
        assert b"not json" not in [record.value for record in left]
        assert await asyncio.to_thread(dead_letter_list, cli_env) == letters  # same ids
        after = sale("AFTER", occurred_at=datetime.now(UTC).isoformat(), card_fingerprint="z")
        # As a client does: sent again while ingest is held for the next emptying (pulses
        # fill this small log again within a minute).
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                answer = await ingest.post("/v1/transactions", json={"items": [after]})
                if answer.status_code != 503:
                    break
            assert time.monotonic() < deadline, stack.logs()
            await asyncio.sleep(0.5)
        assert answer.status_code == 202, answer.text
        await matched(matcher, ["AFTER"])
    log = stack.stderr.read_text()
    assert "restarting it empty (retention)" in log
    assert "embedded broker died" not in log
    assert stack.stop() == 0

"""`settlewatch up` keeps its embedded PostgreSQL and broker running (issue 12): kill -9 of either
under load, and `up` brings it back, every service is ready again, what was consumed before the
crash is intact, and new payments are matched."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import SERVICES, RunningStack, StartStack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def all_ready(stack: RunningStack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(lambda: all(stack.ready(name) for name in SERVICES)):
        assert time.monotonic() < deadline, stack.logs()
        await asyncio.sleep(0.2)


async def matched(matcher: httpx.AsyncClient, txn_ids: list[str], timeout: float = 60.0) -> None:
    """Each payment is readable before `timeout`; asked again while the matcher restarts (`up`
    restarts it when it empties the broker, which a small broker limit makes happen often)."""
    deadline = time.monotonic() + timeout

    async def found(txn_id: str) -> bool:
        try:
            return (await matcher.get(f"/v1/payments/{txn_id}")).status_code == 200
        except httpx.TransportError:
            return False

    for txn_id in txn_ids:
        while not await found(txn_id):
            assert time.monotonic() < deadline, f"{txn_id} not matched"
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def load(ingest: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Sales posted continuously meanwhile, as an acquirer would (a 503 or no answer is retried
    later by the acquirer; here it is simply not counted). Yields the ids accepted."""
    accepted: list[str] = []

    async def post() -> None:
        n = 0
        while True:
            n += 1
            txn = sale(f"L{n}", occurred_at=datetime.now(UTC).isoformat(), card_fingerprint=f"f{n}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    await ingest.post("/v1/transactions", json={"items": [txn]})
                ).status_code == 202:
                    accepted.append(txn["txn_id"])
            await asyncio.sleep(0.05)

    task = asyncio.create_task(post())
    try:
        yield accepted
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_up_brings_back_a_killed_database_and_broker(start_stack: StartStack) -> None:
    stack = start_stack({"SETTLEWATCH_API_TOKENS": "e2e-embedded-token=acquirer"})
    stack.wait_ready()
    auth = {"authorization": "Bearer e2e-embedded-token"}
    async with (
        httpx.AsyncClient(base_url=stack.url("ingest"), headers=auth, timeout=10) as ingest,
        httpx.AsyncClient(base_url=stack.url("matcher"), headers=auth, timeout=10) as matcher,
    ):
        assert (await ingest.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
        now = datetime.now(UTC).isoformat()
        before = [sale(f"B{n}", occurred_at=now, card_fingerprint=f"b{n}") for n in range(20)]
        assert (await ingest.post("/v1/transactions", json={"items": before})).status_code == 202
        await matched(matcher, [t["txn_id"] for t in before])

        async with load(ingest):
            postgres_pid = int((stack.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
            os.kill(postgres_pid, signal.SIGKILL)
            await asyncio.sleep(3)
            await all_ready(stack)
            new_postgres = int((stack.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
            assert new_postgres != postgres_pid

            broker_pid = int((stack.data_dir / "run" / "broker.pid").read_text())
            os.kill(broker_pid, signal.SIGKILL)
            await asyncio.sleep(3)
            await all_ready(stack)
            assert int((stack.data_dir / "run" / "broker.pid").read_text()) != broker_pid

        # What was consumed before the crashes is intact (it lives in PostgreSQL)...
        await matched(matcher, [t["txn_id"] for t in before], timeout=5)
        # ...and the pipeline works again end to end.
        now = datetime.now(UTC).isoformat()
        after = [sale(f"A{n}", occurred_at=now, card_fingerprint=f"a{n}") for n in range(5)]
        assert (await ingest.post("/v1/transactions", json={"items": after})).status_code == 202
        await matched(matcher, [t["txn_id"] for t in after])
    log = stack.stderr.read_text()
    assert "embedded postgres died" in log and "embedded broker died" in log
    assert stack.stop() == 0

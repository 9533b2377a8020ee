"""Merchant webhooks against a real local receiver, on a clock the test moves (SPEC §7)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from settlewatch.alerts.core.retry import SCHEDULE
from settlewatch.alerts.delivery import Deliverer
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.alerts.views import delivery_json
from tests.alerts.integration.conftest import LOCAL, SECRET, T0, FakeClock, add_merchant, overdue
from tests.support.receiver import Received, receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
WAIT = timedelta(seconds=10)
JUST_BEFORE = timedelta(milliseconds=1)


def verify(got: Received) -> None:
    """The signature, checked by the Standard Webhooks reference code at the header's time."""
    sent_at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
    expected = standardwebhooks.Webhook(SECRET).sign(
        got.headers["webhook-id"], sent_at, got.body.decode()
    )
    assert got.headers["webhook-signature"] == expected


def alerts_by_webhook_id(received: list[Received]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for got in received:
        seen[got.headers["webhook-id"]] |= {a["alert_id"] for a in got.json()["data"]["alerts"]}
    return seen


async def delivery_log(deliveries: Deliveries, merchant_id: str = "M1") -> list[dict]:
    page = await deliveries.page(merchant_id=merchant_id, status=None, after=None, limit=50)
    return [delivery_json(delivery) for delivery in page]


async def test_receiver_down_then_up_gets_everything_once_on_the_spec_schedule(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        rec.answer = lambda _: (503, {}) if len(rec.received) <= 4 else (200, {})  # down, then up
        for n in range(40):  # 40 overdue payments of one merchant within one group wait
            await alerts.absorb([overdue(f"T{n:02d}")], clock())
            clock.advance(timedelta(milliseconds=200))
        clock.to(T0 + WAIT - JUST_BEFORE)
        assert not await deliverer.run_once() and rec.received == []  # still gathering
        clock.to(T0 + WAIT)
        assert await deliverer.run_once() and len(rec.received) == 1
        for delay in SCHEDULE[:4]:
            clock.advance(delay - JUST_BEFORE)
            sent = len(rec.received)
            await deliverer.run_once()
            assert len(rec.received) == sent  # not one moment early
            clock.advance(JUST_BEFORE)
            await deliverer.run_once()
            assert len(rec.received) == sent + 1
        assert not await deliverer.run_once()  # delivered: nothing left to do

    (delivery,) = await delivery_log(deliveries)
    assert delivery["status"] == "delivered" and len(delivery["alert_ids"]) == 40
    attempts = delivery["attempts"]
    assert [a["status_code"] for a in attempts] == [503, 503, 503, 503, 200]
    times = [datetime.fromisoformat(a["at"]) for a in attempts]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == list(SCHEDULE[:4])
    for got in rec.received:
        verify(got)
    by_id = alerts_by_webhook_id(rec.received)
    assert list(by_id) == [delivery["delivery_id"]]  # every retry reuses the webhook-id
    assert by_id[delivery["delivery_id"]] == {f"settlement.overdue:T{n:02d}" for n in range(40)}
    body = rec.received[-1].json()
    assert body["type"] == "settlement.overdue" and body["data"]["merchant_id"] == "M1"
    alert = body["data"]["alerts"][0]
    assert alert["evidence"]["rrn"] == "532410283771" and "未按 T+1 到账" in alert["summary"]


async def test_exhausted_retries_fail_and_a_manual_retry_sends_again(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        rec.answer = lambda _: (500, {})
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        for delay in SCHEDULE:
            clock.advance(delay)
            await deliverer.run_once()
        (delivery,) = await delivery_log(deliveries)
        assert delivery["status"] == "failed" and len(delivery["attempts"]) == 8
        clock.advance(timedelta(days=1))
        assert not await deliverer.run_once()  # failed stays failed
        rec.answer = lambda _: (204, {})
        assert await deliveries.retry(delivery["delivery_id"], clock()) == "failed"
        await deliverer.run_once()
    (delivery,) = await delivery_log(deliveries)
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 9
    assert len({got.headers["webhook-id"] for got in rec.received}) == 1


async def test_410_disables_the_endpoint_until_a_manual_retry(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        rec.answer = lambda _: (410, {})
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        await alerts.absorb([overdue("T2")], clock())  # a later group
        clock.advance(WAIT)
        await deliverer.run_once()
        assert len(rec.received) == 1  # the disabled endpoint is not called again
        first, second = sorted(await delivery_log(deliveries), key=lambda d: d["created_at"])
        assert first["status"] == second["status"] == "failed"
        assert second["attempts"] == [] and "disabled" in second["last_error"]
        rec.answer = lambda _: (200, {})
        await deliveries.retry(second["delivery_id"], clock())
        await deliverer.run_once()
    assert len(rec.received) == 2
    statuses = {d["delivery_id"]: d["status"] for d in await delivery_log(deliveries)}
    assert statuses[second["delivery_id"]] == "delivered"


async def test_retry_after_of_a_busy_receiver_is_honoured(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        rec.answer = lambda _: (429, {"retry-after": "3600"})
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        clock.advance(timedelta(minutes=59))
        await deliverer.run_once()
        assert len(rec.received) == 1
        clock.advance(timedelta(minutes=1))
        await deliverer.run_once()
        assert len(rec.received) == 2


async def test_merchants_and_types_get_separate_deliveries_and_no_webhook_means_none(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/m1")
        await add_merchant(database_url, "M2", f"{rec.url}/m2", locale="en")
        await add_merchant(database_url, "M3", None)
        await alerts.absorb(
            [overdue("T1"), overdue("T2", merchant_id="M2"), overdue("T3", merchant_id="M3")],
            clock(),
        )
        clock.advance(WAIT)
        await deliverer.run_once()
    assert sorted(got.path for got in rec.received) == ["/m1", "/m2"]
    m2 = next(got for got in rec.received if got.path == "/m2").json()
    assert m2["data"]["alerts"][0]["summary"].startswith("Transaction T2 (CN¥128.00")
    assert await delivery_log(deliveries, "M3") == []
    assert (await alerts.get("settlement.overdue:T3")) is not None  # still an alert


async def forget(alerts: Alerts, deliveries: Deliveries, before: datetime) -> tuple[int, int]:
    """As the retention loop does: the alerts first, then the deliveries no alert is in."""
    return await alerts.forget(before), await deliveries.forget(before)


async def test_resolved_alerts_and_ended_deliveries_are_forgotten_after_the_retention(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        await alerts.absorb([overdue("T1"), overdue("T2")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()  # one delivery holding both
        await alerts.absorb([overdue("T1", state="resolved")], clock())
        rec.answer = lambda _: (500, {})
        await alerts.absorb([overdue("T3")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()  # T3's delivery fails and waits for its retry
    assert await forget(alerts, deliveries, T0) == (0, 0)  # nothing is older than T0
    later = clock() + timedelta(days=1)
    assert await forget(alerts, deliveries, later) == (1, 0)  # T1; its delivery holds open T2
    assert await alerts.get("settlement.overdue:T2") is not None
    await alerts.absorb([overdue("T2", state="resolved")], clock())
    await alerts.absorb([overdue("T3", state="resolved")], clock())
    assert await forget(alerts, deliveries, later) == (2, 1)  # T3's delivery is pending: kept
    (kept,) = await delivery_log(deliveries)
    assert kept["status"] == "pending" and kept["alert_ids"] == []


async def test_a_name_that_starts_resolving_to_a_private_address_is_not_sent_to(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    """DNS rebinding (SPEC §14): registered while the name was public, it now names 10.0.0.1;
    the attempt fails with that reason and nothing is sent, to any address."""
    clock = FakeClock()
    names = {"hooks.m1.test": "127.0.0.1"}

    async def resolver(host: str, port: int) -> list[str]:
        return [names[host]]

    async with (
        receiver() as rec,
        Deliverer(
            deliveries, group_wait=WAIT, clock=clock, resolver=resolver, allowed=LOCAL
        ) as deliverer,
    ):
        port = rec.url.rsplit(":", 1)[1]
        await add_merchant(database_url, "M1", f"http://hooks.m1.test:{port}/hook")
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        assert len(rec.received) == 1  # to the address checked, under the URL's name
        assert rec.received[0].headers["host"] == f"hooks.m1.test:{port}"

        names["hooks.m1.test"] = "10.0.0.1"
        await alerts.absorb([overdue("T2")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
    assert len(rec.received) == 1
    failed = [a for d in await delivery_log(deliveries) for a in d["attempts"] if a["error"]]
    assert [(a["error"], a["status_code"]) for a in failed] == [
        ("not sent: hooks.m1.test resolves to 10.0.0.1, which is not a public address", None)
    ]


async def test_an_endpoint_that_trickles_its_answer_fails_the_attempt_at_the_deadline(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()
    deadline = timedelta(seconds=1)
    async with (
        receiver() as rec,
        Deliverer(
            deliveries, group_wait=WAIT, clock=clock, timeout=deadline, allowed=LOCAL
        ) as deliverer,
    ):
        rec.trickle = lambda _: 0.2  # headers at once, then a byte every 0.2 s, never ending
        await add_merchant(database_url, "M1", f"{rec.url}/hook")
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await asyncio.wait_for(deliverer.run_once(), timeout=30)
    (delivery,) = await delivery_log(deliveries)
    (attempt,) = delivery["attempts"]
    assert delivery["status"] == "pending"  # to be retried on the schedule
    assert attempt["status_code"] is None and attempt["error"] == "no answer within 1 s"
    assert attempt["latency_ms"] >= deadline.total_seconds() * 1000


async def test_endpoints_that_hang_hold_only_their_own_lanes(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    """Three merchants' endpoints hang with many deliveries each; another merchant's alert is
    delivered while they hang, and the hanging ones never have more than their share in
    flight."""
    clock = FakeClock()
    hanging = [f"SLOW{n}" for n in range(3)]
    async with (
        receiver() as rec,
        Deliverer(
            deliveries,
            group_wait=WAIT,
            clock=clock,
            timeout=timedelta(seconds=60),
            lanes=8,
            per_endpoint=2,
            interval=0.05,
            allowed=LOCAL,
        ) as deliverer,
    ):
        rec.trickle = lambda got: 1.0 if got.path.startswith("/slow") else None
        for merchant in hanging:
            await add_merchant(database_url, merchant, f"{rec.url}/slow/{merchant}")
        for n in range(4):  # a group each: 4 deliveries to each hanging endpoint
            await alerts.absorb([overdue(f"{m}-T{n}", m) for m in hanging], clock())
            clock.advance(WAIT)
        await add_merchant(database_url, "FAST", f"{rec.url}/fast")
        clock.advance(WAIT)
        running = asyncio.create_task(deliverer.run())
        try:
            while not any(got.path == "/slow/SLOW2" for got in rec.received):
                await asyncio.sleep(0.05)  # every hanging endpoint has attempts under way
            await alerts.absorb([overdue("FAST-T1", "FAST")], clock())
            clock.advance(WAIT)
            async with asyncio.timeout(20):
                while not any(got.path == "/fast" for got in rec.received):
                    await asyncio.sleep(0.05)
            by_path = Counter(got.path for got in rec.received)
            assert all(by_path[f"/slow/{m}"] == 2 for m in hanging), by_path
            assert len(rec.received) == 7  # the slow ones still trickle
        finally:
            running.cancel()
            with suppress(asyncio.CancelledError):
                await running

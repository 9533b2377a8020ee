"""Ingest → broker → matcher → findings, on the real broker and database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from settlewatch.common.config import IngestSettings, MatcherSettings
from settlewatch.common.events import CalendarYearLoaded, decode_event, encode_event
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.publisher import Publisher
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher import engine
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.matcher.core import matcher as matcher_core
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, TOKENS, sale
from tests.support.apps import app_client
from tests.support.kafka import decoded, read_topic
from tests.support.matcher import matcher_clock, service_env

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


def settings(
    database_url: str, bootstrap: str, prefix: str
) -> tuple[IngestSettings, MatcherSettings]:
    env = service_env(database_url, bootstrap, prefix, TOKENS)
    return IngestSettings(**env), MatcherSettings(**env)  # type: ignore[arg-type]


async def test_findings_flow_from_ingest_to_the_findings_topic_once_across_a_restart(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=2, replication_factor=1)
    ingest_settings, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)

    async def findings() -> list[str]:
        return sorted(
            f"{decoded(r)['id']}#{decoded(r)['state']}"
            for r in await read_topic(broker_bootstrap, topics.findings)
        )

    # The registry is the process's: other tests' settlements count too.
    delays_before = (
        REGISTRY.get_sample_value(
            "settlewatch_matcher_settlement_delay_seconds_count", {"bank_code": "ICBC"}
        )
        or 0.0
    )
    async with app_client(create_ingest(ingest_settings), ACQUIRER) as ingest:
        d0 = PROFILE | {"settlement_cycle": "D0"}
        assert (await ingest.put("/v1/merchants/M1", json=d0)).status_code == 201
        # Two days ago, due at the end of that day: overdue now, not yet expired (a backfill).
        when = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        batch = [
            sale("T-unpaid", occurred_at=when, card_fingerprint="fp-1"),
            sale("T-paid", occurred_at=when, card_fingerprint="fp-2"),
            sale("T-voided", occurred_at=when, card_fingerprint="fp-3"),
            sale("V1", type="void", original_txn_id="T-voided", occurred_at=when),
            # A refund not yet debited: money the merchant owes back, not money owed to it.
            sale(
                "R-unpaid",
                type="refund",
                original_txn_id="T-paid",
                amount_minor=2000,
                occurred_at=when,
                card_fingerprint="fp-2",
            ),
        ]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202
        paid = {
            "settlement_id": "S1",
            "merchant_id": "M1",
            "bank_code": "ICBC",
            "status": "settled",
            "occurred_at": "2025-11-21T09:00:00+08:00",
            "items": [
                {"txn_id": "T-paid", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}
            ],
        }
        assert (await ingest.post("/v1/settlements", json={"items": [paid]})).status_code == 202

        async with app_client(create_matcher(matcher_settings), ACQUIRER) as matcher:
            await eventually(lambda: _has(findings, "settlement.overdue:T-unpaid#open"))
            unpaid = (await matcher.get("/v1/payments/T-unpaid")).json()
            assert (unpaid["status"], unpaid["settlement_id"]) == ("overdue", None)
            assert [h["event"] for h in unpaid["history"]] == ["sale received", "overdue"]
            paid_now = (await matcher.get("/v1/payments/T-paid")).json()
            assert (paid_now["status"], paid_now["settlement_id"]) == ("settled", "S1")
            assert paid_now["settled_net_minor"] == 12723
            slip = {k: paid_now[k] for k in ("bank_code", "terminal_id", "rrn", "stan")}
            assert slip == {
                "bank_code": "ICBC",
                "terminal_id": "POS-1",
                "rrn": "532410283771",
                "stan": None,
            }
            assert (await matcher.get("/v1/payments/T-voided")).json()["status"] == "cancelled"
            as_m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
            summary = (await matcher.get("/v1/merchants/M1/summary", headers=as_m1)).json()
            assert summary["overdue"] == [
                {"currency": "CNY", "count": 2, "amount_minor": 12800 - 2000}
            ]
            assert summary["pending"] == []
            assert (await matcher.get("/v1/merchants/M2/summary", headers=as_m1)).status_code == 404
            assert (await matcher.get("/v1/payments/T-nope")).status_code == 404
            overdue_gauge = (
                'settlewatch_matcher_open_payments{bank_code="ICBC",status="overdue"} 2.0'
            )

            async def gauge_refreshed() -> bool:  # read from the store every few seconds
                return overdue_gauge in (await matcher.get("/metrics")).text

            await eventually(gauge_refreshed)
            metrics = (await matcher.get("/metrics")).text
            top = 'settlewatch_matcher_top_overdue_amount_minor{currency="CNY",merchant_id="M1"}'
            assert f"{top} 10800.0" in metrics  # the refund owed back counts negative
            assert (
                'settlewatch_matcher_findings_total{state="open",type="settlement.overdue"}'
                in metrics
            )
            assert "settlewatch_matcher_clock_lag_seconds" in metrics
            assert (
                'settlewatch_matcher_settlement_delay_seconds_count{bank_code="ICBC"} '
                f"{delays_before + 1}" in metrics
            )
        overdue = ["settlement.overdue:R-unpaid#open", "settlement.overdue:T-unpaid#open"]
        assert await findings() == overdue

        restarted_at = datetime.now(UTC)
        async with app_client(create_matcher(matcher_settings)):
            await eventually(lambda: _clock_past(database_url, restarted_at))
        assert await findings() == overdue  # not twice


async def _has(findings: Callable[[], Awaitable[list[str]]], key: str) -> bool:
    return key in await findings()


async def _clock_past(database_url: str, moment: datetime) -> bool:
    clock = await matcher_clock(database_url)
    return clock is not None and clock > moment


async def test_more_payments_due_than_one_round_holds_all_fire_once_at_the_same_clock(
    database_url: str, broker_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "TIMER_BATCH", 2)  # five due payments take three rounds
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=1, replication_factor=1)
    ingest_settings, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)
    async with app_client(create_ingest(ingest_settings), ACQUIRER) as ingest:
        d0 = PROFILE | {"settlement_cycle": "D0"}
        assert (await ingest.put("/v1/merchants/M1", json=d0)).status_code == 201
        when = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        batch = [sale(f"T{i}", occurred_at=when, card_fingerprint=f"fp-{i}") for i in range(5)]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202

        async def overdue() -> list[dict[str, object]]:
            records = await read_topic(broker_bootstrap, topics.findings)
            return [decoded(r) for r in records if decoded(r)["type"] == "settlement.overdue"]

        async def five() -> bool:
            return len(await overdue()) >= 5

        async with app_client(create_matcher(matcher_settings)):
            await eventually(five)
            await asyncio.sleep(1.5)  # and nothing more comes
            fired = await overdue()
    assert sorted(str(f["txn_id"]) for f in fired) == [f"T{i}" for i in range(5)]
    assert len({f["at"] for f in fired}) == 1


async def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_is_matched(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=1, replication_factor=1)
    _, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)
    profile = {"merchant_id": "M1", "profile": PROFILE}
    now = datetime.now(UTC).isoformat()
    stranger = sale("T-stranger", merchant_id="M-NEVER-SEEN", occurred_at=now)
    known = sale("T-known", occurred_at=now)  # due the next working day: pending
    pulse = {"at": now, "source": "test"}
    await publisher.publish(
        topics.transactions,
        [
            (b"M1", encode_event("merchant", orjson.dumps(profile))),
            (b"M1", b"{not json"),
            (b"M-NEVER-SEEN", encode_event("transaction", orjson.dumps(stranger))),
            (b"M1", encode_event("transaction", orjson.dumps(known))),
        ],
    )
    for topic in (topics.transactions, topics.settlements):
        await publisher.publish_everywhere(topic, encode_event("pulse", orjson.dumps(pulse)))
    await publisher.close()

    async def two_dead() -> bool:
        return len(await read_topic(broker_bootstrap, topics.dead_letter)) >= 2

    async with app_client(create_matcher(matcher_settings), ACQUIRER) as matcher:
        await eventually(two_dead)
        await eventually(lambda: _clock_past(database_url, datetime.now(UTC) - timedelta(hours=1)))
        assert (await matcher.get("/v1/payments/T-known")).json()["status"] == "pending"
        assert (await matcher.get("/v1/payments/T-stranger")).status_code == 404
    dead = [decoded(r) for r in await read_topic(broker_bootstrap, topics.dead_letter)]
    assert [(d["partition"], d["offset"], d["key"]) for d in dead] == [
        (0, 1, "M1"),
        (0, 2, "M-NEVER-SEEN"),
    ]
    assert dead[0]["value"] == "{not json"
    assert "json" in dead[0]["reason"].lower()
    assert dead[1]["reason"] == "unknown merchant M-NEVER-SEEN"
    assert (
        decode_event(dead[1]["value"].encode())["body"]
        == decode_event(encode_event("transaction", orjson.dumps(stranger)))["body"]
    )  # the record as it was, to send back once the merchant is registered


async def test_a_record_the_core_cannot_apply_is_dead_lettered_once_and_the_rest_goes_on(
    database_url: str, broker_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: an exception while applying one record stopped the whole matcher for good."""
    real_deadline = matcher_core.deadline

    def broken_for_t_bad(occurred_at: datetime, schedule: Any, *args: Any, **kwargs: Any) -> Any:
        if occurred_at.microsecond == 123456:  # only T-bad has these microseconds
            raise OverflowError("date value out of range")
        return real_deadline(occurred_at, schedule, *args, **kwargs)

    monkeypatch.setattr(matcher_core, "deadline", broken_for_t_bad)
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=1, replication_factor=1)
    ingest_settings, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)
    now = datetime.now(UTC)
    # T+1 due well before now, whatever the time of day, weekends and holidays: overdue at once.
    due_soon = (now - timedelta(days=14)).replace(microsecond=0)
    async with (
        app_client(create_ingest(ingest_settings), ACQUIRER) as ingest,
        app_client(create_matcher(matcher_settings), ACQUIRER) as matcher,
    ):
        assert (await ingest.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
        bad = sale("T-bad", occurred_at=due_soon.replace(microsecond=123456).isoformat())
        good = sale("T-good", occurred_at=due_soon.isoformat(), card_fingerprint="fp-2")
        for txn in (bad, good):  # two requests: the good one is published after the bad one
            assert (await ingest.post("/v1/transactions", json={"items": [txn]})).status_code == 202

        async def good_overdue() -> bool:
            response = await matcher.get("/v1/payments/T-good")
            return response.status_code == 200 and response.json()["status"] == "overdue"

        await eventually(good_overdue)
        assert (await matcher.get("/v1/payments/T-bad")).status_code == 404
        assert (await matcher.get("/readyz")).json()["checks"]["matcher-loop"] == "ok"
    dead = [decoded(r) for r in await read_topic(broker_bootstrap, topics.dead_letter)]
    assert len(dead) == 1  # once, though its partition went on being consumed
    assert dead[0]["reason"].startswith("the matcher cannot apply it: OverflowError")
    assert dead[0]["error"]["type"] == "OverflowError"
    assert dead[0]["error"]["where"].endswith("in broken_for_t_bad")
    assert decode_event(dead[0]["value"].encode())["body"]["txn_id"] == "T-bad"
    findings = [decoded(r) for r in await read_topic(broker_bootstrap, topics.findings)]
    assert [f["txn_id"] for f in findings if f["type"] == "settlement.overdue"] == ["T-good"]


async def test_a_loaded_calendar_year_moves_deadlines_through_the_log(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    """SPEC §10 on the real broker and store: a T1 sale before the 2027 Spring Festival is due on
    an estimated Friday; it fires; the year is loaded (a record in every partition, as ingest
    publishes it): the overdue resolves as deadline_moved, the payment is due after the
    holiday, and calendar.missing opens and resolves once."""
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=2, replication_factor=1)
    _, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)

    async def pulse(at: str) -> None:
        body = orjson.dumps({"at": at, "source": "test"})
        for topic in (topics.transactions, topics.settlements):
            await publisher.publish_everywhere(topic, encode_event("pulse", body))

    async def findings() -> list[dict[str, Any]]:
        return [decoded(r) for r in await read_topic(broker_bootstrap, topics.findings)]

    profile = {"merchant_id": "M1", "profile": PROFILE}
    txn = sale("T-festival", occurred_at="2027-02-04T10:00:00+08:00")
    await publisher.publish(
        topics.transactions,
        [
            (b"M1", encode_event("merchant", orjson.dumps(profile))),
            (b"M1", encode_event("transaction", orjson.dumps(txn))),
        ],
    )
    await pulse("2027-02-06T01:00:00+08:00")
    try:
        async with app_client(create_matcher(matcher_settings), ACQUIRER) as matcher:

            async def fired() -> bool:
                return any(f["id"] == "settlement.overdue:T-festival" for f in await findings())

            await eventually(fired)
            payment = (await matcher.get("/v1/payments/T-festival")).json()
            assert (payment["status"], payment["deadline_basis"]) == ("overdue", "estimated")
            gauge = 'settlewatch_matcher_calendar_missing{calendar="CN",year="2027"} 1.0'
            assert gauge in (await matcher.get("/metrics")).text
            assert payment["due_at"] == "2027-02-06T00:00:00+08:00"

            year = CalendarYearLoaded(
                calendar="CN",
                year=2027,
                version=1,
                holidays=[date(2027, 2, 5), *(date(2027, 2, d) for d in range(8, 13))],
                workdays=[date(2027, 2, 20)],
                source="test",
            )
            await publisher.publish_everywhere(
                topics.transactions, encode_event("calendar", year.model_dump_json().encode())
            )
            await pulse("2027-02-06T02:00:00+08:00")

            async def moved() -> bool:
                return any(
                    (f["id"], f["state"]) == ("settlement.overdue:T-festival", "resolved")
                    for f in await findings()
                )

            await eventually(moved)
            payment = (await matcher.get("/v1/payments/T-festival")).json()
            assert (payment["status"], payment["deadline_basis"]) == ("pending", "calendar")
            assert payment["due_at"] == "2027-02-16T00:00:00+08:00"
            assert "calendar CN 2027 loaded (version 1)" in payment["history"][-1]["event"]
            assert gauge not in (await matcher.get("/metrics")).text
    finally:
        await publisher.close()
    resolved = next(
        f for f in await findings() if (f["type"], f["state"]) == ("settlement.overdue", "resolved")
    )
    assert resolved["evidence"]["resolution"].startswith("deadline_moved: now due 2027-02-16")
    missing = [(f["id"], f["state"]) for f in await findings() if f["type"] == "calendar.missing"]
    assert missing == [
        ("calendar.missing:CN:2027", "open"),
        ("calendar.missing:CN:2027", "resolved"),
    ]

"""What the acquirer's backend sees when it sends good data, and what lands on the topics."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics
from tests.ingest.integration.conftest import PARTITIONS, PROFILE, sale, settlement
from tests.support.kafka import data_events, decoded, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_transactions_are_published_keyed_by_merchant_in_its_partition(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    for merchant in ("M2", "M3"):
        assert (await client.put(f"/v1/merchants/{merchant}", json=PROFILE)).status_code == 201
    batch = [sale(f"T{i}", merchant_id=("M1", "M2", "M3")[i % 3]) for i in range(30)]
    response = await client.post("/v1/transactions", json={"items": batch})
    assert response.status_code == 202
    assert response.json() == {"accepted": 30}

    topic = Topics(ingest_settings.topic_prefix).transactions
    records = [
        r
        for r in await read_topic(ingest_settings.kafka_bootstrap_servers, topic)
        if decoded(r)["kind"] == "transaction"
    ]
    assert sorted(decoded(r)["body"]["txn_id"] for r in records) == sorted(
        t["txn_id"] for t in batch
    )
    partitions_by_merchant: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        assert record.key == decoded(record)["body"]["merchant_id"].encode()
        partitions_by_merchant[record.key].add(record.partition)
    # one partition per merchant, the one Kafka's default (murmur2) partitioner picks for the key
    all_partitions = list(range(PARTITIONS))
    assert partitions_by_merchant == {
        key: {DefaultPartitioner()(key, all_partitions, all_partitions)}
        for key in partitions_by_merchant
    }


async def test_an_event_on_the_topic_is_the_item_as_sent(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    item = sale("T-exact", occurred_at="2025-11-20T02:02:31Z", stan="000123", auth_code="A1B2C3")
    assert (await client.post("/v1/transactions", json={"items": [item]})).status_code == 202
    topic = Topics(ingest_settings.topic_prefix).transactions
    [event] = [
        e
        for e in await data_events(ingest_settings.kafka_bootstrap_servers, topic)
        if e["kind"] == "transaction"
    ]
    assert event["v"] == 1
    assert event["body"] == item | {"occurred_at": "2025-11-20T02:02:31Z"}


async def test_settlements_are_published_keyed_by_merchant(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    failed = settlement("S2", status="failed", failure_reason="账户已冻结")
    refund_line = {"txn_id": "R1", "gross_minor": -2800, "fee_minor": 0, "net_minor": -2800}
    response = await client.post(
        "/v1/settlements", json={"items": [settlement("S1", items=[refund_line]), failed]}
    )
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    topic = Topics(ingest_settings.topic_prefix).settlements
    events = await data_events(ingest_settings.kafka_bootstrap_servers, topic)
    assert {e["body"]["settlement_id"]: e["body"]["status"] for e in events} == {
        "S1": "settled",
        "S2": "failed",
    }
    assert [e["body"]["failure_reason"] for e in events if e["body"]["status"] == "failed"] == [
        "账户已冻结"
    ]


async def test_resending_a_batch_is_harmless(client: httpx.AsyncClient) -> None:
    batch = {"items": [sale("T1"), sale("T2")]}
    first = await client.post("/v1/transactions", json=batch)
    again = await client.post("/v1/transactions", json=batch)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json() == again.json() == {"accepted": 2}


async def test_a_full_batch_of_5000_is_accepted(client: httpx.AsyncClient) -> None:
    batch = {"items": [sale(f"T{i}") for i in range(5000)]}
    response = await client.post("/v1/transactions", json=batch)
    assert response.status_code == 202
    assert response.json() == {"accepted": 5000}


async def test_merchant_profile_round_trip_masks_the_webhook_secret_and_the_account(
    client: httpx.AsyncClient,
) -> None:
    created = await client.put(
        "/v1/merchants/M9", json=PROFILE | {"settlement_cycle": "D1", "locale": "en"}
    )
    assert created.status_code == 201
    account = {"holder": "上海小笼包", "bank_name": "工商银行", "number": "6222020200112233445"}
    updated = await client.put(
        "/v1/merchants/M9", json=PROFILE | {"settlement_cycle": "T2", "receiving_account": account}
    )
    assert updated.status_code == 200
    fetched = (await client.get("/v1/merchants/M9")).json()
    assert fetched["settlement_cycle"] == "T2"
    assert fetched["locale"] == "zh-CN"  # the update replaced the whole profile
    assert fetched["timezone"] == "Asia/Shanghai" and fetched["cutoff_time"] == "23:00"
    assert fetched["webhook"] == {"url": PROFILE["webhook"]["url"], "secret": "whsec_**********"}
    assert PROFILE["webhook"]["secret"] not in created.text + updated.text + str(fetched)
    assert fetched["receiving_account"] == account | {"number": "6222 **** **** 3445"}
    assert account["number"] not in updated.text + str(fetched)
    bad = await client.put(
        "/v1/merchants/M9", json=PROFILE | {"receiving_account": account | {"number": "62-22"}}
    )
    assert bad.status_code == 422 and "receiving_account" in bad.text


async def test_merchant_changes_reach_the_matcher_without_the_webhook_secret(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    topic = Topics(ingest_settings.topic_prefix).transactions
    records = [
        r
        for r in await read_topic(ingest_settings.kafka_bootstrap_servers, topic)
        if decoded(r)["kind"] == "merchant"
    ]
    [m1] = records
    assert m1.key == b"M1"
    assert decoded(m1)["body"]["merchant_id"] == "M1"
    assert decoded(m1)["body"]["profile"]["settlement_cycle"] == "T1"
    assert b"whsec_" not in (m1.value or b"")


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"settlement_cycle": "T10"}, ["settlement_cycle"]),
        ({"settlement_cycle": "instant"}, ["instant_sla"]),
        ({"settlement_cycle": "instant", "instant_sla": 7200}, ["instant_sla"]),
        ({"settlement_cycle": "instant", "instant_sla": "P9000Y"}, ["instant_sla"]),
        ({"settlement_cycle": "instant", "instant_sla": "P31D"}, ["instant_sla"]),
        ({"timezone": "Mars/Olympus"}, ["timezone"]),
        ({"calendar": "US"}, ["calendar"]),
        ({"cutoff_time": "24:00"}, ["cutoff_time"]),
        ({"due_time": "25:00"}, ["due_time"]),
        ({"mdr_bps": 60.5}, ["mdr_bps"]),
        ({"locale": "fr"}, ["locale"]),
        (
            {
                "webhook": {
                    "url": "http://merchant.example.com/hook",
                    "secret": PROFILE["webhook"]["secret"],
                }
            },
            ["webhook", "url"],
        ),
        (
            # A name that starts like a loopback address is a public host: https (issue 28).
            {
                "webhook": {
                    "url": "http://127.0.0.1.nip.io/hook",
                    "secret": PROFILE["webhook"]["secret"],
                }
            },
            ["webhook", "url"],
        ),
        (
            {"webhook": {"url": "https://merchant.example.com/hook", "secret": "s3cret"}},
            ["webhook", "secret"],
        ),
    ],
)
async def test_bad_merchant_profiles_name_the_field(
    client: httpx.AsyncClient, changes: dict[str, object], loc: list[str]
) -> None:
    response = await client.put("/v1/merchants/M5", json=PROFILE | changes)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["errors"]]
    assert (await client.get("/v1/merchants/M5")).status_code == 404


async def test_a_loopback_http_webhook_is_allowed(client: httpx.AsyncClient) -> None:
    hook = {"url": "http://127.0.0.1:9999/hook", "secret": PROFILE["webhook"]["secret"]}
    assert (
        await client.put("/v1/merchants/M6", json=PROFILE | {"webhook": hook})
    ).status_code == 201


async def test_maintenance_windows_are_idempotent_listed_and_sent_to_every_partition(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    window = {
        "bank_code": "ICBC",
        "starts_at": "2025-11-22T00:00:00+08:00",
        "ends_at": "2025-11-22T06:00:00+08:00",
        "reason": "core banking upgrade",
    }
    first = await client.post("/v1/maintenance-windows", json=window)
    assert first.status_code == 201
    # the same window (same instants written in UTC), announced again with a new reason
    again = await client.post(
        "/v1/maintenance-windows",
        json=window
        | {
            "starts_at": "2025-11-21T16:00:00Z",
            "ends_at": "2025-11-21T22:00:00Z",
            "reason": "extended",
        },
    )
    assert again.json()["id"] == first.json()["id"]
    other = {**window, "bank_code": "CMB"}
    assert (await client.post("/v1/maintenance-windows", json=other)).status_code == 201

    icbc = (await client.get("/v1/maintenance-windows", params={"bank_code": "ICBC"})).json()[
        "items"
    ]
    assert [(w["id"], w["reason"]) for w in icbc] == [(first.json()["id"], "extended")]
    assert len((await client.get("/v1/maintenance-windows")).json()["items"]) == 2

    topic = Topics(ingest_settings.topic_prefix).transactions
    records = await read_topic(ingest_settings.kafka_bootstrap_servers, topic)
    icbc_partitions = {
        r.partition
        for r in records
        if decoded(r)["kind"] == "maintenance" and decoded(r)["body"]["bank_code"] == "ICBC"
    }
    assert icbc_partitions == set(range(PARTITIONS))


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "loc"),
    [
        ("2025-11-22T06:00:00+08:00", "2025-11-22T00:00:00+08:00", ["ends_at"]),  # before start
        ("9999-12-31T00:00:00Z", "9999-12-31T06:00:00Z", ["starts_at"]),
        ("2025-11-22T00:00:00+08:00", "2025-12-24T00:00:00+08:00", ["ends_at"]),  # 32 days
        (  # announced more than a year ahead
            (datetime.now(UTC) + timedelta(days=400)).isoformat(),
            (datetime.now(UTC) + timedelta(days=401)).isoformat(),
            ["ends_at"],
        ),
    ],
    ids=["ends-before-start", "year-9999", "32-days", "over-a-year-ahead"],  # stable: xdist
)
async def test_a_window_outside_sane_bounds_is_refused(
    client: httpx.AsyncClient, starts_at: str, ends_at: str, loc: list[str]
) -> None:
    window = {"bank_code": "ICBC", "starts_at": starts_at, "ends_at": ends_at, "reason": "x"}
    response = await client.post("/v1/maintenance-windows", json=window)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["errors"]]


async def test_metrics_count_events_by_kind_and_outcome_and_time_requests_by_route(
    client: httpx.AsyncClient,
) -> None:
    def sample(text: str, line_start: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_start)
        )

    before = (await client.get("/metrics")).text
    assert (
        await client.post("/v1/transactions", json={"items": [sale("T1"), sale("T2")]})
    ).status_code == 202
    assert (
        await client.post("/v1/transactions", json={"items": [sale("T3", amount_minor=-1)]})
    ).status_code == 422
    after = (await client.get("/metrics")).text

    accepted = 'settlewatch_ingest_events_total{kind="transaction",outcome="accepted"}'
    rejected = 'settlewatch_ingest_events_total{kind="transaction",outcome="rejected"}'
    assert sample(after, accepted) - sample(before, accepted) == 2
    assert sample(after, rejected) - sample(before, rejected) == 1
    timed = (
        "settlewatch_http_request_duration_seconds_count"
        '{method="POST",route="/v1/transactions",status="202"}'
    )
    assert sample(after, timed) - sample(before, timed) == 1
    assert 'settlewatch_ingest_batch_size_bucket{kind="transaction"' in after
    assert 'settlewatch_ingest_publish_duration_seconds_bucket{kind="transaction"' in after

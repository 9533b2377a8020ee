"""Ingest → matcher → alerts → a merchant's webhook receiver, all real, on the real clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import standardwebhooks

from settlewatch.alerts.app import create_app as create_alerts
from settlewatch.common.config import AlertsSettings, IngestSettings, MatcherSettings, ReconSettings
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.publisher import Publisher
from settlewatch.common.tokens import digest, token_id
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.recon.app import create_app as create_recon
from tests.alerts.integration.conftest import SECRET
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, TOKENS, sale
from tests.support.apps import app_client
from tests.support.findings import overdue_finding
from tests.support.kafka import read_topic
from tests.support.matcher import service_env
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
AS_M1 = {"authorization": f"Bearer {MERCHANT_M1}"}
ACQUIRER_ID = token_id(digest(ACQUIRER))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Pipeline:
    """The three services on one database and broker, each with an acquirer's client."""

    ingest: httpx.AsyncClient
    matcher: httpx.AsyncClient
    alerts: httpx.AsyncClient
    recon: httpx.AsyncClient


@asynccontextmanager
async def pipeline(
    env: dict[str, Any], clock: Callable[[], datetime] | None = None
) -> AsyncIterator[Pipeline]:
    """Ingest and recon → matcher → alerts running on `env` (topics of two partitions);
    `clock`: the alerts service's, when a test moves it by hand."""
    topics = Topics(env["SETTLEWATCH_TOPIC_PREFIX"])
    await ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], topics, partitions=2, replication_factor=1)
    alerts_settings = AlertsSettings(**env)
    alerts_app = create_alerts(alerts_settings, clock) if clock else create_alerts(alerts_settings)
    async with (
        app_client(create_ingest(IngestSettings(**env)), ACQUIRER) as ingest,
        app_client(create_matcher(MatcherSettings(**env)), ACQUIRER) as matcher,
        app_client(alerts_app, ACQUIRER) as alerts,
        app_client(create_recon(ReconSettings(**env)), ACQUIRER) as recon,
    ):
        yield Pipeline(ingest, matcher, alerts, recon)


def settings(database_url: str, bootstrap: str, prefix: str, **extra: str) -> dict[str, Any]:
    return (
        service_env(database_url, bootstrap, prefix, TOKENS)
        | {
            "SETTLEWATCH_GROUP_WAIT": "PT2S",
            "ALERTS_SESSION_TIMEOUT": "PT2S",
        }
        | extra
    )


async def test_forty_overdue_payments_reach_the_merchant_signed_in_one_or_two_deliveries(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    env = settings(database_url, broker_bootstrap, topic_prefix)
    async with receiver() as rec, pipeline(env) as services:
        ingest, alerts = services.ingest, services.alerts
        hook = {"url": f"{rec.url}/hook", "secret": SECRET}
        d0 = PROFILE | {"settlement_cycle": "D0", "webhook": hook}
        assert (await ingest.put("/v1/merchants/M1", json=d0)).status_code == 201
        assert (await ingest.put("/v1/merchants/M2", json=d0)).status_code == 201
        when = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        batch = [
            sale(f"T{n:02d}", occurred_at=when, card_fingerprint=f"fp-{n}") for n in range(40)
        ] + [sale("X1", merchant_id="M2", occurred_at=when)]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202

        def received_alerts(merchant: str) -> list[str]:
            return [
                a["alert_id"]
                for got in rec.received
                if got.json()["data"]["merchant_id"] == merchant
                for a in got.json()["data"]["alerts"]
            ]

        async def all_forty_arrived() -> bool:
            return len(set(received_alerts("M1"))) == 40

        await eventually(all_forty_arrived)
        m1_messages = [g for g in rec.received if g.json()["data"]["merchant_id"] == "M1"]
        assert 1 <= len({g.headers["webhook-id"] for g in m1_messages}) <= 2
        assert len(received_alerts("M1")) == 40  # none twice
        for got in rec.received:  # the reference implementation, on the real clock
            standardwebhooks.Webhook(SECRET).verify(got.body, got.headers, json_parse=False)

        # A merchant token sees its own alerts only, page by page.
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 15} | ({"cursor": cursor} if cursor else {})
            page = (await alerts.get("/v1/alerts", params=params, headers=AS_M1)).json()
            seen += [a["alert_id"] for a in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert sorted(seen) == sorted({f"settlement.overdue:T{n:02d}" for n in range(40)})
        everyone = (await alerts.get("/v1/alerts", params={"limit": 1000})).json()["items"]
        assert "settlement.overdue:X1" in {a["alert_id"] for a in everyone}
        assert (
            await alerts.get("/v1/alerts/settlement.overdue:X1", headers=AS_M1)
        ).status_code == 404
        other = await alerts.get("/v1/alerts", params={"merchant_id": "M2"}, headers=AS_M1)
        assert other.status_code == 404
        mine = (await alerts.get("/v1/deliveries", headers=AS_M1)).json()["items"]
        assert {d["merchant_id"] for d in mine} == {"M1"}
        assert all(d["status"] == "delivered" and d["attempts"] for d in mine)
        failed = await alerts.get("/v1/deliveries", params={"status": "failed"}, headers=AS_M1)
        assert failed.json()["items"] == []
        retry = f"/v1/deliveries/{mine[0]['delivery_id']}/retry"
        assert (await alerts.post(retry, headers=AS_M1)).status_code == 403  # read-only token
        assert (await alerts.post(retry)).status_code == 409  # delivered already
        assert (await alerts.post("/v1/deliveries/msg_nope/retry")).status_code == 404

        # People ack and resolve, with a note history; a merchant acknowledges its own alerts
        # only (SPEC §16), and resolves none.
        alert_url = "/v1/alerts/settlement.overdue:T01"
        refused = await alerts.post(f"{alert_url}/resolve", json={"note": "x"}, headers=AS_M1)
        assert refused.status_code == 403
        theirs = await alerts.post(
            "/v1/alerts/settlement.overdue:X1/ack", json={"note": "x"}, headers=AS_M1
        )
        assert theirs.status_code == 404  # M2's: not even there for M1
        own = await alerts.post(
            "/v1/alerts/settlement.overdue:T02/ack", json={"note": "问过银行了"}, headers=AS_M1
        )
        assert own.status_code == 200 and own.json()["notes"][-1]["by"] == "merchant:M1"
        x1 = (await alerts.get("/v1/alerts/settlement.overdue:X1")).json()
        assert x1["status"] == "open"
        # A note is sent to the merchant: a card number in it is refused (SPEC §3, issue 28).
        card = await alerts.post(f"{alert_url}/ack", json={"note": "card 4111 1111 1111 1111"})
        assert card.status_code == 422, card.text
        assert card.json()["errors"][0]["loc"] == ["body", "note"]
        assert "4111" not in card.text
        acked = await alerts.post(f"{alert_url}/ack", json={"note": "called ICBC, ticket 77"})
        assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
        done = await alerts.post(f"{alert_url}/resolve", json={"note": "paid by hand"})
        assert done.json()["status"] == "resolved"
        assert [(n["action"], n["by"], n["note"]) for n in done.json()["notes"]] == [
            ("acknowledged", "acquirer", "called ICBC, ticket 77"),
            ("resolved", "acquirer", "paid by hand"),
        ]
        done_only = await alerts.get(
            "/v1/alerts", params={"status": "resolved", "type": "settlement.overdue"}
        )
        assert [a["alert_id"] for a in done_only.json()["items"]] == ["settlement.overdue:T01"]
        again = await alerts.post(f"{alert_url}/ack", json={})
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        bad = await alerts.post(f"{alert_url}/ack", json={"note": "x", "extra": 1})
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "extra"]

        # Who did it is in the audit log, by token id; refusals are not changes.
        audit = (await ingest.get("/v1/audit", params={"actor": ACQUIRER_ID})).json()["items"]
        logged = [(e["service"], e["action"], e["target"]) for e in reversed(audit)]
        assert logged == [
            ("ingest", "PUT /v1/merchants/{merchant_id}", "/v1/merchants/M1"),
            ("ingest", "PUT /v1/merchants/{merchant_id}", "/v1/merchants/M2"),
            ("alerts", "POST /v1/alerts/{alert_id}/ack", f"{alert_url}/ack"),
            ("alerts", "POST /v1/alerts/{alert_id}/resolve", f"{alert_url}/resolve"),
        ]
        assert (await alerts.get("/v1/alerts", params={"cursor": "nope"})).status_code == 422
        assert (await alerts.get("/v1/alerts", params={"limit": 1001})).status_code == 422

        # The money arrives late: the overdue alert resolves itself and the merchant is told.
        late = {
            "settlement_id": "S-late",
            "merchant_id": "M1",
            "bank_code": "ICBC",
            "status": "settled",
            "occurred_at": datetime.now(UTC).isoformat(),
            "items": [{"txn_id": "T00", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}],
        }
        assert (await ingest.post("/v1/settlements", json={"items": [late]})).status_code == 202

        async def told_it_arrived() -> bool:
            return "settlement.settled_late:T00" in received_alerts("M1")

        await eventually(told_it_arrived)
        overdue = (await alerts.get("/v1/alerts/settlement.overdue:T00")).json()
        assert overdue["status"] == "resolved"
        assert overdue["notes"][-1]["by"] == "settlewatch"
        metrics = (await alerts.get("/metrics")).text
        assert 'settlewatch_webhook_deliveries_total{outcome="delivered"}' in metrics
        assert 'settlewatch_alerts_created_total{type="settlement.overdue"}' in metrics


async def test_findings_that_cannot_be_read_or_stored_are_dead_lettered_and_the_rest_absorbed(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=1, replication_factor=1)
    env = settings(database_url, broker_bootstrap, topic_prefix)
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)
    try:
        await publisher.publish(
            topics.findings,
            [
                (b"M1", b'{"id": "settlement.overdue:T1", "state": "maybe"}'),
                # Readable, but PostgreSQL cannot store a NUL: the batch failed on it forever.
                (b"M1", orjson.dumps(overdue_finding("T3", failure_reason="bad\x00byte"))),
                (b"M1", orjson.dumps(overdue_finding("T2"))),
            ],
        )
    finally:
        await publisher.close()
    async with app_client(create_alerts(AlertsSettings(**env)), ACQUIRER) as alerts:

        async def absorbed() -> bool:
            return (await alerts.get("/v1/alerts/settlement.overdue:T2")).status_code == 200

        await eventually(absorbed)
        assert (await alerts.get("/v1/alerts/settlement.overdue:T3")).status_code == 404
        assert (await alerts.get("/readyz")).json()["checks"]["alerts-consumer"] == "ok"
    dead, unstorable = [
        orjson.loads(r.value) for r in await read_topic(broker_bootstrap, topics.dead_letter)
    ]
    assert (dead["topic"], dead["offset"]) == (topics.findings, 0)
    assert "unreadable finding" in dead["reason"] and "maybe" in dead["value"]
    assert (unstorable["offset"], unstorable["service"]) == (1, "alerts")
    assert unstorable["reason"].startswith("the alerts store cannot absorb it")
    assert unstorable["error"]["where"]  # the stack's last frame
    assert orjson.loads(unstorable["value"])["id"] == "settlement.overdue:T3"

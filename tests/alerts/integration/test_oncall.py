"""On-call: bank incidents judged on the matcher's data, pushed to a real Alertmanager-shaped
receiver; pipeline stalls pushed and ended (SPEC §6)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.lifecycle import ReceivedFinding
from settlewatch.alerts.oncall import OnCall
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.reads import Reads
from tests.alerts.integration.conftest import T0, FakeClock
from tests.alerts.integration.test_pipeline import eventually, pipeline, settings
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import Receiver, receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pushes(rec: Receiver, bank: str) -> list[dict[str, Any]]:
    return [
        alert
        for got in rec.received
        if got.path == "/api/v2/alerts"
        for alert in got.json()
        if alert["labels"].get("bank_code") == bank
    ]


async def test_bank_incident_pages_once_repushes_and_ends_but_not_during_maintenance(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    now = datetime.now(UTC)
    clock = FakeClock(now)  # the alerts service's clock: moved by hand to see the re-push
    async with receiver() as am:
        env = settings(database_url, broker_bootstrap, topic_prefix, ALERTMANAGER_URL=am.url)
        async with pipeline(env, clock) as services:
            ingest, alerts = services.ingest, services.alerts
            instant = PROFILE | {"settlement_cycle": "instant", "instant_sla": "PT1S"}
            for merchant, bank in (("MB1", "B1"), ("MB2", "B2")):
                profile = instant | {"settlement_bank": bank, "webhook": None}
                assert (
                    await ingest.put(f"/v1/merchants/{merchant}", json=profile)
                ).status_code == 201
            window = {
                "bank_code": "B2",
                "starts_at": (now - timedelta(minutes=10)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "reason": "core banking upgrade",
            }
            assert (await ingest.post("/v1/maintenance-windows", json=window)).status_code == 201
            b1 = [
                sale(
                    f"B1-{n}",
                    merchant_id="MB1",
                    occurred_at=(now - timedelta(minutes=20)).isoformat(),
                    card_fingerprint=f"a{n}",
                )
                for n in range(25)
            ]
            b2 = [
                sale(
                    f"B2-{n}",
                    merchant_id="MB2",
                    occurred_at=(now - timedelta(minutes=40)).isoformat(),
                    card_fingerprint=f"b{n}",
                )
                for n in range(25)
            ]
            assert (
                await ingest.post("/v1/transactions", json={"items": b1 + b2})
            ).status_code == 202

            async def paged() -> bool:
                return len(pushes(am, "B1")) >= 1

            await eventually(paged)
            await asyncio.sleep(3)  # several push rounds: no second page within the minute
            (page,) = pushes(am, "B1")
            assert page["labels"]["alertname"] == "SettlementBankIncident"
            assert page["labels"]["severity"] == "critical" and "endsAt" not in page
            assert pushes(am, "B2") == []  # recorded, but the bank announced maintenance

            clock.advance(timedelta(seconds=61))

            async def repushed() -> bool:
                return len(pushes(am, "B1")) == 2

            await eventually(repushed)
            assert "endsAt" not in pushes(am, "B1")[-1]

            incidents = (await alerts.get("/v1/alerts", params={"type": "bank.incident"})).json()
            by_bank = {a["bank_code"]: a for a in incidents["items"]}
            assert set(by_bank) == {"B1", "B2"} and by_bank["B2"]["status"] == "open"
            assert by_bank["B1"]["evidence"]["overdue"] == 25
            b2_alert = (await alerts.get("/v1/alerts/settlement.overdue:B2-0")).json()
            assert b2_alert["probable_cause"] == "bank_maintenance"
            # B1's merchants were not told yet (no webhook): their alerts now name the incident.
            b1_alert = (await alerts.get("/v1/alerts/settlement.overdue:B1-0")).json()
            assert b1_alert["probable_cause"] == "bank_incident"
            assert "可能原因：银行系统故障" in b1_alert["summary"]

            # B1 pays everything (late): the incident resolves and Alertmanager hears its end.
            paid = {
                "settlement_id": "S-B1",
                "merchant_id": "MB1",
                "bank_code": "B1",
                "status": "settled",
                "occurred_at": datetime.now(UTC).isoformat(),
                "items": [
                    {"txn_id": f"B1-{n}", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}
                    for n in range(25)
                ],
            }
            assert (await ingest.post("/v1/settlements", json={"items": [paid]})).status_code == 202

            async def ended() -> bool:
                return any("endsAt" in p for p in pushes(am, "B1"))

            await eventually(ended)
            resolved = (await alerts.get(f"/v1/alerts/{by_bank['B1']['alert_id']}")).json()
            assert resolved["status"] == "resolved"
            assert pushes(am, "B2") == []


async def test_pipeline_stall_is_pushed_while_active_and_ended_when_resolved(
    alerts: Alerts, engine: AsyncEngine
) -> None:
    clock = FakeClock()
    stalled = {
        "id": "pipeline.stalled:sw:2026-11-22T07:58:00+00:00",
        "type": "pipeline.stalled",
        "at": T0.isoformat(),
        "merchant_id": None,
        "txn_id": None,
        "evidence": {"matcher_clock": "2026-11-22T07:58:00+00:00"},
    }
    async with receiver() as am, httpx.AsyncClient() as client:
        oncall = OnCall(alerts, Reads(engine), clock=clock, client=client, alertmanager_url=am.url)
        await oncall.push_once()  # nothing to say
        await alerts.absorb(
            [ReceivedFinding.from_json(orjson.dumps(stalled | {"state": "open"}))], clock()
        )
        await oncall.push_once()
        await oncall.push_once()  # not again within the minute
        clock.advance(timedelta(seconds=60))
        await oncall.push_once()
        clock.advance(timedelta(seconds=5))
        await alerts.absorb(
            [ReceivedFinding.from_json(orjson.dumps(stalled | {"state": "resolved"}))], clock()
        )
        await oncall.push_once()
        await oncall.push_once()  # the end is pushed once
        am.answer = lambda _: (500, {})
        await alerts.absorb(
            [
                ReceivedFinding.from_json(
                    orjson.dumps(stalled | {"id": "pipeline.stalled:sw:b", "state": "open"})
                )
            ],
            clock(),
        )
        await oncall.push_once()  # Alertmanager down: tried again next round
        am.answer = lambda _: (200, {})
        await oncall.push_once()
    bodies = [got.json() for got in am.received]
    names = [[(a["labels"]["alertname"], "endsAt" in a) for a in body] for body in bodies]
    assert names == [
        [("SettlementPipelineStalled", False)],
        [("SettlementPipelineStalled", False)],
        [("SettlementPipelineStalled", True)],
        [("SettlementPipelineStalled", False)],
        [("SettlementPipelineStalled", False)],
    ]
    assert bodies[2][0]["endsAt"] == (T0 + timedelta(seconds=65)).isoformat()

"""Money going out end to end (SPEC §11): ingest → matcher (and ingest's file matching) →
alerts → the merchant's webhook, signed. Refunds adding up to more than their sale, a voided
payment the bank paid anyway, and a 扣费 in a 对账单 that no announced fee debit explains each
reach the merchant once; an announced one does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from tests.alerts.integration.conftest import SECRET
from tests.alerts.integration.test_pipeline import eventually, pipeline, settings
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

BILL = """单号,商户,类型,金额,手续费,入账日
FD-1,M1,扣费,-30.00,0,{day}
FD-2,M1,扣费,-45.00,0,{day}
"""
MAPPING = {
    "columns": {
        "txn_id": "单号",
        "merchant_id": "商户",
        "kind": "类型",
        "gross": "金额",
        "fee": "手续费",
        "value_date": "入账日",
    },
    "kinds": {"扣费": "fee_debit", "消费": "sale"},
}


async def test_refunds_a_paid_void_and_an_unannounced_deduction_reach_the_merchant_signed(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    env = settings(database_url, broker_bootstrap, topic_prefix)
    async with receiver() as rec, pipeline(env) as services:
        ingest, recon, alerts = services.ingest, services.recon, services.alerts
        hook = {"url": f"{rec.url}/hook", "secret": SECRET}
        assert (
            await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})
        ).status_code == 201
        now = datetime.now(UTC)
        when = (now - timedelta(minutes=5)).isoformat()
        batch = [
            sale("S1", occurred_at=when, card_fingerprint="fp-1"),
            sale("R1", type="refund", original_txn_id="S1", amount_minor=8000, occurred_at=when),
            sale("R2", type="refund", original_txn_id="S1", amount_minor=8000, occurred_at=when),
            sale("S2", occurred_at=when, card_fingerprint="fp-2"),
            sale("V2", type="void", original_txn_id="S2", occurred_at=when),
            sale("FD-1", type="fee_debit", amount_minor=3000, occurred_at=when),  # announced
        ]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202
        paid = {
            "settlement_id": "S-S2",
            "merchant_id": "M1",
            "bank_code": "ICBC",
            "status": "settled",
            "occurred_at": now.isoformat(),
            "items": [{"txn_id": "S2", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}],
        }
        assert (await ingest.post("/v1/settlements", json={"items": [paid]})).status_code == 202

        async def matcher_saw_the_batch() -> bool:
            return (await alerts.get("/v1/alerts/refund.exceeds_sale:S1")).status_code == 200

        await eventually(matcher_saw_the_batch)
        assert (await recon.put("/v1/file-mappings/bank", json=MAPPING)).status_code == 201
        bill = BILL.format(day=now.date().isoformat()).encode()
        imported = await recon.post("/v1/settlement-files?format=csv:bank", content=bill)
        assert imported.status_code == 202, imported.text
        file_id = imported.json()["file_id"]

        def received() -> dict[str, dict[str, object]]:
            return {
                alert["alert_id"]: alert
                for got in rec.received
                for alert in got.json()["data"]["alerts"]
            }

        wanted = {
            "refund.exceeds_sale:S1",
            "settlement.paid_after_void:S2:S-S2",
            f"fee.unexpected_deduction:{file_id}:1",
        }

        async def all_told() -> bool:
            return wanted <= received().keys()

        await eventually(all_told)
        got = received()
        assert not any(
            a.startswith("fee.unexpected_deduction")
            and a != f"fee.unexpected_deduction:{file_id}:1"
            for a in got
        )
        for message in rec.received:
            standardwebhooks.Webhook(SECRET).verify(message.body, message.headers, json_parse=False)
        assert "超过了原交易金额（退款 R1、R2）" in str(got["refund.exceeds_sale:S1"]["summary"])
        assert "已撤销，银行仍然付款了" in str(got["settlement.paid_after_void:S2:S-S2"]["summary"])
        deduction = got[f"fee.unexpected_deduction:{file_id}:1"]
        assert "扣除了 ¥45.00（扣费），没有事先通知的扣费或拒付与之对应" in str(
            deduction["summary"]
        )
        fd1 = (await recon.get("/v1/exceptions", params={"file_id": file_id})).json()["items"]
        assert [e["exception_id"] for e in fd1] == [f"line:{file_id}:1"]  # FD-1 was matched

"""Terminals end to end (SPEC §12): ingest → matcher (and ingest's file matching) → alerts → the
merchant's webhook, signed. A terminal seen in two regions minutes apart (跳码), a migrated
terminal's sale that the bank's 对账单 books under the terminal it replaced (账务不一致), and a
bank's maintenance window each reach the merchant once; the books and the evidence show where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks

from tests.alerts.integration.conftest import SECRET
from tests.alerts.integration.test_pipeline import eventually, pipeline, settings
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

BILL = """单号,商户,终端,类型,金额,手续费,入账日
B1,M1,POS-A,消费,128.00,0.77,{day}
"""
MAPPING = {
    "columns": {
        "txn_id": "单号",
        "merchant_id": "商户",
        "terminal_id": "终端",
        "kind": "类型",
        "gross": "金额",
        "fee": "手续费",
        "value_date": "入账日",
    },
    "kinds": {"消费": "sale"},
}


async def test_a_region_jump_a_migration_s_books_and_a_maintenance_window_reach_the_merchant(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    env = settings(database_url, broker_bootstrap, topic_prefix)
    async with receiver() as rec, pipeline(env) as services:
        ingest, matcher, recon = services.ingest, services.matcher, services.recon
        hook = {"url": f"{rec.url}/hook", "secret": SECRET}
        merchant = await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})
        assert merchant.status_code == 201
        for terminal_id, body in (
            ("POS-A", {"region": "北京"}),
            ("POS-B", {"region": "北京", "replaces": "POS-A"}),
            ("POS-C", {"region": "北京"}),
        ):
            answer = await ingest.put(
                f"/v1/terminals/{terminal_id}", json={"merchant_id": "M1"} | body
            )
            assert answer.status_code == 201, answer.text
        now = datetime.now(UTC)

        def ago(minutes: int) -> str:
            return (now - timedelta(minutes=minutes)).isoformat()

        batch = [
            sale(
                "B1", terminal_id="POS-B", region="北京", occurred_at=ago(8), card_fingerprint="b"
            ),
            sale(
                "C1", terminal_id="POS-C", region="北京", occurred_at=ago(7), card_fingerprint="c"
            ),
            sale(
                "C2", terminal_id="POS-C", region="上海", occurred_at=ago(4), card_fingerprint="d"
            ),
        ]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202
        window = {
            "bank_code": "ICBC",
            "starts_at": (now + timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=20)).isoformat(),  # over B1's deadline
            "reason": "核心系统升级",
        }
        announced = await ingest.post("/v1/maintenance-windows", json=window)
        assert announced.status_code == 201, announced.text

        async def matcher_has_b1() -> bool:
            return (await matcher.get("/v1/payments/B1")).status_code == 200

        await eventually(matcher_has_b1)
        assert (await recon.put("/v1/file-mappings/bank", json=MAPPING)).status_code == 201
        bill = BILL.format(day=now.date().isoformat()).encode()
        imported = await recon.post("/v1/settlement-files?format=csv:bank", content=bill)
        assert imported.status_code == 202, imported.text

        def received() -> dict[str, dict[str, Any]]:
            return {
                alert["alert_id"]: alert
                for got in rec.received
                for alert in got.json()["data"]["alerts"]
            }

        def of(kind: str) -> list[str]:
            return sorted(a for a in received() if a.startswith(f"{kind}:"))

        async def all_told() -> bool:
            kinds = (
                "terminal.region_jump",
                "terminal.books_mismatch",
                "bank.maintenance_scheduled",
            )
            return all(of(kind) for kind in kinds)

        await eventually(all_told)
        for message in rec.received:
            standardwebhooks.Webhook(SECRET).verify(message.body, message.headers, json_parse=False)
        got = received()
        [jump] = of("terminal.region_jump")
        assert got[jump]["evidence"]["txn_ids"] == ["C1", "C2"]
        assert "终端 POS-C 的交易出现在不同地区（北京 → 上海" in got[jump]["summary"]
        [books] = of("terminal.books_mismatch")
        assert books.startswith("terminal.books_mismatch:M1:") and books.endswith(":POS-A:POS-B")
        assert "被银行记在终端 POS-A 名下" in got[books]["summary"]
        [notice] = of("bank.maintenance_scheduled")
        assert notice == f"bank.maintenance_scheduled:{announced.json()['id']}:M1"
        assert got[notice]["status"] == "resolved"  # a notice: nothing to do
        moved = {m["txn_id"] for m in got[notice]["evidence"]["moved"]}
        assert {"C1", "C2"} <= moved  # B1 was paid by then or moved too

        day = books.split(":")[2]
        by_terminal = {
            t["terminal_id"]: t
            for t in (await ingest.get("/v1/merchants/M1/books", params={"date": day})).json()[
                "terminals"
            ]
        }
        assert by_terminal["POS-A"]["difference_minor"] == 12723  # B1, booked under A
        assert by_terminal["POS-B"]["difference_minor"] == -12723
        evidence = (await matcher.get("/v1/payments/B1/evidence")).json()
        [line] = evidence["file_lines"]
        assert (line["line"]["terminal_id"], line["match_rule"]) == ("POS-A", "txn_id")
        assert books in {a["alert_id"] for a in evidence["alerts"]}

"""The console's Overview (SPEC §15): what each bank owes, overdue first, open alerts by type,
open exceptions by age, payouts, the pipeline's health — from aggregates each service computes
(GET /v1/banks/summary, /v1/alerts/counts, /v1/exceptions/summary)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_overview_shows_what_each_bank_owes_the_alerts_and_the_exceptions_by_age(
    desk: Desk,
) -> None:
    ingest, recon = desk.api["ingest"], desk.api["recon"]
    d0 = PROFILE | {"settlement_cycle": "D0"}
    assert (await ingest.put("/v1/merchants/M1", json=d0)).is_success
    assert (await ingest.put("/v1/merchants/M2", json=d0 | {"settlement_bank": "BOCOM"})).is_success
    late = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    sales = [
        sale("LATE1", merchant_id="M2", occurred_at=late, amount_minor=1280000),
        sale(
            "LATE2", merchant_id="M2", occurred_at=late, amount_minor=20000, card_fingerprint="f2"
        ),
        sale("NOW1", occurred_at=datetime.now(UTC).isoformat()),
    ]
    assert (await ingest.post("/v1/transactions", json={"items": sales})).status_code == 202
    mapping = {
        "columns": {
            "rrn": "rrn",
            "auth_code": "auth",
            "gross": "gross",
            "fee": "fee",
            "value_date": "day",
        }
    }
    assert (await recon.put("/v1/file-mappings/bank", json=mapping)).is_success
    day = datetime.now(UTC).date().isoformat()
    bill = f"rrn,auth,gross,fee,day\nNOBODY1,A1,1.00,0,{day}\n".encode()
    imported = await recon.post("/v1/settlement-files?format=csv:bank", content=bill)
    assert imported.is_success, imported.text

    async def overdue_and_alerted() -> bool:
        banks = (await desk.api["matcher"].get("/v1/banks/summary")).json()["items"]
        counts = (await desk.api["alerts"].get("/v1/alerts/counts")).json()["items"]
        desk_items = (await recon.get("/v1/exceptions/summary")).json()["open"]
        return (
            any(b["status"] == "overdue" and b["count"] == 2 for b in banks)
            and any(c["type"] == "settlement.overdue" and c["count"] == 2 for c in counts)
            and bool(desk_items)
        )

    await eventually(overdue_and_alerted)
    banks = (await desk.api["matcher"].get("/v1/banks/summary")).json()["items"]
    assert {
        "bank_code": "BOCOM",
        "status": "overdue",
        "currency": "CNY",
        "count": 2,
        "amount_minor": 1_300_000,
    } in banks
    assert [b["bank_code"] for b in banks if b["status"] == "pending"] == ["ICBC"]
    summary = (await recon.get("/v1/exceptions/summary")).json()
    assert summary["open"] == [{"kind": "unmatched_line", "age": "0-1", "count": 1}]
    for path in ("/v1/banks/summary", "/v1/alerts/counts", "/v1/exceptions/summary"):
        service = {"banks": "matcher", "alerts": "alerts", "exceptions": "recon"}[
            path.split("/")[2]
        ]
        refused = await desk.api[service].get(
            path, headers={"authorization": f"Bearer {MERCHANT_M1}"}
        )
        assert refused.status_code == 403  # every merchant's figures: not a merchant's to read

    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/")
    assert page.status_code == 200
    text = page.text
    assert text.index("BOCOM") < text.index("ICBC")  # the bank that owes overdue money first
    assert "¥13,000.00" in text and 'href="/payments?bank_code=BOCOM&amp;status=overdue"' in text
    assert "未到账" in text or "逾期未到账" in text  # the overdue alert type's name
    assert 'href="/exceptions?kind=unmatched_line&amp;status=open"' in text
    # Each number links to the list it counts: the exceptions of its age, the alerts of its type.
    aged = "/exceptions?kind=unmatched_line&status=open&age=0-1"
    assert f'href="{aged.replace("&", "&amp;")}">1</a>' in text
    assert 'href="/alerts?type=settlement.overdue&amp;status=open">2</a>' in text
    listed = await desk.browser.get(aged)
    assert listed.text.count('href="/exceptions/line') == 1
    older = await desk.browser.get(aged.replace("0-1", "2-7"))
    assert older.status_code == 200 and 'href="/exceptions/line' not in older.text
    wrong = await recon.get("/v1/exceptions", params={"age": "1-2"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["query", "age"]
    assert text.count("正常") >= 8  # every service's database and broker

    await desk.sign_in(MERCHANT_M1)
    mine = await desk.browser.get("/")  # a merchant's first page is its own money
    assert mine.status_code == 200 and "我的款项" in mine.text and "BOCOM" not in mine.text


async def test_a_record_set_aside_as_a_dead_letter_shows_in_the_pipelines_health(
    desk: Desk, broker_bootstrap: str, topic_prefix: str
) -> None:
    publisher = Publisher(broker_bootstrap, enable_idempotence=False, timeout=10)
    await publisher.publish(Topics(topic_prefix).transactions, [(b"M1", b"{not json")])
    await publisher.close()
    await desk.sign_in(ACQUIRER)

    async def shown() -> bool:
        page = await desk.browser.get("/")
        return "启动以来的死信" in page.text

    await eventually(shown)  # the matcher set it aside; its /metrics counts it

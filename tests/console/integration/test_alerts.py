"""The console's Alerts (SPEC §15): the merchants' alerts by type and status, one acknowledged
with a note and resolved, a note shown as text, the webhook deliveries with their attempts."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from settlewatch.common.tokens import digest, token_id
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")
ALERT = "settlement.overdue:LATE1"


async def an_overdue_alert(desk: Desk) -> None:
    d0 = PROFILE | {"settlement_cycle": "D0"}
    assert (await desk.api["ingest"].put("/v1/merchants/M1", json=d0)).is_success
    late = sale("LATE1", occurred_at=(datetime.now(UTC) - timedelta(days=2)).isoformat())
    assert (await desk.api["ingest"].post("/v1/transactions", json={"items": [late]})).is_success

    async def raised() -> bool:
        return (await desk.api["alerts"].get(f"/v1/alerts/{ALERT}")).status_code == 200

    await eventually(raised)


async def test_an_alert_is_acknowledged_with_a_note_and_resolved(desk: Desk) -> None:
    await an_overdue_alert(desk)
    await desk.sign_in(ACQUIRER)
    listed = await desk.browser.get("/alerts", params={"type": "settlement.overdue"})
    assert listed.status_code == 200 and 'href="/alerts/settlement.overdue%3ALATE1"' in listed.text
    page = await desk.browser.get(f"/alerts/{ALERT}")
    assert page.status_code == 200 and "LATE1" in page.text and "确认" in page.text

    note = "<script>alert(1)</script> 已联系银行"
    acked = await desk.browser.post(
        f"/alerts/{ALERT}/ack", data={"note": note, "csrf": desk.csrf(page)}
    )
    assert acked.status_code == 303, acked.text[-1500:]
    alert = (await desk.api["alerts"].get(f"/v1/alerts/{ALERT}")).json()
    assert alert["status"] == "acknowledged" and alert["notes"][-1]["note"] == note
    shown = await desk.browser.get(f"/alerts/{ALERT}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 已联系银行" in shown.text
    assert "<script>alert(1)" not in shown.text

    again = await desk.browser.post(
        f"/alerts/{ALERT}/ack", data={"note": "twice", "csrf": desk.csrf(page)}
    )
    assert again.status_code == 409  # the alerts service refused: it is acknowledged already
    resolved = await desk.browser.post(
        f"/alerts/{ALERT}/resolve", data={"note": "paid", "csrf": desk.csrf(page)}
    )
    assert resolved.status_code == 303
    assert (await desk.api["alerts"].get(f"/v1/alerts/{ALERT}")).json()["status"] == "resolved"
    deliveries = await desk.browser.get("/alerts/deliveries")
    assert deliveries.status_code == 200 and "Webhook 推送记录" in deliveries.text

    # What the console changed is in the audit log, as the signed-in token did it.
    audit = await desk.browser.get("/audit", params={"actor": token_id(digest(ACQUIRER))})
    assert audit.status_code == 200
    assert f"/v1/alerts/{ALERT}/ack" in audit.text and f"/v1/alerts/{ALERT}/resolve" in audit.text
    wrong = await desk.browser.get("/audit", params={"from": "yesterday"})
    assert wrong.status_code == 422


async def test_alerts_deliveries_and_the_audit_log_export_what_their_filters_match(
    desk: Desk,
) -> None:
    await an_overdue_alert(desk)
    await desk.sign_in(ACQUIRER)
    alerts = rows(await desk.browser.get("/alerts/export.csv", params={"status": "open"}))
    assert alerts[0][:4] == ["发生时间", "告警编号", "类型", "状态"]
    assert [(r[1], r[2], r[5]) for r in alerts[1:]] == [(ALERT, "逾期未到账", "LATE1")]
    none = rows(await desk.browser.get("/alerts/export.csv", params={"status": "resolved"}))
    assert len(none) == 1
    deliveries = rows(await desk.browser.get("/alerts/deliveries/export.csv"))
    assert deliveries[0][:3] == ["时间", "推送", "商户"]
    audit = rows(await desk.browser.get("/audit/export.csv"))
    assert ["PUT /v1/merchants/{merchant_id}", "/v1/merchants/M1"] in [r[4:6] for r in audit]
    workbook = await desk.browser.get("/audit/export.xlsx")
    assert workbook.status_code == 200 and workbook.content.startswith(b"PK")


def rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200 and answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))

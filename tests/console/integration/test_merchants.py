"""The console's Merchants (SPEC §15): found by name, a profile's page, a signed test message to
its webhook followed in the delivery log, a merchant token that sees only itself, the export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import standardwebhooks

from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
SECRET = PROFILE["webhook"]["secret"]


async def test_a_merchant_found_by_name_gets_a_signed_test_message(desk: Desk) -> None:
    async with receiver() as endpoint:
        hooked = PROFILE | {"webhook": {"url": f"{endpoint.url}/hook", "secret": SECRET}}
        assert (await desk.api["ingest"].put("/v1/merchants/M1", json=hooked)).is_success
        silent = PROFILE | {"name": "Beijing Noodles <b>", "webhook": None}
        assert (await desk.api["ingest"].put("/v1/merchants/M2", json=silent)).is_success
        await desk.sign_in(ACQUIRER)

        found = await desk.browser.get("/merchants", params={"q": "dumpl"})
        assert found.status_code == 200
        assert 'href="/merchants/M1"' in found.text and 'href="/merchants/M2"' not in found.text
        page = await desk.browser.get("/merchants/M1")
        assert page.status_code == 200 and "Shanghai Dumplings" in page.text
        assert "whsec_MfKQ" not in page.text  # the secret never leaves ingest

        sent = await desk.browser.post("/merchants/M1/test", data={"csrf": desk.csrf(page)})
        assert sent.status_code == 303 and "sent=msg_" in sent.headers["location"]

        async def arrived() -> bool:
            return bool(endpoint.received)

        await eventually(arrived)
        got = endpoint.received[0]
        assert got.json()["type"] == "webhook.test"
        assert got.json()["data"] == {"merchant_id": "M1", "alerts": []}
        at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
        signed = standardwebhooks.Webhook(SECRET).sign(
            got.headers["webhook-id"], at, got.body.decode()
        )
        assert got.headers["webhook-signature"] == signed

        async def logged() -> bool:
            shown = await desk.browser.get(sent.headers["location"])
            return "测试消息" in shown.text and "delivery-delivered" in shown.text

        await eventually(logged)

        # A merchant with no webhook has no button; a forged form is refused by alerts.
        other = await desk.browser.get("/merchants/M2")
        assert "Beijing Noodles &lt;b&gt;" in other.text and "/merchants/M2/test" not in other.text
        refused = await desk.browser.post("/merchants/M2/test", data={"csrf": desk.csrf(other)})
        assert refused.status_code == 409 and "no webhook" in refused.text


async def test_a_merchant_token_sees_only_its_own_profile(desk: Desk) -> None:
    for merchant in ("M1", "M2"):
        assert (await desk.api["ingest"].put(f"/v1/merchants/{merchant}", json=PROFILE)).is_success
    await desk.sign_in(MERCHANT_M1)
    listed = await desk.browser.get("/merchants")
    assert 'href="/merchants/M1"' in listed.text and 'href="/merchants/M2"' not in listed.text
    assert (await desk.browser.get("/merchants/M2")).status_code == 404
    exported = await desk.browser.get("/merchants/export.csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["商户", "名称"] and [r[0] for r in rows[1:]] == ["M1"]
    page = await desk.browser.get("/merchants/M1")
    assert "/merchants/M1/test" not in page.text  # a merchant may not send


async def test_the_list_pages_and_its_export_holds_every_merchant(desk: Desk) -> None:
    ids = [f"M{n:03d}" for n in range(60)]  # more than a page
    for merchant in ids:
        assert (await desk.api["ingest"].put(f"/v1/merchants/{merchant}", json=PROFILE)).is_success
    await desk.sign_in(ACQUIRER)
    first = await desk.browser.get("/merchants", params={"settlement_bank": "ICBC"})
    assert first.text.count('href="/merchants/M0') == 50 and "cursor=" in first.text
    exported = await desk.browser.get("/merchants/export.csv", params={"settlement_bank": "ICBC"})
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ids
    none = await desk.browser.get("/merchants/export.csv", params={"settlement_bank": "BOC"})
    assert none.content.decode("utf-8-sig").count("\n") == 1  # the header alone

"""A settlement report and a bank statement, end to end (SPEC §9, issue 13): the report says
the merchant's batch was paid out; the statement of its account has no such credit. Once the
grace has passed the merchant gets a signed `payout.missing` webhook; when the credit shows up
on a later statement the alert resolves. Ingest, matcher and alerts are all real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from settlewatch.demo.files import Batch, Credit, Line, adyen_report, camt053
from tests.alerts.integration.conftest import SECRET
from tests.alerts.integration.test_pipeline import eventually, pipeline, settings
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
IBAN = "CN1210000000000000000001"  # a settlement account of merchant M1


async def test_a_payout_missing_from_the_statement_reaches_the_merchant_and_resolves(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    # Nothing is judged until no file came for the quiet time: short here.
    env = settings(database_url, broker_bootstrap, topic_prefix, SETTLEWATCH_FILES_QUIET="PT3S")
    async with receiver() as rec, pipeline(env) as services:
        ingest, matcher, alerts = services.ingest, services.matcher, services.alerts
        recon = services.recon
        hook = {"url": f"{rec.url}/hook", "secret": SECRET}
        assert (await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})).is_success
        account = {"iban": IBAN, "currency": "CNY", "bank_code": "ICBC", "owner": "M1"}
        assert (await recon.put("/v1/settlement-accounts/A1", json=account)).is_success
        # Sold a week ago; the report says its batch was paid out five days ago.
        sold = datetime.now(UTC) - timedelta(days=7)
        paid = (datetime.now(UTC) - timedelta(days=5)).date()
        sales = [sale("T1", occurred_at=sold.isoformat()), sale("T2", occurred_at=sold.isoformat())]
        assert (await ingest.post("/v1/transactions", json={"items": sales})).status_code == 202

        async def known() -> bool:
            return all([(await matcher.get(f"/v1/payments/{t}")).is_success for t in ("T1", "T2")])

        await eventually(known)
        lines = [Line(t, 12800, 77, sold) for t in ("T1", "T2")]
        report = adyen_report([Batch("501", "PO-501", paid, lines)])
        imported = await recon.post("/v1/settlement-files?format=adyen", content=report)
        assert imported.status_code == 202, imported.text
        interest = Credit(12, paid, "INTEREST")
        statement = camt053(IBAN, "STMT-1", [interest])
        assert (await recon.post("/v1/settlement-files", content=statement)).status_code == 202

        missing_id = f"payout.missing:{imported.json()['file_id']}:2"

        def delivered(alert_id: str) -> list[dict[str, object]]:
            return [
                alert
                for got in rec.received
                for alert in got.json()["data"]["alerts"]
                if alert["alert_id"] == alert_id
            ]

        async def told() -> bool:
            return bool(delivered(missing_id))

        await eventually(told, timeout=60)
        (alert,) = delivered(missing_id)
        assert alert["merchant_id"] == "M1"
        assert alert["evidence"]["amount_minor"] == 2 * (12800 - 77)
        assert alert["evidence"]["reference"] == "PO-501"
        assert "PO-501" in str(alert["summary"]) and "未到账" in str(alert["summary"])
        for got in rec.received:
            standardwebhooks.Webhook(SECRET).verify(got.body, got.headers, json_parse=False)

        # The payments themselves were settled by the report's lines (late: a week after); the
        # matcher reads those settlements from the log, apart from recon's payout judgement.
        async def settled_late() -> bool:
            answers = [(await matcher.get(f"/v1/payments/{t}")).json() for t in ("T1", "T2")]
            return all(answer["status"] == "settled_late" for answer in answers)

        await eventually(settled_late)

        # The bank pays at last, naming the transfer: the alert resolves, saying why.
        late = Credit(2 * (12800 - 77), datetime.now(UTC).date(), "ACQ PO-501")
        later = camt053(IBAN, "STMT-2", [late])
        assert (await recon.post("/v1/settlement-files", content=later)).status_code == 202

        async def resolved() -> bool:
            answer = await alerts.get(f"/v1/alerts/{missing_id}")
            return answer.is_success and answer.json()["status"] == "resolved"

        await eventually(resolved)
        notes = (await alerts.get(f"/v1/alerts/{missing_id}")).json()["notes"]
        assert "arrived" in notes[-1]["note"]
        payout = (await recon.get(f"/v1/payouts/{imported.json()['file_id']}:2")).json()
        assert payout["status"] == "arrived"

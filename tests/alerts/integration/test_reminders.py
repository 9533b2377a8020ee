"""Reminders (SPEC §12) on a clock the test moves: open overdue alerts are re-sent once a
period as one digest per merchant, exactly once across restarts, until resolved or expired."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from settlewatch.alerts.delivery import Deliverer
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.alerts.views import delivery_json
from tests.alerts.integration.conftest import LOCAL, FakeClock, add_merchant, overdue
from tests.alerts.integration.test_webhooks import verify
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
WAIT = timedelta(seconds=10)
DAY = timedelta(days=1)


def midnight(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:01+00:00")


async def test_open_overdue_alerts_are_reminded_once_a_day_until_resolved_or_expired(
    database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock()  # 2026-11-22 08:00 UTC; the payments were due 2026-11-21 16:00 UTC
    async with receiver() as rec:
        for merchant in ("M1", "M2"):
            await add_merchant(database_url, merchant, f"{rec.url}/{merchant}")
        await add_merchant(database_url, "M3", None)  # no webhook: nothing to remind
        findings = [overdue("T1"), overdue("T2"), overdue("T3", "M2"), overdue("T4", "M3")]
        findings += [overdue("T5"), overdue("T5", state="resolved")]  # settled at once
        await alerts.absorb(findings, clock())

        def digests() -> list[tuple[str, str, list[str]]]:
            return [
                (
                    got.headers["webhook-id"],
                    got.json()["data"]["merchant_id"],
                    [a["alert_id"] for a in got.json()["data"]["alerts"]],
                )
                for got in rec.received
                if got.json()["type"] == "settlement.reminder"
            ]

        async with Deliverer(
            deliveries, group_wait=WAIT, clock=clock, remind_every=DAY, allowed=LOCAL
        ) as deliverer:
            clock.advance(WAIT)
            await deliverer.run_once()  # the alerts themselves
            clock.to(midnight("2026-11-23"))
            await deliverer.run_once()
            assert digests() == []  # not a whole day old at the start of this day
            clock.to(midnight("2026-11-24"))
            await deliverer.run_once()
            await deliverer.run_once()
        async with Deliverer(
            deliveries, group_wait=WAIT, clock=clock, remind_every=DAY, allowed=LOCAL
        ) as restarted:
            clock.advance(timedelta(hours=5))
            await restarted.run_once()  # the same day after a restart: not again
            assert digests() == [
                (
                    "rem_M1_20261124T000000Z",
                    "M1",
                    ["settlement.overdue:T1", "settlement.overdue:T2"],
                ),
                ("rem_M2_20261124T000000Z", "M2", ["settlement.overdue:T3"]),
            ]
            await alerts.absorb([overdue("T1", state="resolved")], clock())
            clock.to(midnight("2026-11-25"))
            await restarted.run_once()
            assert digests()[2:] == [
                ("rem_M1_20261125T000000Z", "M1", ["settlement.overdue:T2"]),
                ("rem_M2_20261125T000000Z", "M2", ["settlement.overdue:T3"]),
            ]
            clock.to(midnight("2026-12-22"))  # 30 days after the deadline: expired
            await restarted.run_once()
            assert len(digests()) == 4
    for got in rec.received:
        verify(got)
    page = await deliveries.page(merchant_id="M1", status=None, after=None, limit=10)
    logged = {d.delivery_id: delivery_json(d) for d in page}
    reminder = logged["rem_M1_20261125T000000Z"]
    assert (reminder["type"], reminder["status"]) == ("settlement.reminder", "delivered")
    assert reminder["alert_ids"] == ["settlement.overdue:T2"]

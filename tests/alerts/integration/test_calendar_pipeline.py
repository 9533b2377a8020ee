"""Calendars end to end (SPEC §10), ingest → matcher → alerts → Alertmanager, on the real clock:
a merchant on CN makes the next year without data page on-call (calendar.missing, one alert,
pushed with the Prometheus rule's name and labels) until it is loaded; a load that declares the
days since a payment's deadline holidays moves that deadline into the future and resolves its
overdue alert as deadline_moved."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from settlewatch.common.calendar import built_in
from settlewatch.common.events import MerchantProfile
from settlewatch.matcher.core.deadlines import Schedule, deadline
from tests.alerts.integration.test_pipeline import eventually, pipeline, settings
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.receiver import receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def overdue_sale_time(now: datetime) -> datetime:
    """A T1 sale whose deadline (CN as built in) passed at least ten minutes ago."""
    schedule = Schedule.of(MerchantProfile.model_validate(PROFILE | {"webhook": None}))
    occurred = datetime.combine(now.astimezone(SHANGHAI).date(), datetime.min.time(), SHANGHAI)
    occurred = occurred.replace(hour=10) - timedelta(days=2)
    while deadline(occurred, schedule).due_at > now - timedelta(minutes=10):
        occurred -= timedelta(days=1)
    return occurred


async def test_a_missing_year_pages_until_loaded_and_a_load_moves_a_fired_overdue(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    now = datetime.now(UTC)
    missing_year = now.year + 1  # chinesecalendar (pinned) knows no year after 2026
    assert not built_in("CN").covers(missing_year), "chinesecalendar knows next year: update"
    if now < datetime(missing_year, 1, 1, tzinfo=UTC) - timedelta(days=60):
        missing_year = now.year  # before November: the year running is the one missing
    async with receiver() as am:
        env = settings(database_url, broker_bootstrap, topic_prefix, ALERTMANAGER_URL=am.url)
        async with pipeline(env) as services:
            ingest, alerts = services.ingest, services.alerts
            assert (await ingest.put("/v1/merchants/M1", json=PROFILE)).status_code == 201
            occurred = overdue_sale_time(now)
            txn = sale("T-moved", occurred_at=occurred.isoformat())
            assert (await ingest.post("/v1/transactions", json={"items": [txn]})).status_code == 202

            async def alert(alert_id: str) -> dict[str, Any] | None:
                got = await alerts.get(f"/v1/alerts/{alert_id}")
                return got.json() if got.status_code == 200 else None

            missing_id = f"calendar.missing:CN:{missing_year}"

            async def paged() -> bool:
                return await alert(missing_id) is not None and any(
                    a["labels"]["alertname"] == "SettlewatchCalendarMissing"
                    for got in am.received
                    for a in got.json()
                )

            await eventually(paged)
            missing = await alert(missing_id)
            assert missing is not None
            assert (missing["status"], missing["merchant_id"]) == ("open", None)
            assert missing["summary"].startswith(f"Calendar CN has no data for {missing_year}")
            pushed = next(
                a
                for got in am.received
                for a in got.json()
                if a["labels"]["alertname"] == "SettlewatchCalendarMissing"
            )
            assert pushed["labels"] | {"service": "settlewatch"} == {
                "alertname": "SettlewatchCalendarMissing",
                "severity": "warning",
                "service": "settlewatch",
                "calendar": "CN",
                "year": str(missing_year),
            }

            load = {"holidays": [], "source": "test"}
            put = await ingest.put(f"/v1/calendars/CN/{missing_year}", json=load)
            assert put.status_code == 201

            async def loaded() -> bool:
                found = await alert(missing_id)
                return found is not None and found["status"] == "resolved"

            await eventually(loaded)

            overdue_id = "settlement.overdue:T-moved"
            await eventually(lambda: _exists(alert, overdue_id))
            # The days from the sale to a week from now become holidays (those of its year).
            first = occurred.astimezone(SHANGHAI).date() + timedelta(days=1)
            off = [first + timedelta(days=n) for n in range((now.date() - first).days + 8)]
            year = first.year
            current = (await ingest.get(f"/v1/calendars/CN/{year}")).json()
            holidays = sorted(
                {*current["holidays"], *(d.isoformat() for d in off if d.year == year)}
            )
            workdays = [w for w in current["workdays"] if date.fromisoformat(w) not in off]
            body = {"holidays": holidays, "workdays": workdays, "source": "test: days off"}
            assert (await ingest.put(f"/v1/calendars/CN/{year}", json=body)).status_code == 201

            async def moved() -> bool:
                found = await alert(overdue_id)
                return found is not None and found["status"] == "resolved"

            await eventually(moved)
            resolved = await alert(overdue_id)
            assert resolved is not None
            assert resolved["notes"][-1]["note"].startswith("deadline_moved: now due ")


async def _exists(alert: Any, alert_id: str) -> bool:
    return await alert(alert_id) is not None

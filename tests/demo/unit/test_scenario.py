"""The demo scenario is consistent whatever the day and hour it starts: every deadline falls
due when the demo waits for it (or moves past the announced window), nothing happens in the
future, and what it expects follows from what it injects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from settlewatch.common.events import MerchantProfile
from settlewatch.demo.scenario import FAILING_BANK, MAINTENANCE_BANK, build
from settlewatch.matcher.core.deadlines import Schedule, Window, deadline

STARTS = [
    datetime(2026, 11, 24, 6, 10, tzinfo=UTC),  # a Tuesday afternoon in Shanghai
    datetime(2026, 11, 22, 6, 10, tzinfo=UTC),  # a Sunday
    datetime(2026, 9, 30, 15, 58, tzinfo=UTC),  # 23:58 in Shanghai, before the National Day week
    datetime(2026, 2, 16, 1, 0, tzinfo=UTC),  # Spring Festival holidays
]


@pytest.mark.parametrize("now", STARTS, ids=lambda d: d.strftime("%Y-%m-%d %H:%M"))
def test_every_deadline_falls_due_when_the_demo_waits_for_it(now: datetime) -> None:
    scenario = build(now, due_in=timedelta(seconds=120), merchants=60, per_merchant=4)
    window = scenario.windows[0]
    maintenance = Window(
        datetime.fromisoformat(window["starts_at"]), datetime.fromisoformat(window["ends_at"])
    )
    assert now + timedelta(seconds=120) <= scenario.due_at <= now + timedelta(seconds=180)
    banks = {m: p["settlement_bank"] for m, p in scenario.merchants.items()}
    sales = {t["txn_id"]: t for t in scenario.transactions if t["type"] == "sale"}
    for sale in sales.values():
        occurred = datetime.fromisoformat(sale["occurred_at"])
        assert occurred < now
        profile = MerchantProfile.model_validate_json(
            orjson.dumps(scenario.merchants[sale["merchant_id"]])
        )
        bank = banks[sale["merchant_id"]]
        windows = [maintenance] if bank == MAINTENANCE_BANK else []
        due_at = deadline(occurred, Schedule.of(profile), windows).due_at
        if bank == MAINTENANCE_BANK:
            assert due_at > scenario.due_at + timedelta(hours=1)  # moved past the window
        elif sale["txn_id"].endswith("-DUP"):
            assert due_at > now  # the second charge, settled like the first
        else:
            assert scenario.due_at - timedelta(seconds=10) <= due_at <= scenario.due_at

    paid = {
        line["txn_id"]: settlement["status"]
        for settlement in scenario.settlements
        for line in settlement["items"]
    }
    assert set(paid) <= set(sales)
    assert {banks[sales[t]["merchant_id"]] for t in paid}.isdisjoint(
        {FAILING_BANK, MAINTENANCE_BANK}
    )
    voided = {t["original_txn_id"] for t in scenario.transactions if t["type"] == "void"}
    unpaid_at_failing = {
        t for t, sale in sales.items() if banks[sale["merchant_id"]] == FAILING_BANK
    }
    assert voided <= unpaid_at_failing
    assert scenario.expected.alerts["settlement.overdue"] == {
        f"settlement.overdue:{t}" for t in unpaid_at_failing - voided
    }
    assert list(paid.values()).count("failed") == 1


def test_the_same_seed_gives_the_same_scenario() -> None:
    now = STARTS[0]
    first = build(now, due_in=timedelta(seconds=60), merchants=20)
    again = build(now, due_in=timedelta(seconds=60), merchants=20)
    assert first.transactions == again.transactions and first.settlements == again.settlements

"""The demo scenario is consistent whatever the day and hour it starts: every deadline falls
due when the demo waits for it (or moves past the announced window), nothing happens in the
future, and what it expects follows from what it injects."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from settlewatch.common.calendar import built_in
from settlewatch.common.events import MerchantProfile
from settlewatch.demo.scenario import FAILING_BANK, MAINTENANCE_BANK, build
from settlewatch.matcher.core.deadlines import Schedule, Window, deadline
from settlewatch.recon.payouts import Credit, Expected, due, pair
from settlewatch.settlementfiles.formats import read
from settlewatch.settlementfiles.model import Entry, Payout, ReportLine

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
        elif sale["txn_id"].endswith("-DUP") or "-JUMP" in sale["txn_id"]:
            assert due_at > now  # the second charge and 跳码's sales: recent, settled
        elif "-P" in sale["merchant_id"]:
            assert due_at > scenario.due_at + timedelta(days=1)  # paid through the files
        else:
            assert scenario.due_at - timedelta(seconds=10) <= due_at <= scenario.due_at

    paid = {
        line["txn_id"]: settlement["status"]
        for settlement in scenario.settlements
        for line in settlement["items"]
    }
    payments = {t["txn_id"]: t for t in scenario.transactions if t["type"] != "void"}
    assert set(paid) <= set(payments)  # sales, and the chargeback the bank debits
    assert {banks[payments[t]["merchant_id"]] for t in paid}.isdisjoint(
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


@pytest.mark.parametrize("now", STARTS, ids=lambda d: d.strftime("%Y-%m-%d %H:%M"))
def test_the_files_pay_their_merchants_and_the_statement_pairs_as_injected(now: datetime) -> None:
    scenario = build(now, due_in=timedelta(seconds=120), merchants=10, per_merchant=2)
    files = scenario.payouts
    assert files is not None
    report = list(read(io.BytesIO(files.report), "adyen", None))
    paid = {r.txn_id for r in report if isinstance(r, ReportLine)}
    assert paid == {t["txn_id"] for t in scenario.transactions if "-P" in t["merchant_id"]}
    assert not any(r.problems for r in report)
    payouts = [r for r in report if isinstance(r, Payout)]
    entries = list(read(io.BytesIO(files.statement), "camt.053", None))
    credits = [
        Credit(f"{e.loc}:{n}", d.currency, d.amount_minor or 0, e.value_date, d.end_to_end_id or "")
        for e in entries
        if isinstance(e, Entry)
        for n, d in enumerate(e.details)
    ] + [
        Credit(str(e.loc), e.currency, e.amount_minor, e.value_date, e.info or "")
        for e in entries
        if isinstance(e, Entry) and not e.details
    ]
    expected = [
        Expected(p.reference or "", p.currency, p.amount_minor, p.value_date, p.reference)
        for p in payouts
    ]
    pairs = {p.expected.payout_id: p.status for p in pair(expected, credits, built_in("CN"))}
    outcomes = {r: o for r, o in files.outcomes.items() if o != "missing"}
    assert pairs == outcomes
    # The grace of the missing one is over when the demo starts: it is reported at once.
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert all(due(built_in("CN"), p.value_date, 1) <= today for p in payouts if p.value_date)


def test_the_same_seed_gives_the_same_scenario() -> None:
    now = STARTS[0]
    first = build(now, due_in=timedelta(seconds=60), merchants=20)
    again = build(now, due_in=timedelta(seconds=60), merchants=20)
    assert first.transactions == again.transactions and first.settlements == again.settlements


def test_money_out_is_announced_but_for_the_deduction_the_demo_expects_detected() -> None:
    scenario = build(STARTS[0], due_in=timedelta(seconds=120), merchants=60, per_merchant=4)
    by_id = {t["txn_id"]: t for t in scenario.transactions}
    chargeback = by_id[f"D{scenario.run}-CB"]
    sale = by_id[chargeback["original_txn_id"]]
    assert (chargeback["type"], chargeback["amount_minor"]) == ("chargeback", sale["amount_minor"])
    debited = [
        line
        for settlement in scenario.settlements
        for line in settlement["items"]
        if line["txn_id"] == chargeback["txn_id"]
    ]
    assert debited == [
        {
            "txn_id": chargeback["txn_id"],
            "gross_minor": -sale["amount_minor"],
            "fee_minor": 0,
            "net_minor": -sale["amount_minor"],
        }
    ]
    assert scenario.deductions is not None
    rows = scenario.deductions.decode().splitlines()[1:]
    referenced = [row.split(",")[0] for row in rows]
    assert [r in by_id for r in referenced] == [True, False]  # the rent announced, the 扣费 not
    assert set(scenario.announced) == {chargeback["txn_id"], referenced[0]}


def test_instant_merchants_are_settled_with_their_fixed_fee() -> None:
    scenario = build(STARTS[0], due_in=timedelta(seconds=120), merchants=60, per_merchant=4)
    instant = {
        m: p["fee_schedule"][0]["rules"][0]["rate_bps"]
        for m, p in scenario.merchants.items()
        if p["settlement_cycle"] == "instant" and "-P" not in m
    }
    amounts = {t["txn_id"]: t["amount_minor"] for t in scenario.transactions}
    short = {a.split(":")[1] for a in scenario.expected.alerts["settlement.amount_mismatch"]}
    charged = [
        (line["fee_minor"], amounts[line["txn_id"]], instant[settlement["merchant_id"]])
        for settlement in scenario.settlements
        if settlement["merchant_id"] in instant and settlement["status"] == "settled"
        for line in settlement["items"]
        if line["txn_id"] not in short  # the one injected ¥2.00 short
    ]
    assert charged
    for fee, amount, rate in charged:  # half-up of the rate, plus the ¥2.00 及时费
        assert fee == (amount * rate * 2 + 10_000) // 20_000 + 200


@pytest.mark.parametrize("now", STARTS, ids=lambda d: d.strftime("%Y-%m-%d %H:%M"))
def test_a_migration_and_a_region_jump_are_injected_and_expected(now: datetime) -> None:
    scenario = build(now, due_in=timedelta(seconds=120), merchants=60, per_merchant=4)
    [books] = scenario.expected.alerts["terminal.books_mismatch"]
    merchant_id, _, old, new = books.split(":")[1:]
    assert scenario.terminals[new] == {
        "merchant_id": merchant_id,
        "region": scenario.terminals[old]["region"],
        "replaces": old,
    }
    [moved] = [t for t in scenario.transactions if t["terminal_id"] == new]
    lines = [i for s in scenario.settlements for i in s["items"] if i["txn_id"] == moved["txn_id"]]
    assert [line["terminal_id"] for line in lines] == [old]  # the bank kept the old books
    [jump] = scenario.expected.alerts["terminal.region_jump"]
    pair = [t for t in scenario.transactions if "-JUMP" in t["txn_id"]]
    assert {t["terminal_id"] for t in pair} == {jump.split(":")[1]}
    assert len({t["region"] for t in pair}) == 2
    assert all(
        any(i["txn_id"] == t["txn_id"] for s in scenario.settlements for i in s["items"])
        for t in pair
    )

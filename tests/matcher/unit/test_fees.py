"""Fee schedules (SPEC §11): the version in force on the payment's local date, the first rule
that fits its card type and channel, round-half-up(gross × rate / 10000) + fixed, capped —
against a reference formula in exact rational arithmetic for any schedule, amount and date; and
what a merchant sees: no false mismatch for a fixed fee, a mismatch naming the rule."""

from __future__ import annotations

import json
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from settlewatch.common.events import MerchantProfile
from settlewatch.common.fees import FeeSchedule
from tests.matcher.unit.scenario import Run, merchant, sale, settlement
from tests.support.examples import examples

CARD_TYPES = ("debit", "credit", "any")
CHANNELS = ("instant", "scheduled", "any")

rules = st.fixed_dictionaries(
    {
        "card_type": st.sampled_from(CARD_TYPES),
        "channel": st.sampled_from(CHANNELS),
        "rate_bps": st.integers(0, 10_000),
        "fixed_minor": st.integers(0, 10_000),
        "cap_minor": st.none() | st.integers(0, 1_000_000),
    }
)


@st.composite
def schedules(draw: st.DrawFn) -> list[dict[str, Any]]:
    days = sorted(set(draw(st.lists(st.integers(0, 3 * 365), min_size=1, max_size=4))))
    return [
        {
            "effective_from": (date(2025, 1, 1) + timedelta(days=d)).isoformat(),
            "rules": draw(st.lists(rules, min_size=1, max_size=5)),
        }
        for d in days
    ]


def reference(
    schedule: list[dict[str, Any]], gross: int, on: date, card: str | None, channel: str
) -> int | None:
    """SPEC §11 read literally, with exact fractions."""
    in_force = [v for v in schedule if date.fromisoformat(v["effective_from"]) <= on]
    if not in_force:
        return None
    for given_rule in in_force[-1]["rules"]:
        rule = {"card_type": "any", "channel": "any", "fixed_minor": 0, "cap_minor": None}
        rule |= given_rule
        if rule["card_type"] in ("any", card) and rule["channel"] in ("any", channel):
            exact = Fraction(gross * rule["rate_bps"], 10_000)
            rounded = int(exact) + (1 if exact - int(exact) >= Fraction(1, 2) else 0)
            amount = rounded + rule["fixed_minor"]
            return amount if rule["cap_minor"] is None else min(amount, rule["cap_minor"])
    return None


def profile(**fields: Any) -> MerchantProfile:
    body = {"name": "m", "settlement_bank": "ICBC", "settlement_cycle": "T1"} | fields
    return MerchantProfile.model_validate_json(json.dumps(body))


@settings(max_examples=examples(500), deadline=None)
@given(
    schedules(),
    st.integers(1, 10**12),
    st.integers(-30, 4 * 365),
    st.sampled_from(["debit", "credit", None]),
    st.sampled_from(["instant", "scheduled"]),
)
def test_the_fee_is_the_reference_formula_for_any_schedule_amount_and_date(
    schedule: list[dict[str, Any]], gross: int, day: int, card: str | None, channel: str
) -> None:
    on = date(2025, 1, 1) + timedelta(days=day)
    applied = FeeSchedule.of(profile(fee_schedule=schedule)).applied(gross, on, card, channel)
    assert (applied.fee_minor if applied else None) == reference(schedule, gross, on, card, channel)


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(0, 10_000), st.none() | st.integers(0, 10**6), st.integers(1, 10**12))
def test_mdr_bps_and_fee_cap_are_a_one_rule_schedule(
    rate: int, cap: int | None, gross: int
) -> None:
    legacy = FeeSchedule.of(profile(mdr_bps=rate, fee_cap_minor=cap))
    rule = {"card_type": "any", "channel": "any", "rate_bps": rate, "cap_minor": cap}
    explicit = [{"effective_from": "2000-01-01", "rules": [rule]}]
    on = date(2026, 5, 1)
    expected = reference(explicit, gross, on, None, "scheduled")
    applied = legacy.applied(gross, on, None, "scheduled")
    assert applied is not None and applied.fee_minor == expected


INSTANT_FIXED = [
    {
        "effective_from": "2025-01-01",
        "rules": [
            {"channel": "instant", "rate_bps": 60, "fixed_minor": 200},  # 及时费 ¥2
            {"rate_bps": 60},
        ],
    }
]
DEBIT_CAPPED = [
    {"effective_from": "2025-01-01", "rules": [{"rate_bps": 60}]},
    {
        "effective_from": "2025-11-01",
        "rules": [
            {"card_type": "debit", "rate_bps": 50, "cap_minor": 2000},
            {"card_type": "credit", "rate_bps": 60},
        ],
    },
]


def test_an_instant_merchant_with_a_fixed_fee_gets_no_false_mismatch() -> None:
    instant = merchant(settlement_cycle="instant", instant_sla="PT2H", fee_schedule=INSTANT_FIXED)
    run = Run().feed(instant, sale("T1", "2025-11-20T10:00+08:00"))
    run.feed(settlement("S1", [("T1", 12800, 277, 12523)], occurred="2025-11-20T10:30+08:00"))
    assert [f.type for f in run.tick("2025-11-20T10:31+08:00")] == []
    assert run.status("T1") == "settled"


def test_a_mismatch_names_the_version_and_rule_and_the_fees_charged_and_expected() -> None:
    run = Run().feed(merchant(fee_schedule=DEBIT_CAPPED))
    run.feed(sale("T1", "2025-11-20T10:00+08:00", card_type="debit", amount_minor=1_000_000))
    run.feed(settlement("S1", [("T1", 1_000_000, 5000, 995_000)]))  # charged 0.5 %, no cap
    (found,) = run.tick("2025-11-21T10:00+08:00")
    assert found.type == "settlement.amount_mismatch"
    evidence = found.evidence
    assert (evidence["expected_fee_minor"], evidence["charged_fee_minor"]) == (2000, 5000)
    assert evidence["expected_net_minor"] == 998_000
    assert evidence["fee_rule"] == {
        "version_effective_from": "2025-11-01",
        "rule": 1,
        "card_type": "debit",
        "channel": "any",
        "rate_bps": 50,
        "fixed_minor": 0,
        "cap_minor": 2000,
    }


def test_a_payment_no_rule_fits_is_checked_on_its_gross_only() -> None:
    run = Run().feed(merchant(fee_schedule=DEBIT_CAPPED[1:]))  # debit and credit rules only
    run.feed(sale("T1", "2025-11-20T10:00+08:00"))  # card type unknown
    run.feed(settlement("S1", [("T1", 12800, 999, 11801)]))
    assert run.tick("2025-11-21T10:00+08:00") == []
    assert run.matcher.state.payments["T1"].expected_net_minor is None
    run.feed(sale("T2", "2025-11-20T10:00+08:00", card_fingerprint="x"))
    run.feed(settlement("S2", [("T2", 12000, 0, 12000)]))  # the wrong gross
    assert [f.type for f in run.tick("2025-11-21T10:01+08:00")] == ["settlement.amount_mismatch"]


@pytest.mark.parametrize(
    ("schedule", "loc"),
    [
        (
            [{"effective_from": "2025-01-01", "rules": [{"rate_bps": -1}]}],
            ["fee_schedule", 0, "rules", 0, "rate_bps"],
        ),
        (
            [{"effective_from": "2025-01-01", "rules": [{"fixed_minor": -5}]}],
            ["fee_schedule", 0, "rules", 0, "fixed_minor"],
        ),
        ([{"effective_from": "2025-01-01", "rules": []}], ["fee_schedule", 0, "rules"]),
        (
            [{"effective_from": "2025-01-01", "rules": [{"card_type": "amex"}]}],
            ["fee_schedule", 0, "rules", 0, "card_type"],
        ),
        (
            [
                {"effective_from": "2025-06-01", "rules": [{"rate_bps": 1}]},
                {"effective_from": "2025-01-01", "rules": [{"rate_bps": 2}]},
            ],
            ["fee_schedule"],
        ),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(
    schedule: list[dict[str, Any]], loc: list[Any]
) -> None:
    with pytest.raises(ValidationError) as refused:
        profile(fee_schedule=schedule)
    assert tuple(loc) in [e["loc"] for e in refused.value.errors()]

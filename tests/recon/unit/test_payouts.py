"""Expected payouts paired with statement credits (SPEC §9), pure: by reference first, then by
currency, amount and value date within one business day; one-to-one; deadlines in business
days."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from settlewatch.common.calendar import built_in
from settlewatch.recon.payouts import Credit, Expected, Tolerance, due, pair, within

CN = built_in("CN")
FRIDAY = date(2026, 11, 27)
MONDAY = date(2026, 11, 30)


def expected(payout_id: str = "P1", amount: int = 5_530_807, **changes: object) -> Expected:
    values: dict[str, object] = {
        "payout_id": payout_id,
        "currency": "CNY",
        "amount_minor": amount,
        "value_date": FRIDAY,
        "reference": "TX635094301XT batch 380",
    }
    return Expected(**(values | changes))  # type: ignore[arg-type]


def credit(credit_id: str = "F:1", amount: int = 5_530_807, **changes: object) -> Credit:
    values: dict[str, object] = {
        "credit_id": credit_id,
        "currency": "CNY",
        "amount_minor": amount,
        "value_date": MONDAY,
        "text": "",
    }
    return Credit(**(values | changes))  # type: ignore[arg-type]


def test_within_one_business_day_skips_the_weekend() -> None:
    assert within(CN, FRIDAY, MONDAY)  # the next business day
    assert within(CN, MONDAY, FRIDAY)  # the previous one
    assert not within(CN, FRIDAY, date(2026, 12, 1))  # two business days later
    assert not within(CN, FRIDAY, None)


def test_the_national_day_week_is_not_business_days() -> None:
    """2026-09-30 (Wednesday) → the next business day is 2026-10-08, after 国庆节."""
    assert within(CN, date(2026, 9, 30), date(2026, 10, 8))
    assert not within(CN, date(2026, 9, 30), date(2026, 10, 9))
    assert due(CN, date(2026, 9, 30), 1) == date(2026, 10, 9)


def test_an_exact_credit_on_the_next_business_day_is_the_payout() -> None:
    (found,) = pair([expected()], [credit()], CN)
    assert (found.credit.credit_id, found.status) == ("F:1", "arrived")


def test_a_credit_naming_the_payout_but_short_is_short() -> None:
    named = credit("F:2", 5_500_000, text="ADYEN TX635094301XT batch 380 PAYOUT")
    exact_elsewhere = credit("F:1")
    (found,) = pair([expected()], [exact_elsewhere, named], CN)
    assert (found.credit.credit_id, found.status) == ("F:2", "short")


def test_a_late_credit_naming_the_payout_is_still_it() -> None:
    late = credit(value_date=date(2026, 12, 9), text="TX635094301XT batch 380")
    (found,) = pair([expected()], [late], CN)
    assert found.status == "arrived"
    early = credit(value_date=date(2026, 11, 25), text="TX635094301XT batch 380")
    assert pair([expected()], [early], CN) == []  # before the value date's previous day


def test_another_currency_or_amount_or_date_is_not_the_payout() -> None:
    assert pair([expected()], [credit(currency="USD")], CN) == []
    assert pair([expected()], [credit(amount=5_530_806)], CN) == []
    assert pair([expected()], [credit(value_date=date(2026, 12, 2))], CN) == []
    assert pair([expected(value_date=None)], [credit()], CN) == []  # only by reference then


def test_two_equal_payouts_take_two_credits() -> None:
    pairs = pair([expected("P1"), expected("P2")], [credit("F:1"), credit("F:2")], CN)
    assert sorted((p.expected.payout_id, p.credit.credit_id) for p in pairs) == [
        ("P1", "F:1"),
        ("P2", "F:2"),
    ]


@given(
    st.lists(st.integers(min_value=1, max_value=3), min_size=0, max_size=6),
    st.lists(st.integers(min_value=1, max_value=3), min_size=0, max_size=6),
)
def test_pairs_are_one_to_one_and_of_equal_money(payouts: list[int], credits: list[int]) -> None:
    found = pair(
        [expected(f"P{i}", amount) for i, amount in enumerate(payouts)],
        [credit(f"F:{i}", amount) for i, amount in enumerate(credits)],
        CN,
    )
    assert len({p.expected.payout_id for p in found}) == len(found)
    assert len({p.credit.credit_id for p in found}) == len(found)
    assert all(p.expected.amount_minor == p.credit.amount_minor for p in found)
    # As many pairs as the amounts allow: nothing pairable is left unpaired.
    for amount in set(payouts):
        assert sum(p.expected.amount_minor == amount for p in found) == min(
            payouts.count(amount), credits.count(amount)
        )


def test_an_accounts_amount_tolerance_pairs_a_credit_a_little_off_recording_the_difference() -> (
    None
):
    strict = pair([expected(amount=10_000)], [credit(amount=9_998)], CN)
    assert strict == []  # no tolerance: another amount is another credit
    loose = Tolerance(amount_minor=5)
    (paired,) = pair([expected(amount=10_000)], [credit(amount=9_998, tolerance=loose)], CN)
    assert (paired.status, paired.difference_minor) == ("arrived", -2)
    assert pair([expected(amount=10_000)], [credit(amount=9_994, tolerance=loose)], CN) == []


def test_a_credit_named_by_reference_is_short_only_beyond_the_tolerance() -> None:
    named = {"text": "TX635094301XT batch 380", "tolerance": Tolerance(amount_minor=5)}
    (near,) = pair([expected(amount=10_000)], [credit(amount=9_996, **named)], CN)
    assert (near.status, near.difference_minor) == ("arrived", -4)
    (far,) = pair([expected(amount=10_000)], [credit(amount=9_000, **named)], CN)
    assert (far.status, far.difference_minor) == ("short", -1_000)


def test_a_days_tolerance_widens_the_value_dates_window_in_business_days() -> None:
    two_later = date(2026, 12, 1)  # Friday + 2 business days
    assert pair([expected()], [credit(value_date=two_later)], CN) == []
    wide = Tolerance(days=2)
    assert len(pair([expected()], [credit(value_date=two_later, tolerance=wide)], CN)) == 1
    same_day = Tolerance(days=0)
    assert pair([expected()], [credit(value_date=MONDAY, tolerance=same_day)], CN) == []
    assert len(pair([expected()], [credit(value_date=FRIDAY, tolerance=same_day)], CN)) == 1


@given(
    st.integers(-50, 50),
    st.integers(0, 20),
    st.booleans(),
)
def test_a_pair_arrives_within_the_tolerance_and_is_short_beyond_it(
    off: int, allowed: int, named: bool
) -> None:
    text = "TX635094301XT batch 380" if named else ""
    tolerance = Tolerance(amount_minor=allowed)
    pairs = pair(
        [expected(amount=10_000)], [credit(amount=10_000 + off, text=text, tolerance=tolerance)], CN
    )
    if abs(off) <= allowed:
        assert [(p.status, p.difference_minor) for p in pairs] == [("arrived", off)]
    elif named:
        assert [(p.status, p.difference_minor) for p in pairs] == [("short", off)]
    else:
        assert pairs == []  # another amount, not named: another credit

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlewatch.common.pan import find_pans, is_iban, looks_like_pan, mask_pans, may_contain_pan

VISA = "4111111111111111"


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        "5555555555554444",  # Mastercard
        "378282246310005",  # Amex, 15 digits
        "6212345678901265",  # UnionPay-like, Luhn-valid
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        f"card {VISA} declined",
        f"ref {VISA} 12",  # a PAN followed by other digits
        f"order 12 {VISA}",
    ],
)
def test_card_numbers_are_recognised(text: str) -> None:
    assert looks_like_pan(text)
    assert may_contain_pan(json.dumps({"x": text}).encode())


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits
        "41111111111111111111111",  # 23 digits: an id, not a card
        "2025-11-20T10:02:31+08:00",
        "532410283771",  # RRN
        "T20251120-000123",
        "4111  1111  1111  1111",  # double spaces are not a card layout
    ],
)
def test_other_numbers_are_not(text: str) -> None:
    assert not looks_like_pan(text)


def test_pans_are_located_in_nested_values_and_keys() -> None:
    body = {"items": [{"a": "ok"}, {"b": ["x", f"pay {VISA}"]}], VISA: 1}
    assert sorted(map(str, find_pans(body))) == sorted(map(str, [("items", 1, "b", 1), (VISA,)]))


def test_a_unicode_escape_cannot_hide_a_pan_from_the_prefilter() -> None:
    escaped = json.dumps({"x": VISA}).replace("4", "\\u0034").encode()
    assert may_contain_pan(escaped)


@given(st.text(alphabet="0123456789 -ab", max_size=60))
def test_the_prefilter_never_misses_what_the_guard_catches(text: str) -> None:
    if looks_like_pan(text):
        assert may_contain_pan(json.dumps({"value": text}).encode())


def test_a_valid_iban_is_a_bank_account_even_when_its_digits_pass_luhn() -> None:
    """Settlement accounts are registered by IBAN (issue 13); this one's digits pass Luhn."""
    assert looks_like_pan("2801234000123456789")
    assert not looks_like_pan("CH2801234000123456789")
    assert looks_like_pan("FR2801234000123456789")  # fails mod 97: not an IBAN


@pytest.mark.parametrize(
    ("text", "masked", "count"),
    [
        (VISA, "411111******1111", 1),
        ("card 4111 1111 1111 1111 declined", "card 411111******1111 declined", 1),
        ("378282246310005 and 5555-5555-5555-4444", "378282*****0005 and 555555******4444", 2),
        ("ref 12 4111111111111111", "ref 12 411111******1111", 1),
        ("no card 4111111111111112 here", "no card 4111111111111112 here", 0),
        ("CH9300762011623852957", "CH9300762011623852957", 0),  # an IBAN
    ],
)
def test_a_card_number_is_cut_to_its_first_six_and_last_four_digits(
    text: str, masked: str, count: int
) -> None:
    assert mask_pans(text) == (masked, count)


@given(st.text(alphabet="0123456789 -abc", max_size=60))
def test_what_is_masked_no_longer_looks_like_a_card(text: str) -> None:
    masked, count = mask_pans(text)
    assert not looks_like_pan(masked) or is_iban(text)
    assert (count > 0) == looks_like_pan(text)

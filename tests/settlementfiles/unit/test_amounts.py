"""The one amount grammar of every file format (issue 28 item 3): sign, digits, one decimal
separator, the file's thousands separator — no exponent — and at most 10^15 minor units, read
with integer arithmetic (``Decimal("1e100000000")`` made an int never returns)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlewatch.common.money import MAX_MINOR
from settlewatch.settlementfiles.amounts import to_minor


@given(
    st.integers(-MAX_MINOR, MAX_MINOR),
    st.sampled_from([("EUR", 2), ("JPY", 0), ("BHD", 3), ("CNY", 2)]),
    st.integers(0, 3),
)
def test_every_amount_in_range_reads_as_decimal_arithmetic_reads_it(
    minor: int, currency: tuple[str, int], padding: int
) -> None:
    code, places = currency
    written = f"{Decimal(minor).scaleb(-places):f}" + ("0" * padding if places else "")
    if places and "." not in written:
        written += "." + "0" * padding
    assert to_minor(written, code) == minor
    assert to_minor(written.replace(".", ","), code, decimal_comma=True) == minor


@pytest.mark.parametrize(
    "written",
    [
        "1e100000000",
        "1E+6",
        "9" * 5000,
        "NaN",
        "Infinity",
        "-",
        ".",
        "",
        "0x10",
        "１２",
        "1.2.3",
        "1 000",
        "+-1",
        "12 CNY",
    ],
)
def test_anything_but_digits_and_one_separator_is_not_an_amount(written: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        to_minor(written, "CNY")
    with pytest.raises(ValueError, match="not an amount"):
        to_minor(written, "CNY", unit="minor")


def test_amounts_are_held_to_ten_to_the_fifteen_minor_units() -> None:
    assert to_minor("10000000000000.00", "CNY") == MAX_MINOR
    assert to_minor("-1000000000000000", "CNY", unit="minor") == -MAX_MINOR
    for written in ("10000000000000.01", "9223372036854775808", "-99999999999999999"):
        with pytest.raises(ValueError, match="10\\^15"):
            to_minor(written, "CNY", unit="minor" if "." not in written else "major")


def test_separators_and_units_as_the_file_writes_them() -> None:
    assert to_minor("1,280.00", "CNY", thousands_separator=",") == 128000
    assert to_minor("1.280,5", "EUR", decimal_comma=True, thousands_separator=".") == 128050
    assert to_minor("12800", "CNY", unit="minor") == 12800
    assert to_minor("12800.00", "CNY", unit="minor") == 12800
    assert to_minor(".5", "CNY") == 50
    assert to_minor("+7", "CNY") == 700
    with pytest.raises(ValueError, match="whole number of minor units"):
        to_minor("12800.5", "CNY", unit="minor")
    with pytest.raises(ValueError, match="more decimals than EUR"):
        to_minor("8.855", "EUR")


def test_a_format_that_rounds_its_fees_is_read_rounded_half_up() -> None:
    assert to_minor("0.00600", "CNY", round_half_up=True) == 1
    assert to_minor("0.00499", "CNY", round_half_up=True) == 0
    assert to_minor("-0.015", "CNY", round_half_up=True) == -2

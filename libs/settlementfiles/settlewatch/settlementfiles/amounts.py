"""Amounts as written in files → integer minor units of their ISO 4217 currency.

One bounded grammar for every parser: an optional sign, digits, at most one decimal separator
and the file's thousands separator — no exponent, no ``NaN``, nothing longer than a money
amount can be. Read with integer arithmetic only (``Decimal("1e100000000")`` turned into an
int never ends), and held to |value| ≤ 10^15 minor units, as the API holds its amounts.
"""

from __future__ import annotations

import re
from typing import Literal

from iso4217 import Currency

from settlewatch.common.money import MAX_MINOR

__all__ = ["exponent", "to_minor"]

_LONGEST = 40  # characters: 10^15 minor units with separators and a few trailing zeros
_AMOUNT = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent (EUR 2, JPY 0, BHD 3); ValueError for an unknown code or
    one without minor units (gold, SDR)."""
    try:
        found = Currency(currency.upper()).exponent
    except ValueError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency") from None
    if found is None:
        raise ValueError(f"{currency} has no minor unit")
    return found


def to_minor(
    text: str,
    currency: str,
    *,
    decimal_comma: bool = False,
    thousands_separator: str | None = None,
    unit: Literal["major", "minor"] = "major",
    round_half_up: bool = False,
) -> int:
    """``"8.850"`` EUR → 885; with ``unit="minor"`` the text already counts minor units (分).
    A value that would lose precision (``"8.855"`` EUR) is refused — a statement is evidence,
    never rounded — unless the format itself rounds (`round_half_up`: WeChat Pay's fees)."""
    written = text.strip()
    if len(written) > _LONGEST:
        raise ValueError(f"{_shown(text)} is not an amount: longer than {_LONGEST} characters")
    if thousands_separator:
        written = written.replace(thousands_separator, "")
    if decimal_comma:
        written = written.replace(",", ".")
    found = _AMOUNT.fullmatch(written)
    if found is None or not (found.group(2) or found.group(3)):
        raise ValueError(f"{_shown(text)} is not an amount (digits, one decimal separator)")
    sign, whole, fraction = found.group(1), found.group(2), found.group(3) or ""
    places = 0 if unit == "minor" else exponent(currency)
    kept, dropped = fraction[:places].ljust(places, "0"), fraction[places:]
    minor: int = int(whole or "0") * 10**places + int(kept or "0")
    if dropped.strip("0"):
        if not round_half_up:
            if unit == "minor":
                raise ValueError(f"{_shown(text)} is not a whole number of minor units")
            raise ValueError(
                f"{_shown(text)} has more decimals than {currency} has minor units ({places})"
            )
        minor += dropped[0] >= "5"
    if minor > MAX_MINOR:
        raise ValueError(f"{_shown(text)} is more than 10^15 minor units")
    return -minor if sign == "-" else minor


def _shown(text: str) -> str:
    """The value as an error quotes it: a hostile cell is not echoed whole."""
    return repr(text if len(text) <= _LONGEST else text[:_LONGEST] + "…")

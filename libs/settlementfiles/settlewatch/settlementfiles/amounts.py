"""Decimal amounts as written in files → integer minor units of their ISO 4217 currency."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency

__all__ = ["exponent", "to_minor"]


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


def to_minor(text: str, currency: str, *, decimal_comma: bool = False) -> int:
    """``"8.850"`` EUR → 885. A value that would lose precision (``"8.855"`` EUR) is refused:
    a statement is evidence, never rounded."""
    written = text.strip().replace(",", ".") if decimal_comma else text.strip()
    try:
        value = Decimal(written)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount")
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(
            f"{text!r} has more decimals than {currency} has minor units ({exponent(currency)})"
        )
    return int(minor)

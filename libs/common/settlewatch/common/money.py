"""Money is an integer of minor units plus an ISO 4217 alpha-3 currency code; never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import pycountry
from babel.numbers import format_currency, get_currency_precision

__all__ = [
    "BABEL",
    "ISO4217_CODES",
    "MAX_MINOR",
    "Locale",
    "fee_minor",
    "is_iso4217",
    "major",
    "money",
]

Locale = Literal["zh-CN", "en"]
BABEL = {"zh-CN": "zh_CN", "en": "en"}  # Babel's names of the locales

# 10^15 minor units (10 trillion yuan): far above any card payment or payout, and well inside
# PostgreSQL bigint, so sums over millions of payments cannot overflow.
MAX_MINOR = 10**15


ISO4217_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies)


def is_iso4217(code: str) -> bool:
    """True for a current ISO 4217 alpha-3 code (upper case, as the standard writes them)."""
    return code in ISO4217_CODES


def fee_minor(gross_minor: int, rate_bps: int, cap_minor: int | None = None) -> int:
    """The fee on `gross_minor` (SPEC §6): round-half-up(gross × rate_bps / 10000), capped at
    `cap_minor`; integers only."""
    amount = (gross_minor * rate_bps * 2 + 10_000) // 20_000
    return min(amount, cap_minor) if cap_minor is not None else amount


def major(amount_minor: int, currency: str) -> Decimal:
    """128.00 for 12800 CNY: exact, with the currency's own minor units."""
    return Decimal(amount_minor).scaleb(-get_currency_precision(currency))


def money(amount_minor: int, currency: str, locale: Locale) -> str:
    """¥128.00 for 12800 CNY in zh-CN."""
    return format_currency(major(amount_minor, currency), currency, locale=BABEL[locale])

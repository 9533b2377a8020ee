"""The PAN guard (SPEC §3): no card number is ever accepted, stored, logged or published.

A value "looks like a PAN" when it holds a run of 13–19 digits, optionally grouped by single
spaces or dashes as printed on receipts, that passes the Luhn check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["find_pans", "looks_like_pan", "may_contain_pan"]

# Digit runs with optional single separators; the digit count is checked after stripping them.
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
_RAW_CANDIDATE = re.compile(rb"[0-9](?:[ -]?[0-9]){12,}|\\u00")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    for match in _CANDIDATE.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return True
    return False


def may_contain_pan(raw: bytes) -> bool:
    """Cheap pre-filter over a raw JSON body: False means no string in it can hold a PAN.

    A JSON ``\\u00XX`` escape could hide digits from the scan, so it always answers True then.
    """
    return _RAW_CANDIDATE.search(raw) is not None


def find_pans(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The locations of every string (object keys included) that looks like a PAN."""
    if isinstance(value, str):
        if looks_like_pan(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if looks_like_pan(key):
                yield (*loc, key)
            yield from find_pans(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_pans(item, (*loc, index))

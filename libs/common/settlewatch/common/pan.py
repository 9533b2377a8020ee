"""The PAN guard (SPEC §3): no card number is ever accepted, stored, logged or published.

A value "looks like a PAN" when it holds a run of 13–19 digits, optionally grouped by single
spaces or dashes as printed on receipts, that passes the Luhn check — unless the whole value is
a valid IBAN (ISO 13616: its own mod-97 check digits say it is a bank account; a settlement
account's IBAN often holds a Luhn-valid run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["find_pans", "is_iban", "looks_like_pan", "may_contain_pan"]

# Digit groups joined by single separators ("4111 1111-1111 1111"); the PAN may be any run of
# consecutive groups in it, so "ref 4111111111111111 12" is caught too.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_SEPARATOR = re.compile(r"[ -]")
# Every digit byte → "9", every other byte → "-"; spaces and dashes are deleted first.
_DIGITS_ONLY = bytes.maketrans(
    bytes(range(256)), bytes(57 if 48 <= b <= 57 else 45 for b in range(256))
)
_THIRTEEN = b"9" * 13
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def is_iban(text: str) -> bool:
    """Whether `text` is an IBAN with valid check digits (ISO 13616 mod 97)."""
    if not _IBAN.fullmatch(text):
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    if is_iban(text):
        return False
    for match in _DIGIT_RUN.finditer(text):
        groups = _SEPARATOR.split(match.group())
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and _luhn(digits):
                    return True
    return False


def may_contain_pan(raw: bytes) -> bool:
    """Cheap pre-filter over a raw JSON body: False means no string in it can hold a PAN.

    With every space and dash removed, any candidate run becomes 13+ consecutive digits, which a
    substring search finds at C speed once all digits are mapped to one byte. A JSON
    ``\\u00XX`` escape could hide digits, so it answers True then.
    """
    return b"\\u00" in raw or _THIRTEEN in raw.translate(_DIGITS_ONLY, b" -")


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

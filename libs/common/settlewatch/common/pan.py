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

__all__ = ["PAN_MESSAGE", "find_pans", "is_iban", "looks_like_pan", "mask_pans", "may_contain_pan"]

PAN_MESSAGE = "looks like a card number (PAN); send card_fingerprint, never the PAN"

# Digit groups joined by single separators ("4111 1111-1111 1111"); the PAN may be any run of
# consecutive groups in it, so "ref 4111111111111111 12" is caught too.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
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


def _pans(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, digits) of each PAN in `text`: for each group that starts one, the longest
    run of consecutive groups from it that passes Luhn; the search goes on after it."""
    if is_iban(text):
        return
    for match in _DIGIT_RUN.finditer(text):
        groups = [
            (match.start() + g.start(), match.start() + g.end())
            for g in _GROUP.finditer(match.group())
        ]
        first = 0
        while first < len(groups):
            digits, found = "", None
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and _luhn(digits):
                    found = (last, digits)
            if found is None:
                first += 1
                continue
            last, pan = found
            yield groups[first][0], groups[last][1], pan
            first = last + 1


def looks_like_pan(text: str) -> bool:
    return next(_pans(text), None) is not None


def mask_pans(text: str) -> tuple[str, int]:
    """`text` with each PAN cut to its first 6 and last 4 digits (``411111******1111``), as
    PCI DSS allows a PAN to be shown; and how many there were."""
    found = list(_pans(text))
    for start, end, pan in reversed(found):
        text = text[:start] + pan[:6] + "*" * (len(pan) - 10) + pan[-4:] + text[end:]
    return text, len(found)


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

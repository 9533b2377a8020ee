"""Request bodies: parsed and validated in one strict pass, every problem reported at once.

Bad input raises :class:`ProblemError` naming each bad field (``loc`` starting with
``["items", i]`` in batches) and nothing is published. The PAN guard scans the raw body first
and walks the parsed JSON only when a candidate digit run is there, so the common case costs one
regex pass. Error messages never echo the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from settlewatch.common.events import ID_PATTERN, Transaction
from settlewatch.common.pan import find_pans, looks_like_pan, may_contain_pan
from settlewatch.common.problems import ProblemError

__all__ = [
    "PAN_MESSAGE",
    "check_path_id",
    "missing_original_errors",
    "parse_body",
    "reject",
    "unregistered_errors",
]

T = TypeVar("T")
Error = dict[str, Any]
_ID = re.compile(ID_PATTERN)
PAN_MESSAGE = "looks like a card number (PAN); send card_fingerprint, never the PAN"


def _pan_errors(raw: bytes) -> list[Error]:
    if not may_contain_pan(raw):
        return []
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    return [{"loc": list(loc), "msg": PAN_MESSAGE} for loc in find_pans(data)]


def parse_body(raw: bytes, schema: TypeAdapter[T]) -> T:
    """The validated body, or ProblemError (400 for malformed JSON, 422 for bad fields)."""
    errors = _pan_errors(raw)
    try:
        parsed = schema.validate_json(raw)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ProblemError(
                400, "The body is not valid JSON.", [{"loc": ["body"], "msg": "invalid JSON"}]
            ) from None
        errors += [{"loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
    if errors:
        raise ProblemError(422, "The request is not valid; nothing was accepted.", _ordered(errors))
    return parsed


def unregistered_errors(merchant_ids: Sequence[str], unknown: set[str]) -> list[Error]:
    """Errors for batch items whose merchant is not registered."""
    return [
        {"loc": ["items", index, "merchant_id"], "msg": "merchant is not registered"}
        for index, merchant_id in enumerate(merchant_ids)
        if merchant_id in unknown
    ]


def missing_original_errors(transactions: Sequence[Transaction]) -> list[Error]:
    """Refunds, voids and reversals must name the transaction they undo."""
    return [
        {"loc": ["items", index, "original_txn_id"], "msg": f"is required for a {txn['type']}"}
        for index, txn in enumerate(transactions)
        if txn["type"] != "sale" and not txn.get("original_txn_id")
    ]


def reject(errors: list[Error]) -> None:
    if errors:
        raise ProblemError(422, "The request is not valid; nothing was accepted.", _ordered(errors))


def check_path_id(name: str, value: str) -> None:
    """Path parameters get the same rules as body fields: the id pattern and the PAN guard."""
    if looks_like_pan(value):
        reject([{"loc": ["path", name], "msg": PAN_MESSAGE}])
    if not _ID.fullmatch(value):
        reject([{"loc": ["path", name], "msg": "must be 1-64 characters of A-Z a-z 0-9 . _ : -"}])


def _ordered(errors: list[Error]) -> list[Error]:
    """Errors in body order (items by index), so clients can walk them alongside their batch."""
    return sorted(
        errors,
        key=lambda e: [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in e["loc"]],
    )

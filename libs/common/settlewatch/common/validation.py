"""Request bodies of ingest and recon: parsed and validated in one strict pass, every problem
reported at once (a settlement file's lines go through `checked_settlements` as the API's do).

Bad input raises :class:`ProblemError` naming each bad field (``loc`` starting with
``["items", i]`` in batches) and nothing is published. A key given twice in one object is
refused: JSON parsers disagree on which value wins, so a duplicate could carry one value past
the guards and another to a consumer. The PAN guard scans the raw body first and walks the
parsed JSON only when a candidate digit run is there, so the common case costs one regex pass.
Error messages never echo the offending value.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import jiter
from pydantic import TypeAdapter, ValidationError

from settlewatch.common.events import ID_PATTERN, NEEDS_ORIGINAL, SettlementBatch, Transaction
from settlewatch.common.pan import PAN_MESSAGE, find_pans, looks_like_pan, may_contain_pan
from settlewatch.common.problems import ProblemError

__all__ = [
    "MAX_VALUE_DATE_AHEAD",
    "MAX_WINDOW_AHEAD",
    "PAN_MESSAGE",
    "Body",
    "Error",
    "check_path_id",
    "checked_settlements",
    "future_errors",
    "missing_original_errors",
    "parse_body",
    "reject",
    "unregistered_errors",
]

T = TypeVar("T")
Error = dict[str, Any]
_ID = re.compile(ID_PATTERN)
DUPLICATE_MESSAGE = "this key appears more than once in its object; send it once"
# How far ahead of ingest's clock a value date and the end of a maintenance window may lie.
MAX_VALUE_DATE_AHEAD = timedelta(days=31)
MAX_WINDOW_AHEAD = timedelta(days=366)


class Body(NamedTuple, Generic[T]):
    valid: T  # as validated (times and dates parsed)
    plain: Any  # the JSON as sent, for publishing exactly what was accepted


def parse_body(raw: bytes, schema: TypeAdapter[T]) -> Body[T]:
    """The validated body, or ProblemError (400 for malformed JSON, 422 for bad fields)."""
    try:
        plain = jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True)
    except ValueError as exc:
        if "duplicate key" in str(exc):
            reject(_duplicate_key_errors(raw))
        raise ProblemError(
            400, "The body is not valid JSON.", [{"loc": ["body"], "msg": "invalid JSON"}]
        ) from None
    errors = []
    if may_contain_pan(raw):
        errors = [{"loc": list(loc), "msg": PAN_MESSAGE} for loc in find_pans(plain)]
    try:
        valid = schema.validate_json(raw)
    except ValidationError as exc:
        named = {tuple(error["loc"]) for error in errors}  # a free text's own PAN check says so too
        errors += [
            {"loc": list(err["loc"]), "msg": err["msg"]}
            for err in exc.errors()
            if tuple(err["loc"]) not in named
        ]
    reject(errors)
    return Body(valid, plain)


class _Pairs(dict[str, Any]):
    """An object as parsed, remembering the keys it was given more than once."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    obj.duplicates = [key for key, n in Counter(key for key, _ in pairs).items() if n > 1]
    return obj


def _duplicates(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, _Pairs):
        for key in value.duplicates:
            yield (*loc, key)
        for key, item in value.items():
            yield from _duplicates(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _duplicates(item, (*loc, index))


def _duplicate_key_errors(raw: bytes) -> list[Error]:
    """Where each duplicated key is (the fast parser only says that one exists)."""
    parsed = json.loads(raw, object_pairs_hook=_pairs)
    return [{"loc": list(loc), "msg": DUPLICATE_MESSAGE} for loc in _duplicates(parsed)]


_SETTLEMENTS = TypeAdapter(SettlementBatch)


def checked_settlements(raw: bytes, now: datetime, skew: timedelta) -> Body[SettlementBatch]:
    """A batch of settlements as ``POST /v1/settlements`` accepts it, and as a settlement file's
    matched line must be to be published (one definition for both paths: a line the API would
    refuse stays an exception that says why, instead of a dead letter at the matcher)."""
    body = parse_body(raw, _SETTLEMENTS)
    reject(future_errors(body.valid["items"], ("occurred_at", "value_date"), now, skew))
    return body


def future_errors(
    items: Sequence[Mapping[str, Any]], fields: Sequence[str], now: datetime, skew: timedelta
) -> list[Error]:
    """Batch items whose times (`fields`) are ahead of ingest's clock by more than `skew` (a
    terminal with a wrong clock), or whose value dates are more than MAX_VALUE_DATE_AHEAD ahead:
    no deadline is computed from a time that has not happened yet."""
    latest_time, latest_day = now + skew, (now + MAX_VALUE_DATE_AHEAD).date()
    errors: list[Error] = []
    for index, item in enumerate(items):
        for name in fields:
            value = item.get(name)
            if isinstance(value, datetime):
                if value > latest_time:
                    msg = f"is more than {_text(skew)} ahead of the server clock"
                    errors.append({"loc": ["items", index, name], "msg": msg})
            elif isinstance(value, date) and value > latest_day:
                msg = f"is more than {_text(MAX_VALUE_DATE_AHEAD)} ahead of the server clock"
                errors.append({"loc": ["items", index, name], "msg": msg})
    return errors


def _text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


def unregistered_errors(merchant_ids: Sequence[str], unknown: set[str]) -> list[Error]:
    """Errors for batch items whose merchant is not registered."""
    return [
        {"loc": ["items", index, "merchant_id"], "msg": "merchant is not registered"}
        for index, merchant_id in enumerate(merchant_ids)
        if merchant_id in unknown
    ]


def missing_original_errors(transactions: Sequence[Transaction]) -> list[Error]:
    """Refunds, voids, reversals and chargebacks must name the transaction they undo; an
    adjustment must say which way the money goes."""
    errors: list[Error] = []
    for index, txn in enumerate(transactions):
        if txn["type"] in NEEDS_ORIGINAL and not txn.get("original_txn_id"):
            msg = f"is required for a {txn['type']}"
            errors.append({"loc": ["items", index, "original_txn_id"], "msg": msg})
        if txn["type"] == "adjustment" and not txn.get("direction"):
            msg = "is required for an adjustment: credit (to the merchant) or debit"
            errors.append({"loc": ["items", index, "direction"], "msg": msg})
    return errors


def reject(errors: list[Error]) -> None:
    """ProblemError 422 with `errors` in body order, unless there are none."""
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

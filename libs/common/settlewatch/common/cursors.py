"""Page cursors of the list APIs (alerts, deliveries, payments): the last item's time and id,
so that a page starts strictly after it and items inserted meanwhile never repeat or shift; of
a list ordered by its key alone (merchants), the last key."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson

from settlewatch.common.problems import ProblemError

__all__ = ["decode_cursor", "decode_key_cursor", "encode_cursor", "encode_key_cursor"]


def encode_cursor(at: datetime | str, key: str) -> str:
    """`at` as a datetime or as the ISO string an item already shows."""
    moment = at.isoformat() if isinstance(at, datetime) else at
    return base64.urlsafe_b64encode(orjson.dumps([moment, key])).decode().rstrip("=")


def _invalid() -> ProblemError:
    msg = "not a cursor from a previous page"
    return ProblemError(422, "invalid cursor", [{"loc": ["query", "cursor"], "msg": msg}])


def encode_key_cursor(key: str) -> str:
    """A cursor of a list ordered by its key alone (merchants by id)."""
    return base64.urlsafe_b64encode(orjson.dumps([key])).decode().rstrip("=")


def decode_key_cursor(cursor: str | None) -> str | None:
    """The key a cursor of :func:`encode_key_cursor` stands for; 422 naming ``cursor`` else."""
    if cursor is None:
        return None
    try:
        (key,) = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, str) or "\x00" in key:
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, TypeError):
        raise _invalid() from None
    return key


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) a cursor stands for; 422 naming ``cursor`` for one no page handed out."""
    if cursor is None:
        return None
    try:
        at, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(key, str) or "\x00" in key:
            raise ValueError("not a cursor")
    except (binascii.Error, ValueError, TypeError):
        raise _invalid() from None
    return moment, key

"""Dead letters: a record a service cannot process goes to `<prefix>.dead-letter` with the reason,
never silently dropped, and can be sent back once the cause is fixed (`settlewatch
dead-letters replay`).

A dead letter is keyed by its source topic; its value is JSON::

    {"topic", "partition", "offset", "key", "service", "at", "reason",
     "error": {"type", "message", "where"} | null,
     "value": <the record as UTF-8 text> | "value_base64": <when it is not UTF-8>}

``where`` is the innermost frame of the exception (``settlewatch/matcher/core/deadlines.py:88 in
_due_date``). A replay writes the value back to its topic and partition under its key, and
appends a marker ``{"replayed": "<partition>:<offset>", "at"}`` keyed ``replayed``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from settlewatch.common.faults import where
from settlewatch.common.metrics import DEAD_LETTERS

__all__ = ["REPLAYED_KEY", "DeadLetter", "dead_letter"]

REPLAYED_KEY = b"replayed"


@dataclass(frozen=True)
class DeadLetter:
    """A record set aside: where it was read, what it held, and why it could not be used."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str
    error: BaseException | None = None


def dead_letter(rejected: DeadLetter, *, service: str, now: datetime) -> tuple[bytes, bytes]:
    """The dead-letter record (key, value) of one rejected record; it is counted."""
    DEAD_LETTERS.labels(rejected.topic).inc()
    error = rejected.error
    body: dict[str, Any] = {
        "topic": rejected.topic,
        "partition": rejected.partition,
        "offset": rejected.offset,
        "key": rejected.key.decode(errors="replace") if rejected.key is not None else None,
        "service": service,
        "at": now.isoformat(),
        "reason": rejected.reason,
        "error": None
        if error is None
        else {"type": type(error).__name__, "message": str(error)[:2000], "where": where(error)},
    }
    try:
        body["value"] = rejected.value.decode()
    except UnicodeDecodeError:
        body["value_base64"] = base64.b64encode(rejected.value).decode()
    return rejected.topic.encode(), orjson.dumps(body)

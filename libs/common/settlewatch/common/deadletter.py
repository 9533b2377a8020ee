"""Dead letters: a record a service cannot process goes to `<prefix>.dead-letter` with the
reason, keyed by its source topic, never silently dropped."""

from __future__ import annotations

import orjson

from settlewatch.common.metrics import DEAD_LETTERS

__all__ = ["dead_letter"]


def dead_letter(topic: str, offset: int, reason: str, value: bytes) -> tuple[bytes, bytes]:
    """The dead-letter record of one unusable record (and it is counted)."""
    DEAD_LETTERS.labels(topic).inc()
    body = {
        "topic": topic,
        "offset": offset,
        "reason": reason,
        "value": value.decode(errors="replace"),
    }
    return topic.encode(), orjson.dumps(body)

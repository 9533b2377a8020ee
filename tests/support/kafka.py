"""Reading topics back in tests: every record of every partition, up to the current end."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord

from settlewatch.common.kafka import read_topic

__all__ = ["data_events", "decoded", "read_topic"]


def decoded(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(record.value or b"null")
    return value


async def data_events(bootstrap: str, *topics: str) -> list[dict[str, Any]]:
    """Every non-pulse event on `topics`, decoded."""
    return [e for e in map(decoded, await read_topic(bootstrap, *topics)) if e["kind"] != "pulse"]

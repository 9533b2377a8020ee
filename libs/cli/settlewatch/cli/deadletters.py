"""``settlewatch dead-letters list|show|replay``: what the services set aside, and sending it back.

The dead-letter topic is the record of what was set aside (see ``common/deadletter.py`` for a
dead letter's fields). A dead letter's id is where it sits on that topic, ``<partition>:<offset>``.
``replay`` writes a dead letter's record back to the topic and partition it was read from, under
its key, then appends a marker so that ``list`` shows it replayed and a second replay needs
``--force``. Replaying is safe even twice: every event is idempotent by its id downstream. A
record that still cannot be processed is dead-lettered again, under a new id.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from settlewatch.common.deadletter import REPLAYED_KEY
from settlewatch.common.errors import UsageError
from settlewatch.common.kafka import Topics, read_topic
from settlewatch.common.publisher import Publisher

__all__ = ["DeadLetter", "DeadLetterError", "find", "load", "render", "replay"]


class DeadLetterError(UsageError):
    """The operator named a dead letter that does not exist, or one already replayed."""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # <partition>:<offset> on the dead-letter topic
    body: dict[str, Any]
    replayed_at: str | None

    @property
    def value(self) -> bytes:
        if "value_base64" in self.body:
            return base64.b64decode(self.body["value_base64"])
        return str(self.body["value"]).encode()

    def show(self) -> str:
        """The whole dead letter, as indented JSON."""
        whole = self.body | {"id": self.id, "replayed_at": self.replayed_at}
        return orjson.dumps(whole, option=orjson.OPT_INDENT_2).decode()

    def line(self) -> str:
        b = self.body
        source = f"{b['topic']}[{b['partition']}]@{b['offset']}"
        status = f"replayed {self.replayed_at}" if self.replayed_at else "set aside"
        reason = " ".join(str(b["reason"]).split())
        return f"{self.id:<10} {b['at'][:19]:<19} {b['service']:<8} {source} {status}: {reason}"


async def load(bootstrap: str, topics: Topics) -> list[DeadLetter]:
    """Every dead letter on the topic, oldest first, with when it was replayed (if it was)."""
    records = await read_topic(bootstrap, topics.dead_letter)
    replayed: dict[str, str] = {}
    letters: list[tuple[str, dict[str, Any]]] = []
    for record in sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset)):
        body = orjson.loads(record.value or b"{}")
        if record.key == REPLAYED_KEY:
            replayed[body["replayed"]] = body["at"]
        else:
            letters.append((f"{record.partition}:{record.offset}", body))
    return [DeadLetter(id, body, replayed.get(id)) for id, body in letters]


def find(letters: Sequence[DeadLetter], id: str) -> DeadLetter:
    for letter in letters:
        if letter.id == id:
            return letter
    raise DeadLetterError(f"no dead letter {id} (see dead-letters list)")


def render(letters: Sequence[DeadLetter]) -> str:
    header = f"{'ID':<10} {'SET ASIDE AT (UTC)':<19} {'SERVICE':<8} SOURCE STATUS: REASON"
    return "\n".join([header, *(letter.line() for letter in letters)])


async def replay(
    publisher: Publisher,
    topics: Topics,
    letters: Sequence[DeadLetter],
    ids: Sequence[str],
    *,
    force: bool,
    now: datetime,
) -> list[DeadLetter]:
    """Send the dead letters `ids` (all not yet replayed when empty) back; returns them."""
    chosen = [find(letters, i) for i in ids] if ids else [d for d in letters if not d.replayed_at]
    if not force and (done := [d.id for d in chosen if d.replayed_at is not None]):
        raise DeadLetterError(f"already replayed: {', '.join(done)} (--force sends them again)")
    for letter in chosen:
        body = letter.body
        key = str(body["key"]).encode() if body.get("key") is not None else b""
        await publisher.publish_to(body["topic"], int(body["partition"]), [(key, letter.value)])
        marker = {"replayed": letter.id, "at": now.isoformat()}
        await publisher.publish(topics.dead_letter, [(REPLAYED_KEY, orjson.dumps(marker))])
    return chosen

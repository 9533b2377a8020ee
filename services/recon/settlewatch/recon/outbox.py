"""The loop that publishes the files' findings (``file_findings``) to the findings topic.

The findings were written in the transaction that decided them; this loop sends them keyed by
merchant, as the matcher does, and marks them published. A crash in between sends them again:
alerts absorb a finding at least once (its id is type + subject).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.db import driver_session, driver_transaction
from settlewatch.common.kafka import Topics
from settlewatch.common.loops import Alarm
from settlewatch.common.publisher import Publisher

__all__ = ["FindingsOutbox"]

BATCH = 1000
_UNPUBLISHED = """
SELECT key, merchant_id, body::text AS body FROM file_findings
WHERE published_at IS NULL ORDER BY created_at, key LIMIT $1
"""
_PUBLISHED = "UPDATE file_findings SET published_at = $1 WHERE key = ANY($2::text[])"


class FindingsOutbox:
    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        topics: Topics,
        clock: Callable[[], datetime],
        *,
        every: float = 5.0,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._topics = topics
        self._clock = clock
        self._every = every
        self._alarm = Alarm()

    def wake(self) -> None:
        """Findings were committed: publish them now rather than at the next round."""
        self._alarm.wake()

    async def run(self) -> None:
        while True:
            if await self.round() < BATCH:
                await self._alarm.sleep(self._every)

    async def round(self) -> int:
        """Publish a batch of findings; how many."""
        async with driver_session(self._engine) as driver:
            rows = await driver.fetch(_UNPUBLISHED, BATCH)
        if not rows:
            return 0
        await self._publisher.publish(
            self._topics.findings,
            [((row["merchant_id"] or "").encode(), row["body"].encode()) for row in rows],
        )
        async with driver_transaction(self._engine) as driver:
            await driver.execute(_PUBLISHED, self._clock(), [row["key"] for row in rows])
        return len(rows)

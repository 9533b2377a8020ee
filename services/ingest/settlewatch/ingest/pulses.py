"""Clock pulses (SPEC §5): ingest's current time, into every partition of the transactions and
settlements topics, every `SETTLEWATCH_TIMER_INTERVAL` (one second unless set).

A pulse with time T is appended after T was read, and every record acknowledged before T was
already written, so in each partition a pulse is never ahead of data acknowledged before it.
The matcher's clock is the oldest latest-pulse of its partitions: it cannot see a deadline pass
while a settlement accepted before that deadline is still on its way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import TypeAdapter

from settlewatch.common.events import Pulse, encode_event
from settlewatch.common.publisher import BrokerUnavailable, Publisher
from settlewatch.ingest.metrics import PULSES

__all__ = ["PulseWriter"]

_log = logging.getLogger(__name__)
_PULSE = TypeAdapter(Pulse)


class PulseWriter:
    def __init__(
        self,
        publisher: Publisher,
        topics: Sequence[str],
        *,
        source: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._publisher = publisher
        self._topics = topics
        self._source = source
        self._clock = clock

    async def pulse(self) -> None:
        """Write one pulse into every partition of every topic."""
        value = encode_event(
            "pulse", _PULSE.dump_json(Pulse(at=self._clock(), source=self._source))
        )
        await asyncio.gather(*(self._publisher.publish_everywhere(t, value) for t in self._topics))

    async def run(self, interval: float) -> None:
        """Pulse every `interval` seconds until cancelled; a broker outage only skips pulses."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.pulse()
                PULSES.labels("written").inc()
            except BrokerUnavailable as exc:
                PULSES.labels("failed").inc()
                _log.warning("clock pulse not written", extra={"error": str(exc)})
            except Exception:  # a bug must not stop the clock for good: log it, keep pulsing
                PULSES.labels("failed").inc()
                _log.exception("clock pulse failed")
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

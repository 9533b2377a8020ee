"""`up` keeps its embedded database and broker running, as it keeps the services running.

- PostgreSQL keeps its data on disk: when its server process is gone it is started again. The
  services need nothing done: their loops fail meanwhile, are restarted in-process with backoff,
  and resume from what they saved once the database is back.
- The broker keeps its topics in memory, so a restarted broker is empty. The services are held
  (stopped, not restarted), the broker is started again on the same port, the topics created,
  the matcher made to read them from the beginning (its stored offsets point into the lost log,
  possibly past the new log's end, where it would skip the first new records), and then the
  services start afresh. What the lost broker held that no consumer had consumed yet —
  transactions acknowledged to the acquirer but not yet applied by the matcher, findings not yet
  absorbed by the alerts service — is lost with it. Production runs Apache Kafka, which keeps
  its log on disk, replicated (`SETTLEWATCH_TOPIC_REPLICATION_FACTOR`), and loses nothing it
  acknowledged (ingest answers 202 only after acks=all).
- The broker also enforces no retention, so it is restarted empty, losing nothing, when its log
  is full and has been read (rotation.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import ConsumerRecord

from settlewatch.common.backoff import Backoff
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.devstack.postgres import EmbeddedPostgres
from settlewatch.devstack.rotation import CHECK_EVERY_S, RETRY_AFTER_S, Rotation
from settlewatch.devstack.supervisor import SupervisedProcess

__all__ = ["keep_broker", "keep_postgres"]

_log = logging.getLogger(__name__)


async def keep_postgres(postgres: EmbeddedPostgres, every: float = 1.0) -> None:
    """Restart the embedded PostgreSQL whenever its server is gone (until cancelled)."""
    backoff = Backoff(first=0.5, cap=30.0, stable=60.0)
    while True:
        await asyncio.sleep(every)
        if postgres.running():
            continue
        _log.error("embedded postgres died; restarting it (its data is kept)")
        try:
            await asyncio.to_thread(postgres.start)
        except Exception as exc:  # e.g. backends of the killed server still hold its memory
            delay = backoff.next_delay(0.0)
            _log.error(
                "embedded postgres did not start; trying again",
                extra={"in_s": delay},
                exc_info=exc,
            )
            await asyncio.sleep(delay)
        else:
            _log.warning("embedded postgres restarted")


async def keep_broker(
    broker: EmbeddedBroker,
    services: Sequence[SupervisedProcess],
    prepare: Callable[[], Awaitable[None]],
    rotation: Rotation | None = None,
) -> None:
    """Restart the embedded broker whenever it exits, or when `rotation` finds its log full and
    read (until cancelled): the services are held meanwhile and start afresh after `prepare`
    (topics, offsets) has run on the new broker."""
    while True:
        kept = await _crash_or_rotation(broker, services, rotation)
        await asyncio.gather(*(service.hold() for service in services))
        await broker.stop()
        await _restart(broker, prepare, rotation, kept)
        for service in services:
            service.release()
        _log.warning("embedded broker restarted; services starting again")


async def _crash_or_rotation(
    broker: EmbeddedBroker,
    services: Sequence[SupervisedProcess],
    rotation: Rotation | None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Wait until the broker must be restarted: it died (nothing to keep), or its log is full
    and every service has read it (ingest is then left held; the dead letters are kept)."""
    (ingest,) = (service for service in services if service.name == "ingest")
    first_check_in = CHECK_EVERY_S
    while True:
        died = asyncio.create_task(broker.wait())
        full = asyncio.create_task(
            rotation.full(first_check_in) if rotation else asyncio.Event().wait()
        )
        await asyncio.wait([died, full], return_when=asyncio.FIRST_COMPLETED)
        await _cancel(died, full)
        if died.done() and not died.cancelled():
            _log.error(
                "embedded broker died; restarting it and the services (its topics were in "
                "memory: what was not yet consumed is lost)",
                extra={"exit_code": died.result()},
            )
            return []
        assert rotation is not None
        await ingest.hold()
        if await rotation.drained():
            _log.warning(
                "embedded broker log full and read; restarting it empty (retention)",
                extra={"max_records": rotation.max_records},
            )
            return await rotation.keep()
        ingest.release()
        first_check_in = RETRY_AFTER_S
        _log.warning(
            "embedded broker log full but not yet read; trying again later",
            extra={"in_s": RETRY_AFTER_S},
        )


async def _restart(
    broker: EmbeddedBroker,
    prepare: Callable[[], Awaitable[None]],
    rotation: Rotation | None,
    kept: list[ConsumerRecord[bytes, bytes]],
) -> None:
    backoff = Backoff(first=0.5, cap=30.0, stable=60.0)
    while True:
        try:
            await broker.start()
            await prepare()
            if rotation is not None and kept:
                await rotation.restore(kept)
            return
        except Exception as exc:
            delay = backoff.next_delay(0.0)
            _log.error(
                "embedded broker did not start; trying again",
                extra={"in_s": delay},
                exc_info=exc,
            )
            await broker.stop()
            await asyncio.sleep(delay)


async def _cancel(*tasks: asyncio.Task[object]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

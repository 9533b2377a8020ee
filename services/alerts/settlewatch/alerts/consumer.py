"""The findings consumer: findings topic → alerts.

Absorbing is idempotent (alert id = finding id, forward-only statuses), so this loop commits
its Kafka offsets after the database transaction: a crash in between redelivers a batch that
changes nothing. A finding that cannot be read, or that the store cannot absorb, goes to the
dead-letter topic with the reason and the batch goes on: when a batch fails for a reason other
than the database or the broker, its findings are absorbed one by one to find the culprits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from settlewatch.alerts.core.lifecycle import NewAlert, ReceivedFinding
from settlewatch.alerts.metrics import ALERTS_CREATED, CONSUMER_LAG, FINDINGS
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.common.deadletter import DeadLetter, dead_letter
from settlewatch.common.faults import is_infrastructure
from settlewatch.common.kafka import Topics, started_consumer
from settlewatch.common.publisher import Publisher

__all__ = ["FindingsConsumer"]

_log = logging.getLogger(__name__)
MAX_RECORDS = 2000


class FindingsConsumer:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        store: Alerts,
        publisher: Publisher,
        clock: Callable[[], datetime],
        session_timeout_ms: int = 10_000,
    ) -> None:
        self._topics = topics
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._bootstrap_servers = bootstrap_servers
        self._session_timeout_ms = session_timeout_ms

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self._topics.findings,
            bootstrap_servers=self._bootstrap_servers,
            group_id=f"{self._topics.prefix}.alerts",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(100, self._session_timeout_ms // 5),
            max_poll_records=MAX_RECORDS,
        )

    async def run(self) -> None:
        """Consume until cancelled; waits for the broker if it is not up yet."""
        consumer = await started_consumer(self._new_consumer(), self._new_consumer)
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
                records = [r for part in batch.values() for r in part]
                if records:
                    await self._absorb(records)
                    await consumer.commit()
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        position = await consumer.position(tp)
                        CONSUMER_LAG.labels(str(tp.partition)).set(max(high - position, 0))
        finally:
            await consumer.stop()

    async def _absorb(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        readable: list[tuple[ConsumerRecord[bytes, bytes], ReceivedFinding]] = []
        poison: list[DeadLetter] = []
        for record in records:
            try:
                readable.append((record, ReceivedFinding.from_json(record.value or b"")))
            except ValueError as exc:
                poison.append(_rejected(record, f"unreadable finding: {exc}"))
        findings = [finding for _, finding in readable]
        try:
            new, resolved = await self._store.absorb(findings, self._clock())
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            _log.warning("a batch of findings failed; absorbing them one by one", exc_info=exc)
            new, resolved, findings = await self._absorb_one_by_one(readable, poison)
        await self._dead_letter(poison)
        for (kind, state), n in Counter((f.type, f.state) for f in findings).items():
            FINDINGS.labels(kind, state).inc(n)
        for kind, n in Counter(a.type for a in new).items():
            ALERTS_CREATED.labels(kind).inc(n)
        if new or resolved:
            _log.info(
                "findings absorbed", extra={"alerts_created": len(new), "alerts_resolved": resolved}
            )

    async def _absorb_one_by_one(
        self,
        readable: list[tuple[ConsumerRecord[bytes, bytes], ReceivedFinding]],
        poison: list[DeadLetter],
    ) -> tuple[list[NewAlert], int, list[ReceivedFinding]]:
        new: list[NewAlert] = []
        resolved = 0
        absorbed: list[ReceivedFinding] = []
        for record, finding in readable:
            try:
                created, closed = await self._store.absorb([finding], self._clock())
            except Exception as exc:
                if is_infrastructure(exc):
                    raise
                reason = f"the alerts store cannot absorb it: {type(exc).__name__}: {exc}"
                poison.append(_rejected(record, reason, exc))
                continue
            new += created
            resolved += closed
            absorbed.append(finding)
        return new, resolved, absorbed

    async def _dead_letter(self, poison: list[DeadLetter]) -> None:
        if not poison:
            return
        for rejected in poison:
            _log.error(
                "finding dead-lettered",
                extra={"offset": rejected.offset, "reason": rejected.reason[:500]},
                exc_info=rejected.error,
            )
        records = [dead_letter(r, service="alerts", now=self._clock()) for r in poison]
        await self._publisher.publish(self._topics.dead_letter, records)


def _rejected(
    record: ConsumerRecord[bytes, bytes], reason: str, error: BaseException | None = None
) -> DeadLetter:
    value = record.value or b""
    return DeadLetter(
        record.topic, record.partition, record.offset, record.key, value, reason, error
    )

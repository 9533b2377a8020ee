"""The ingest service's metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "BATCH_SIZE",
    "EVENTS",
    "PUBLISH_SECONDS",
    "PULSES",
]

EVENTS = Counter(
    "settlewatch_ingest_events_total",
    "Events received, by kind (transaction, settlement, merchant, terminal, maintenance, calendar) "
    "and "
    "outcome (accepted, rejected = bad input, unavailable = broker did not acknowledge).",
    ["kind", "outcome"],
)
BATCH_SIZE = Histogram(
    "settlewatch_ingest_batch_size",
    "Items per accepted POST /v1/transactions or /v1/settlements request.",
    ["kind"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
PUBLISH_SECONDS = Histogram(
    "settlewatch_ingest_publish_duration_seconds",
    "Time from handing a request's records to the producer until all were acknowledged.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PULSES = Counter(
    "settlewatch_ingest_pulses_total",
    "Clock pulse rounds (one record per partition of each topic), by outcome (written, failed).",
    ["outcome"],
)

"""The matcher service's metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from settlewatch.matcher.core.model import PartitionState
from settlewatch.matcher.store import OpenTotals, TopOverdue

__all__ = [
    "BATCH_SECONDS",
    "CONSUMER_LAG",
    "FINDINGS",
    "OpenPaymentsCollector",
    "register_open_payments",
]

FINDINGS = Counter(
    "settlewatch_matcher_findings_total",
    "Findings decided, by type and state (open, resolved).",
    ["type", "state"],
)
BATCH_SECONDS = Histogram(
    "settlewatch_matcher_batch_duration_seconds",
    "Time to apply, decide, save and publish one consumed batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "settlewatch_matcher_consumer_lag_records",
    "Records in the partition not yet consumed (high watermark − position).",
    ["topic", "partition"],
)


SETTLEMENT_DELAY = Histogram(
    "settlewatch_matcher_settlement_delay_seconds",
    "Time from a transaction to the bank's confirmation of its payout, by bank.",
    ["bank_code"],
    buckets=(
        3600,
        6 * 3600,
        12 * 3600,
        86400,
        2 * 86400,
        3 * 86400,
        5 * 86400,
        7 * 86400,
        14 * 86400,
    ),
)
CALENDAR_FALLBACKS = Counter(
    "settlewatch_matcher_calendar_fallback_total",
    "Deadlines computed with Monday–Friday (deadline_basis estimated) because the merchant's "
    "calendar does not know a year they cross.",
)


class OpenPaymentsCollector(Collector):
    """Pending and overdue payments and amounts by bank (as the matcher last read them from the
    store), and the clock lag of the partitions this instance owns, at scrape time."""

    def __init__(
        self,
        totals: Callable[[], OpenTotals],
        states: Callable[[], Mapping[int, PartitionState]],
        top: Callable[[], TopOverdue] = list,
    ) -> None:
        self._totals = totals
        self._states = states
        self._top = top

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = GaugeMetricFamily(
            "settlewatch_matcher_open_payments",
            "Payments pending or overdue, by bank and status.",
            labels=["bank_code", "status"],
        )
        amounts = GaugeMetricFamily(
            "settlewatch_matcher_open_amount_minor",
            "Sum of the amounts of payments pending or overdue, in minor units, by bank, status "
            "and currency; refunds count negative.",
            labels=["bank_code", "status", "currency"],
        )
        lag = GaugeMetricFamily(
            "settlewatch_matcher_clock_lag_seconds",
            "Wall clock minus the matcher clock (the oldest latest pulse of its partitions).",
        )
        number: dict[tuple[str, str], int] = defaultdict(int)
        for (bank_code, status, currency), (count, amount) in sorted(self._totals().items()):
            number[(bank_code, status)] += count
            amounts.add_metric([bank_code, status, currency], amount)
        for labels, value in sorted(number.items()):
            counts.add_metric(labels, value)
        top = GaugeMetricFamily(
            "settlewatch_matcher_top_overdue_amount_minor",
            "The 20 merchants (per matcher instance) with the most money overdue, in minor "
            "units, by currency; refunds count negative.",
            labels=["merchant_id", "currency"],
        )
        for merchant_id, currency, amount in self._top():
            top.add_metric([merchant_id, currency], amount)
        missing = GaugeMetricFamily(
            "settlewatch_matcher_calendar_missing",
            "1 for each calendar year a merchant's business-day cycle needs within 60 days that "
            "has no data (neither built in nor loaded): its deadlines are estimated on weekdays.",
            labels=["calendar", "year"],
        )
        states = dict(self._states()).values()
        for name, year in sorted({key for s in states for key in s.missing_calendars}):
            missing.add_metric([name, str(year)], 1)
        clocks = [s.clock for s in states if s.clock is not None]
        if clocks:
            lag.add_metric([], (datetime.now(UTC) - min(clocks)).total_seconds())
        yield counts
        yield amounts
        yield lag
        yield top
        yield missing


def register_open_payments(
    totals: Callable[[], OpenTotals],
    states: Callable[[], Mapping[int, PartitionState]],
    top: Callable[[], TopOverdue],
) -> Collector:
    collector = OpenPaymentsCollector(totals, states, top)
    REGISTRY.register(collector)
    return collector

"""The alerts service's metrics (SPEC §8): alerts by type and status, webhook deliveries by
outcome and latency, retries, disabled endpoints, open bank incidents, Alertmanager pushes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

__all__ = [
    "ALERTMANAGER_PUSHES",
    "ALERTS_CREATED",
    "ATTEMPT_SECONDS",
    "CONSUMER_LAG",
    "DELIVERIES",
    "DELIVERY_LATENCY",
    "FINDINGS",
    "REMINDERS",
    "RETRIES",
    "AlertCounts",
    "AlertCountsCollector",
    "register_alert_counts",
]

FINDINGS = Counter(
    "settlewatch_alerts_findings_total",
    "Findings consumed from the findings topic, by type and state (open, resolved).",
    ["type", "state"],
)
ALERTS_CREATED = Counter("settlewatch_alerts_created_total", "Alerts created, by type.", ["type"])
DELIVERIES = Counter(
    "settlewatch_webhook_deliveries_total",
    "Webhook deliveries that ended, by outcome: delivered, failed (retries exhausted or no "
    "webhook), disabled (the endpoint answered 410 Gone or was disabled before).",
    ["outcome"],
)
RETRIES = Counter(
    "settlewatch_webhook_retries_total",
    "Webhook attempts that failed and were scheduled again.",
)
REMINDERS = Counter(
    "settlewatch_webhook_reminders_total",
    "Reminder digests made: one per merchant and SETTLEWATCH_REMIND_EVERY period with open "
    "overdue or failed alerts.",
)
DELIVERY_LATENCY = Histogram(
    "settlewatch_webhook_delivery_latency_seconds",
    "From the creation of the oldest alert in a delivery to the receiver's 2xx (includes the "
    "group wait and any retries).",
    buckets=(0.5, 1, 2.5, 5, 10, 15, 30, 60, 300, 1800, 7200, 36000, 86400),
)
ATTEMPT_SECONDS = Histogram(
    "settlewatch_webhook_attempt_duration_seconds",
    "Duration of one webhook attempt (request to response or timeout).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
ALERTMANAGER_PUSHES = Counter(
    "settlewatch_alertmanager_pushes_total",
    "Pushes of on-call alerts to Alertmanager, by outcome (ok, error).",
    ["outcome"],
)
CONSUMER_LAG = Gauge(
    "settlewatch_alerts_consumer_lag_records",
    "Findings in the partition not yet consumed (high watermark − position).",
    ["partition"],
)


@dataclass
class AlertCounts:
    """What the store last counted (refreshed every few seconds, read at scrape time)."""

    by_type_status: dict[tuple[str, str], int] = field(default_factory=dict)
    disabled_endpoints: int = 0
    incidents: dict[str, int] = field(default_factory=dict)


class AlertCountsCollector(Collector):
    def __init__(self, counts: AlertCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        alerts = GaugeMetricFamily(
            "settlewatch_alerts",
            "Alerts by type and status (open, acknowledged, resolved).",
            labels=["type", "status"],
        )
        for (kind, status), n in sorted(self._counts.by_type_status.items()):
            alerts.add_metric([kind, status], n)
        disabled = GaugeMetricFamily(
            "settlewatch_webhook_endpoints_disabled",
            "Merchant webhook endpoints disabled after answering 410 Gone.",
        )
        disabled.add_metric([], self._counts.disabled_endpoints)
        incidents = GaugeMetricFamily(
            "settlewatch_bank_incidents_open", "Open bank incidents, by bank.", labels=["bank_code"]
        )
        for bank, n in sorted(self._counts.incidents.items()):
            incidents.add_metric([bank], n)
        yield alerts
        yield disabled
        yield incidents


def register_alert_counts(counts: AlertCounts) -> Collector:
    collector = AlertCountsCollector(counts)
    REGISTRY.register(collector)
    return collector

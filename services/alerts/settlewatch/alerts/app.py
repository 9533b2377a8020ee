"""The alerts service: the findings consumer, merchant webhooks, on-call, and the alerts API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from settlewatch.alerts import api
from settlewatch.alerts.consumer import FindingsConsumer
from settlewatch.alerts.delivery import Deliverer
from settlewatch.alerts.metrics import AlertCounts, register_alert_counts
from settlewatch.alerts.oncall import OnCall
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.alerts.repository.reads import Reads
from settlewatch.common.config import AlertsSettings
from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.common.service import Resources, create_service_app, wall_clock
from settlewatch.common.webhook_guard import allowed_networks

__all__ = ["create_app"]

_log = logging.getLogger(__name__)
COUNTS_EVERY_S = 10.0
RETENTION_EVERY_S = 3600.0


def create_app(settings: AlertsSettings, clock: Callable[[], datetime] = wall_clock) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        alerts = Alerts(resources.engine)
        deliveries = Deliveries(resources.engine, settings.sealer())
        app.state.alerts, app.state.deliveries, app.state.clock = alerts, deliveries, clock
        publisher = Publisher.of_service(settings, timeout=30.0)
        client = httpx.AsyncClient()  # to Alertmanager
        deliverer = Deliverer(
            deliveries,
            group_wait=settings.group_wait,
            clock=clock,
            timeout=settings.webhook_timeout,
            remind_every=settings.remind_every,
            allowed=allowed_networks(settings.webhook_allow_private),
        )
        counts = AlertCounts()
        collector = register_alert_counts(counts)
        consumer = FindingsConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=Topics(settings.topic_prefix),
            store=alerts,
            publisher=publisher,
            clock=clock,
            session_timeout_ms=int(settings.session_timeout.total_seconds() * 1000),
        )
        oncall = OnCall(
            alerts,
            Reads(resources.engine),
            clock=clock,
            client=client,
            alertmanager_url=settings.alertmanager_url,
        )
        loops = resources.loops
        loops.start("alerts-consumer", consumer.run)
        loops.start("alerts-webhooks", deliverer.run)
        loops.start("alerts-oncall", oncall.run)
        loops.start("alerts-counts", lambda: _refresh_counts(alerts, deliveries, counts))
        retention = settings.alert_retention
        loops.start("alerts-retention", lambda: _forget_old(alerts, deliveries, clock, retention))
        try:
            yield
        finally:
            await loops.stop()
            await client.aclose()
            await deliverer.aclose()
            await publisher.close()
            REGISTRY.unregister(collector)

    return create_service_app(
        service="alerts",
        settings=settings,
        title="settlewatch alerts",
        description="Alerts with evidence, merchant webhook deliveries, and on-call incidents.",
        routers=(api.router,),
        lifespan=lifespan,
    )


async def _forget_old(
    alerts: Alerts,
    deliveries: Deliveries,
    clock: Callable[[], datetime],
    retention: timedelta,
) -> None:
    """Hourly: alerts resolved longer ago than SETTLEWATCH_ALERT_RETENTION, and deliveries
    that ended as long ago, are deleted (tables would otherwise grow forever)."""
    while True:
        before = clock() - retention
        forgotten = await alerts.forget(before)
        ended = await deliveries.forget(before)  # after the alerts that were in them
        if forgotten or ended:
            _log.info("old alerts forgotten", extra={"alerts": forgotten, "deliveries": ended})
        await asyncio.sleep(RETENTION_EVERY_S)


async def _refresh_counts(alerts: Alerts, deliveries: Deliveries, counts: AlertCounts) -> None:
    while True:
        counts.by_type_status, counts.incidents = await alerts.counts()
        counts.disabled_endpoints = await deliveries.disabled_endpoints()
        await asyncio.sleep(COUNTS_EVERY_S)

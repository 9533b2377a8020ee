"""The alerts service: the findings consumer, merchant webhooks, on-call, and the alerts API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from settlewatch.alerts import api
from settlewatch.alerts.consumer import FindingsConsumer
from settlewatch.alerts.delivery import Deliverer
from settlewatch.alerts.metrics import AlertCounts, register_alert_counts
from settlewatch.alerts.oncall import OnCall
from settlewatch.alerts.store import AlertStore
from settlewatch.common.config import AlertsSettings
from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.common.service import Resources, create_service_app

__all__ = ["create_app"]

_log = logging.getLogger(__name__)
COUNTS_EVERY_S = 10.0
RETENTION_EVERY_S = 3600.0


def _wall() -> datetime:
    return datetime.now(UTC)


def create_app(settings: AlertsSettings, clock: Callable[[], datetime] = _wall) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        store = AlertStore(resources.engine)
        app.state.alert_store, app.state.clock = store, clock
        publisher = Publisher(
            settings.kafka_bootstrap_servers,
            enable_idempotence=settings.kafka_enable_idempotence,
            timeout=30.0,
        )
        client = httpx.AsyncClient()  # to Alertmanager
        deliverer = Deliverer(store, group_wait=settings.group_wait, clock=clock)
        counts = AlertCounts()
        collector = register_alert_counts(counts)
        consumer = FindingsConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=Topics(settings.topic_prefix),
            store=store,
            publisher=publisher,
            clock=clock,
            session_timeout_ms=int(settings.session_timeout.total_seconds() * 1000),
        )
        oncall = OnCall(
            store, clock=clock, client=client, alertmanager_url=settings.alertmanager_url
        )
        loops = resources.loops
        loops.start("alerts-consumer", consumer.run)
        loops.start("alerts-webhooks", deliverer.run)
        loops.start("alerts-oncall", oncall.run)
        loops.start("alerts-counts", lambda: _refresh_counts(store, counts))
        loops.start("alerts-retention", lambda: _forget_old(store, clock, settings.alert_retention))
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
    store: AlertStore, clock: Callable[[], datetime], retention: timedelta
) -> None:
    """Hourly: alerts resolved longer ago than SETTLEWATCH_ALERT_RETENTION, and deliveries
    that ended as long ago, are deleted (tables would otherwise grow forever)."""
    while True:
        alerts, deliveries = await store.forget(clock() - retention)
        if alerts or deliveries:
            _log.info("old alerts forgotten", extra={"alerts": alerts, "deliveries": deliveries})
        await asyncio.sleep(RETENTION_EVERY_S)


async def _refresh_counts(store: AlertStore, counts: AlertCounts) -> None:
    while True:
        counts.by_type_status, counts.disabled_endpoints, counts.incidents = await store.counts()
        await asyncio.sleep(COUNTS_EVERY_S)

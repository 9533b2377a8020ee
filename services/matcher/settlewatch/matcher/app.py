"""The matcher service: the consumer loop around the core, and its HTTP app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cachetools import LRUCache
from fastapi import FastAPI
from prometheus_client import REGISTRY

from settlewatch.common.config import MatcherSettings
from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.common.service import Resources, create_service_app
from settlewatch.matcher import api
from settlewatch.matcher.api import PDFS_KEPT
from settlewatch.matcher.consumer import MatcherLoop
from settlewatch.matcher.metrics import register_open_payments
from settlewatch.matcher.store import MatcherStore

__all__ = ["create_app"]


def create_app(settings: MatcherSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        publisher = Publisher.of_service(settings, timeout=30.0)
        loop = MatcherLoop(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=Topics(settings.topic_prefix),
            store=MatcherStore(resources.engine, settings.region_jump_window),
            publisher=publisher,
            session_timeout_ms=int(settings.session_timeout.total_seconds() * 1000),
            timer_interval=settings.timer_interval,
            retention=settings.state_retention,
        )
        app.state.matcher = loop
        collector = register_open_payments(
            lambda: loop.open_totals, loop.states, lambda: loop.top_overdue
        )
        resources.loops.start("matcher-loop", loop.run)
        try:
            yield
        finally:
            await resources.loops.stop()
            await publisher.close()
            REGISTRY.unregister(collector)

    app = create_service_app(
        service="matcher",
        settings=settings,
        title="settlewatch matcher",
        description="Every payment watched until settled: its status, deadline and history.",
        routers=(api.router,),
        lifespan=lifespan,
    )
    app.state.pdf_font = settings.pdf_font
    app.state.pdfs = LRUCache(maxsize=PDFS_KEPT)
    return app

"""The ingest service's HTTP app: the acquirer backend's entry point (SPEC §4)."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from settlewatch.common.config import IngestSettings
from settlewatch.common.events import (
    MaintenanceWindowIn,
    MerchantProfile,
    SettlementBatch,
    TransactionBatch,
)
from settlewatch.common.kafka import Topics
from settlewatch.common.openapi import register_schemas
from settlewatch.common.problems import Problem
from settlewatch.common.publisher import Publisher
from settlewatch.common.service import Resources, create_service_app, wall_clock
from settlewatch.common.webhook_guard import allowed_networks, system_resolver
from settlewatch.ingest.context import Ingest
from settlewatch.ingest.moved import MovedToRecon
from settlewatch.ingest.pulses import PulseWriter
from settlewatch.ingest.registry import MerchantRegistry
from settlewatch.ingest.routes import (
    audit,
    calendars,
    events,
    maintenance,
    merchants,
    terminals,
    tokens,
)
from settlewatch.ingest.webhook_secrets import WebhookSecrets

__all__ = ["create_app"]

# SPEC §4: 503 within 5 s when the broker does not acknowledge; leave room for the response.
PUBLISH_TIMEOUT_S = 4.0

DESCRIPTION = """\
The acquirer backend pushes merchant profiles, terminal transactions, bank settlements, bank
maintenance windows and business-calendar years here. Bodies are validated strictly (integer
minor units, ISO 4217 currencies, RFC 3339 times with an offset, no card numbers anywhere); a
batch is all-or-nothing; 202 means the broker has every item. Every write is idempotent by
its id: resending is safe.
Authenticate with `Authorization: Bearer <token>`.
"""


def create_app(settings: IngestSettings) -> FastAPI:
    topics = Topics(settings.topic_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        publisher = Publisher.of_service(settings, timeout=PUBLISH_TIMEOUT_S)
        webhook_secrets = WebhookSecrets(settings.sealer(), settings.webhook_secret_overlap)
        await webhook_secrets.reseal(resources.engine)  # after a key rotation
        app.state.ingest = Ingest(
            engine=resources.engine,
            publisher=publisher,
            registry=MerchantRegistry(resources.engine),
            topics=topics,
            clock=wall_clock,
            max_clock_skew=settings.max_clock_skew,
            webhook_secrets=webhook_secrets,
        )
        pulses = PulseWriter(
            publisher,
            (topics.transactions, topics.settlements),
            source=f"{socket.gethostname()}:{os.getpid()}",
            clock=wall_clock,
        )
        interval = settings.timer_interval.total_seconds()
        resources.loops.start("ingest-pulses", functools.partial(pulses.run, interval))
        try:
            yield
        finally:
            await resources.loops.stop()
            await publisher.close()

    app = create_service_app(
        service="ingest",
        settings=settings,
        title="settlewatch ingest",
        description=DESCRIPTION,
        routers=(
            merchants.router,
            terminals.router,
            events.router,
            maintenance.router,
            calendars.router,
            tokens.router,
            audit.router,
        ),
        lifespan=lifespan,
        # Events are data, not changes: each payment keeps its own history (common.audit).
        unaudited=("/v1/transactions", "/v1/settlements"),
    )
    # Outermost: a moved route is answered before the gate reads a token or a body.
    app.add_middleware(MovedToRecon, recon_url=settings.recon_url, recon_port=settings.recon_port)
    app.state.webhook_resolver = system_resolver
    app.state.webhook_allowed = allowed_networks(settings.webhook_allow_private)
    register_schemas(
        app,
        (
            TransactionBatch,
            SettlementBatch,
            MerchantProfile,
            MaintenanceWindowIn,
            Problem,
        ),
    )
    return app

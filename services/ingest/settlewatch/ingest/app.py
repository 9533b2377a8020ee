"""The ingest service's HTTP app: the acquirer backend's entry point (SPEC §4)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

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
from settlewatch.common.service import Resources, create_service_app
from settlewatch.common.webhook_guard import allowed_networks, system_resolver
from settlewatch.ingest.context import Ingest
from settlewatch.ingest.files.desk import ExceptionDesk
from settlewatch.ingest.files.matching import LineMatcher
from settlewatch.ingest.files.outbox import FindingsOutbox
from settlewatch.ingest.files.reconciling import PayoutReconciler
from settlewatch.ingest.files.reference import References, SettlementAccount
from settlewatch.ingest.files.store import SettlementFiles
from settlewatch.ingest.pulses import PulseWriter
from settlewatch.ingest.registry import MerchantRegistry
from settlewatch.ingest.routes import (
    audit,
    calendars,
    events,
    exceptions,
    files,
    maintenance,
    merchants,
    payouts,
    terminals,
    tokens,
)
from settlewatch.ingest.webhook_secrets import WebhookSecrets
from settlewatch.settlementfiles.csvmap import FileMapping

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


def _wall() -> datetime:
    return datetime.now(UTC)


def create_app(settings: IngestSettings) -> FastAPI:
    topics = Topics(settings.topic_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        publisher = Publisher(
            settings.kafka_bootstrap_servers,
            enable_idempotence=settings.kafka_enable_idempotence,
            timeout=PUBLISH_TIMEOUT_S,
        )
        findings = FindingsOutbox(resources.engine, publisher, topics, _wall)
        webhook_secrets = WebhookSecrets(settings.sealer(), settings.webhook_secret_overlap)
        await webhook_secrets.reseal(resources.engine)  # after a key rotation
        reconciler = PayoutReconciler(
            resources.engine,
            _wall,
            findings.wake,
            grace_days=settings.payout_grace,
            quiet=settings.files_quiet,
        )
        line_matcher = LineMatcher(
            resources.engine,
            publisher,
            topics,
            _wall,
            findings.wake,
            reconciler.wake,
            max_clock_skew=settings.max_clock_skew,
        )
        app.state.ingest = Ingest(
            engine=resources.engine,
            publisher=publisher,
            registry=MerchantRegistry(resources.engine),
            topics=topics,
            clock=_wall,
            max_clock_skew=settings.max_clock_skew,
            files=SettlementFiles(
                resources.engine,
                _wall,
                findings.wake,
                parse_timeout=settings.parse_timeout.total_seconds(),
                validate_xsd=settings.validate_xsd,
            ),
            references=References(resources.engine),
            line_matcher=line_matcher,
            reconciler=reconciler,
            desk=ExceptionDesk(
                resources.engine,
                _wall,
                findings.wake,
                line_matcher.wake,
                max_clock_skew=settings.max_clock_skew,
            ),
            webhook_secrets=webhook_secrets,
        )
        pulses = PulseWriter(
            publisher,
            (topics.transactions, topics.settlements),
            source=f"{socket.gethostname()}:{os.getpid()}",
            clock=_wall,
        )
        resources.loops.start("ingest-pulses", pulses.run)
        resources.loops.start("ingest-file-matching", line_matcher.run)
        resources.loops.start("ingest-payouts", reconciler.run)
        resources.loops.start("ingest-file-findings", findings.run)
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
            files.router,
            payouts.router,
            exceptions.router,
            tokens.router,
            audit.router,
        ),
        lifespan=lifespan,
        # Events are data, not changes: each payment keeps its own history (common.audit).
        unaudited=("/v1/transactions", "/v1/settlements"),
        larger_bodies={"/v1/settlement-files": settings.max_file_bytes},
    )
    app.state.webhook_resolver = system_resolver
    app.state.webhook_allowed = allowed_networks(settings.webhook_allow_private)
    register_schemas(
        app,
        (
            TransactionBatch,
            SettlementBatch,
            MerchantProfile,
            MaintenanceWindowIn,
            SettlementAccount,
            FileMapping,
            *exceptions.BODIES,
            Problem,
        ),
    )
    return app

"""The recon service's HTTP app (SPEC §9): settlement files in, their lines matched to payments,
payouts paired with the credits on statements, and the desk where a person clears what no rule
could. Its three loops — line matching, payout pairing and the findings outbox — run beside the
API; ingest's events path shares nothing with them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from settlewatch.common.config import ReconSettings, approval_limits
from settlewatch.common.kafka import Topics
from settlewatch.common.openapi import register_schemas
from settlewatch.common.problems import Problem
from settlewatch.common.publisher import Publisher
from settlewatch.common.service import Resources, create_service_app, wall_clock
from settlewatch.recon.context import Recon
from settlewatch.recon.desk import Desk
from settlewatch.recon.matching import LineMatcher
from settlewatch.recon.outbox import FindingsOutbox
from settlewatch.recon.reconciling import PayoutReconciler
from settlewatch.recon.reference import References, SettlementAccount
from settlewatch.recon.routes import desk, files, payouts
from settlewatch.recon.store import SettlementFiles
from settlewatch.settlementfiles.csvmap import FileMapping

__all__ = ["create_app"]

# Its loops publish (matched lines' settlements, file findings) and retry what failed: a round
# waits this long for the broker before giving way to the next.
PUBLISH_TIMEOUT_S = 4.0

DESCRIPTION = """\
The operations desk and the acquirer's file jobs post bank statements (camt.053/052, MT940) and
clearing reports (Adyen, WeChat Pay, CSV 对账单 through a column mapping) here. Each line is
matched to a payment, each payout paired with its credit on a statement; what no rule can decide
waits on the desk (`/v1/exceptions`) for a person.
Authenticate with `Authorization: Bearer <token>`.
"""


def create_app(settings: ReconSettings) -> FastAPI:
    topics = Topics(settings.topic_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        publisher = Publisher.of_service(settings, timeout=PUBLISH_TIMEOUT_S)
        findings = FindingsOutbox(resources.engine, publisher, topics, wall_clock)
        reconciler = PayoutReconciler(
            resources.engine,
            wall_clock,
            findings.wake,
            grace_days=settings.payout_grace,
            quiet=settings.files_quiet,
        )
        line_matcher = LineMatcher(
            resources.engine,
            publisher,
            topics,
            wall_clock,
            findings.wake,
            reconciler.wake,
            max_clock_skew=settings.max_clock_skew,
        )
        app.state.recon = Recon(
            engine=resources.engine,
            clock=wall_clock,
            files=SettlementFiles(
                resources.engine,
                wall_clock,
                findings.wake,
                parse_timeout=settings.parse_timeout.total_seconds(),
                validate_xsd=settings.validate_xsd,
            ),
            references=References(resources.engine),
            line_matcher=line_matcher,
            reconciler=reconciler,
            desk=Desk(
                resources.engine,
                wall_clock,
                findings.wake,
                line_matcher.wake,
                max_clock_skew=settings.max_clock_skew,
                approval=approval_limits(settings.write_off_approval),
            ),
        )
        resources.loops.start("recon-file-matching", line_matcher.run)
        resources.loops.start("recon-payouts", reconciler.run)
        resources.loops.start("recon-file-findings", findings.run)
        try:
            yield
        finally:
            await resources.loops.stop()
            await publisher.close()

    app = create_service_app(
        service="recon",
        settings=settings,
        title="settlewatch recon",
        description=DESCRIPTION,
        routers=(files.router, payouts.router, desk.router),
        lifespan=lifespan,
        larger_bodies={"/v1/settlement-files": settings.max_file_bytes},
    )
    register_schemas(app, (SettlementAccount, FileMapping, *desk.BODIES, Problem))
    return app

"""What the ingest handlers share, built once in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.ingest.registry import MerchantRegistry
from settlewatch.ingest.webhook_secrets import WebhookSecrets

__all__ = ["Ingest", "IngestDep"]


@dataclass(frozen=True)
class Ingest:
    engine: AsyncEngine
    publisher: Publisher
    registry: MerchantRegistry
    topics: Topics
    clock: Callable[[], datetime]  # what "the future" is measured against
    max_clock_skew: timedelta
    webhook_secrets: WebhookSecrets


def _ingest(request: Request) -> Ingest:
    ingest: Ingest = request.app.state.ingest
    return ingest


IngestDep = Annotated[Ingest, Depends(_ingest)]

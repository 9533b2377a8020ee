"""The ingest service's HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from settlewatch.common.config import IngestSettings
from settlewatch.common.service import create_service_app


def create_app(settings: IngestSettings) -> FastAPI:
    return create_service_app(service="ingest", settings=settings, title="settlewatch ingest")

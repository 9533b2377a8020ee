"""The alerts service's HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from settlewatch.common.config import AlertsSettings
from settlewatch.common.service import create_service_app


def create_app(settings: AlertsSettings) -> FastAPI:
    return create_service_app(service="alerts", settings=settings, title="settlewatch alerts")

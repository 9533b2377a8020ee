"""The matcher service's HTTP app."""

from __future__ import annotations

from fastapi import FastAPI

from settlewatch.common.config import MatcherSettings
from settlewatch.common.service import create_service_app


def create_app(settings: MatcherSettings) -> FastAPI:
    return create_service_app(service="matcher", settings=settings, title="settlewatch matcher")

"""One typed client per service the console calls (SPEC §15: it reads and writes only through
their APIs, with the signed-in token); :class:`Clients` holds the four for one request."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from settlewatch.common.config import ConsoleSettings
from settlewatch.console.clients.alerts import AlertsClient
from settlewatch.console.clients.base import ApiRefused, ServiceUnavailable
from settlewatch.console.clients.ingest import IngestClient
from settlewatch.console.clients.matcher import MatcherClient
from settlewatch.console.clients.recon import ReconClient

__all__ = ["ApiRefused", "Clients", "ServiceUnavailable"]


@dataclass(frozen=True)
class Clients:
    ingest: IngestClient
    matcher: MatcherClient
    alerts: AlertsClient
    recon: ReconClient

    @classmethod
    def of(cls, http: httpx.AsyncClient, settings: ConsoleSettings, token: str) -> Clients:
        return cls(
            ingest=IngestClient(http, settings.service_url("ingest"), token),
            matcher=MatcherClient(http, settings.service_url("matcher"), token),
            alerts=AlertsClient(http, settings.service_url("alerts"), token),
            recon=ReconClient(http, settings.service_url("recon"), token),
        )

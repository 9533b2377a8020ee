"""/readyz follows the real database and broker: 503 while one is down, 200 when it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from settlewatch.common.config import IngestSettings, MatcherSettings
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.stack.broker import EmbeddedBroker
from settlewatch.stack.postgres import EmbeddedPostgres
from tests.support.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


def settings_for(cls: type[IngestSettings] | type[MatcherSettings], **env: str) -> IngestSettings:
    return cls(**env)  # type: ignore[arg-type, return-value]


@pytest_asyncio.fixture(loop_scope="session")
async def client_for() -> AsyncIterator[object]:
    """Runs an app's lifespan (opening its real connections) around an HTTP client."""
    opened: list[tuple[FastAPI, object]] = []

    async def open_client(app: FastAPI) -> httpx.AsyncClient:
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        opened.append((app, lifespan))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sw")

    yield open_client
    for _, lifespan in reversed(opened):
        await lifespan.__aexit__(None, None, None)  # type: ignore[attr-defined]


async def test_readyz_is_503_while_the_database_is_down_and_200_when_it_is_back(
    tmp_path: Path, broker_bootstrap: str, client_for: object
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    url = postgres.start()
    try:
        settings = IngestSettings(DATABASE_URL=url, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap)  # type: ignore[call-arg]
        client = await client_for(create_ingest(settings))  # type: ignore[operator]

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

        postgres.stop()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"].startswith("error")
        assert down.json()["checks"]["broker"] == "ok"
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

        postgres.start()
        back = await client.get("/readyz")
        assert back.status_code == 200, back.text
    finally:
        postgres.stop()


async def test_readyz_is_503_while_the_broker_is_down_and_200_when_it_is_back(
    tmp_path: Path, database_url: str, client_for: object
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    bootstrap = await broker.start()
    try:
        settings = MatcherSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=bootstrap)  # type: ignore[call-arg]
        client = await client_for(create_matcher(settings))  # type: ignore[operator]
        assert (await client.get("/readyz")).status_code == 200

        await broker.stop()
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"] == {
            "database": "ok",
            "broker": down.json()["checks"]["broker"],
        }
        assert down.json()["checks"]["broker"].startswith("error")

        await broker.start()
        assert (await client.get("/readyz")).status_code == 200
    finally:
        await broker.stop()


async def test_a_service_started_before_its_broker_becomes_ready_when_the_broker_comes(
    tmp_path: Path, database_url: str, client_for: object
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    settings = MatcherSettings(  # type: ignore[call-arg]
        DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers
    )
    client = await client_for(create_matcher(settings))  # type: ignore[operator]
    assert (await client.get("/readyz")).status_code == 503
    await broker.start()
    try:
        assert (await client.get("/readyz")).status_code == 200
    finally:
        await broker.stop()


async def test_metrics_are_exposed_in_prometheus_format(
    database_url: str, broker_bootstrap: str, client_for: object
) -> None:
    settings = IngestSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap)  # type: ignore[call-arg]
    client = await client_for(create_ingest(settings))  # type: ignore[operator]
    await client.get("/readyz")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'settlewatch_dependency_up{dependency="database"} 1.0' in metrics.text
    assert 'settlewatch_build_info{service="ingest"' in metrics.text


async def test_unknown_paths_answer_problem_json(
    database_url: str, broker_bootstrap: str, client_for: object
) -> None:
    settings = IngestSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap)  # type: ignore[call-arg]
    client = await client_for(create_ingest(settings))  # type: ignore[operator]
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404

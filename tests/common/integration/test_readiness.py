"""/readyz follows the real database and broker: 503 while one is down, 200 when it is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from settlewatch.common.config import IngestSettings, MatcherSettings, ReconSettings
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.devstack.postgres import EmbeddedPostgres
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.matcher.store import MatcherStore
from settlewatch.recon.app import create_app as create_recon
from settlewatch.schema import migrate
from tests.support.apps import app_client
from tests.support.dirs import server_dir
from tests.support.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


def ingest_settings(database_url: str, bootstrap: str) -> IngestSettings:
    return IngestSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=bootstrap)  # type: ignore[call-arg]


def recon_settings(database_url: str, bootstrap: str) -> ReconSettings:
    return ReconSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=bootstrap)  # type: ignore[call-arg]


def matcher_settings(database_url: str, bootstrap: str) -> MatcherSettings:
    return MatcherSettings(DATABASE_URL=database_url, KAFKA_BOOTSTRAP_SERVERS=bootstrap)  # type: ignore[call-arg]


async def test_readyz_is_503_while_the_database_is_down_and_200_when_it_is_back(
    broker_bootstrap: str,
) -> None:
    with server_dir("readiness") as folder:
        await _database_down_and_back(EmbeddedPostgres(folder / "pg"), broker_bootstrap)


async def _database_down_and_back(postgres: EmbeddedPostgres, broker_bootstrap: str) -> None:
    url = postgres.start()
    await asyncio.to_thread(migrate, url)  # recon's loops read its tables
    try:
        async with app_client(create_recon(recon_settings(url, broker_bootstrap))) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": "ok",
                "broker": "ok",
                "recon-file-matching": "ok",
                "recon-payouts": "ok",
                "recon-file-findings": "ok",
            }

            postgres.stop()
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["database"].startswith("error")
            assert down.json()["checks"]["broker"] == "ok"
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

            postgres.start()
            # Recon's loops that work on the database failed while it was away; they are
            # restarted with backoff and count as well again after a 10 s run (common.loops).
            # The bound only tells "never" from "soon".
            deadline = time.monotonic() + 90
            while (back := await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, back.text
                await asyncio.sleep(0.5)
            assert back.json()["checks"]["database"] == "ok"
    finally:
        postgres.stop()


async def test_readyz_is_503_while_the_broker_is_down_and_200_when_it_is_back(
    tmp_path: Path, database_url: str
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    bootstrap = await broker.start()
    try:
        async with app_client(create_matcher(matcher_settings(database_url, bootstrap))) as client:
            assert (await client.get("/readyz")).status_code == 200

            await broker.stop()
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["checks"]["database"] == "ok"
            assert down.json()["checks"]["broker"].startswith("error")

            await broker.start()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await broker.stop()


async def test_a_service_started_before_its_broker_becomes_ready_when_the_broker_comes(
    tmp_path: Path, database_url: str
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    settings = matcher_settings(database_url, broker.bootstrap_servers)
    try:
        async with app_client(create_matcher(settings)) as client:
            assert (await client.get("/readyz")).status_code == 503
            await broker.start()
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await broker.stop()


async def test_metrics_are_exposed_in_prometheus_format(
    database_url: str, broker_bootstrap: str
) -> None:
    async with app_client(create_ingest(ingest_settings(database_url, broker_bootstrap))) as client:
        await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'settlewatch_dependency_up{dependency="database"} 1.0' in metrics.text
    assert 'settlewatch_build_info{service="ingest"' in metrics.text


async def test_unknown_paths_answer_problem_json(database_url: str, broker_bootstrap: str) -> None:
    settings = IngestSettings(  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap,
        SETTLEWATCH_API_TOKENS="t0ken=acquirer",
    )
    async with app_client(create_ingest(settings), "t0ken") as client:
        response = await client.get("/v1/nothing-here")
        anonymous = await client.get("/v1/nothing-here", headers={"authorization": ""})
    assert anonymous.status_code == 401  # a caller learns nothing of the API before its token
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_readyz_is_503_naming_a_failing_consumer_loop_until_it_runs_again(
    database_url: str, broker_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: a matcher whose loop died and restarted forever still answered `ready`."""

    async def lost_database(self: MatcherStore) -> list[object]:
        raise ConnectionResetError("connection reset by peer")

    def restarts() -> float:
        labels = {"loop": "matcher-loop"}
        return REGISTRY.get_sample_value("settlewatch_loop_restarts_total", labels) or 0.0

    before = restarts()
    monkeypatch.setattr(MatcherStore, "unpublished", lost_database)
    settings = matcher_settings(database_url, broker_bootstrap)
    async with app_client(create_matcher(settings)) as client:
        deadline = time.monotonic() + 30
        while restarts() - before < 2:  # it is started again, and fails again
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["matcher-loop"] == (
            "failing: ConnectionResetError: connection reset by peer"
        )
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

        monkeypatch.undo()  # the database is back: the next run lasts
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline + 30
            await asyncio.sleep(0.5)

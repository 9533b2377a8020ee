"""Per-token rate limits (SPEC §14): over its rate a token gets 429 with Retry-After, as
problem+json; other tokens, health and metrics are not held up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settlewatch.common.config import IngestSettings
from settlewatch.ingest.app import create_app
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1
from tests.support.apps import app_client


@pytest.mark.asyncio(loop_scope="session")
async def test_a_token_over_its_rate_gets_429_and_others_go_on(
    ingest_settings: IngestSettings,
) -> None:
    settings = ingest_settings.model_copy(update={"rate_limit": "3/minute"})
    async with app_client(create_app(settings), ACQUIRER) as acquirer:
        answers = [await acquirer.get("/v1/maintenance-windows") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "rate limit" in refused.json()["detail"]

        merchant = {"authorization": f"Bearer {MERCHANT_M1}"}
        assert (await acquirer.get("/v1/calendars/CN", headers=merchant)).status_code == 200
        for path in ("/healthz", "/metrics"):
            assert (await acquirer.get(path)).status_code == 200
        assert (await acquirer.get("/v1/maintenance-windows")).status_code == 429


def test_a_rate_that_cannot_be_read_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="not a rate such as 1000/second"):
        IngestSettings(  # type: ignore[call-arg]
            DATABASE_URL="postgresql://x/y",
            KAFKA_BOOTSTRAP_SERVERS="k:9092",
            SETTLEWATCH_RATE_LIMIT="lots",
        )


@pytest.mark.asyncio(loop_scope="session")
async def test_an_address_guessing_tokens_gets_429_before_its_guesses_are_looked_up(
    ingest_settings: IngestSettings,
) -> None:
    settings = ingest_settings.model_copy(update={"auth_failure_limit": "3/minute"})
    async with app_client(create_app(settings), "sw_guess") as guesser:
        answers = [await guesser.get("/v1/maintenance-windows") for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert "failed authentications" in answers[-1].json()["detail"]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        right = {"authorization": f"Bearer {ACQUIRER}"}  # the address, not the token, is held
        assert (await guesser.get("/v1/maintenance-windows", headers=right)).status_code == 429
        assert (await guesser.get("/healthz")).status_code == 200

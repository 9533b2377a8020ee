from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from settlewatch.common.config import (
    AlertsSettings,
    ConfigError,
    IngestSettings,
    MatcherSettings,
    StackSettings,
    load_settings,
)

KEY = "Dk3NR5wi4Vu6pPJyWIqINWmmz2scUFo9RLzNSvfRZAs="  # a Fernet key
REQUIRED = {
    "DATABASE_URL": "postgresql://u@db:5432/sw",
    "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
    "SETTLEWATCH_SECRET_KEY": KEY,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for key in list(os.environ):
        if key.startswith(("SETTLEWATCH_", "KAFKA_", "DATABASE_", "ALERTMANAGER_")) or key.endswith(
            "_PORT"
        ):
            monkeypatch.delenv(key)
    return monkeypatch


def setenv(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def test_defaults_follow_the_spec(clean_env: pytest.MonkeyPatch) -> None:
    setenv(clean_env, **REQUIRED)
    ingest = load_settings(IngestSettings)
    matcher = load_settings(MatcherSettings)
    alerts = load_settings(AlertsSettings)
    stack = load_settings(StackSettings)
    assert (ingest.port, matcher.port, alerts.port) == (8001, 8002, 8003)
    assert ingest.data_dir == Path(".data")
    assert ingest.topic_prefix == "settlewatch"
    assert ingest.topic_partitions == 12
    assert ingest.kafka_enable_idempotence is False
    assert matcher.timer_interval == timedelta(seconds=1)
    assert alerts.group_wait == timedelta(seconds=10)
    assert alerts.alertmanager_url is None
    assert stack.broker_port == 9092
    assert ingest.api_tokens == ()


def test_environment_names_are_those_of_the_spec(clean_env: pytest.MonkeyPatch) -> None:
    setenv(
        clean_env,
        **REQUIRED,
        SETTLEWATCH_DATA_DIR="/var/lib/sw",
        SETTLEWATCH_TOPIC_PREFIX="prod",
        INGEST_PORT="9001",
        MATCHER_PORT="9002",
        ALERTS_PORT="9003",
        BROKER_PORT="19092",
        ALERTMANAGER_URL="http://am:9093",
        SETTLEWATCH_GROUP_WAIT="PT30S",
        SETTLEWATCH_TIMER_INTERVAL="PT0.5S",
    )
    assert load_settings(IngestSettings).port == 9001
    assert load_settings(IngestSettings).topic_prefix == "prod"
    assert load_settings(IngestSettings).data_dir == Path("/var/lib/sw")
    assert load_settings(MatcherSettings).port == 9002
    assert load_settings(MatcherSettings).timer_interval == timedelta(milliseconds=500)
    alerts = load_settings(AlertsSettings)
    assert (alerts.port, alerts.alertmanager_url) == (9003, "http://am:9093")
    assert alerts.group_wait == timedelta(seconds=30)
    assert load_settings(StackSettings).broker_port == 19092


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@/db?host=/run/pg", "postgresql+asyncpg://u@/db?host=/run/pg"),
    ],
)
def test_database_url_forms_operators_paste_are_accepted(
    clean_env: pytest.MonkeyPatch, given: str, used: str
) -> None:
    setenv(clean_env, **(REQUIRED | {"DATABASE_URL": given}))
    assert load_settings(IngestSettings).database_url == used


def test_api_tokens_parse_into_scopes(clean_env: pytest.MonkeyPatch) -> None:
    setenv(
        clean_env,
        **REQUIRED,
        SETTLEWATCH_API_TOKENS="s3cret=acquirer, m1tok=merchant:M-1, desk=acquirer:read",
    )
    tokens = load_settings(IngestSettings).api_tokens
    assert [(t.secret.get_secret_value(), t.scope) for t in tokens] == [
        ("s3cret", "acquirer"),
        ("m1tok", "merchant:M-1"),
        ("desk", "acquirer:read"),
    ]


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    setenv(clean_env, **REQUIRED)
    settings = load_settings(IngestSettings)
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INGEST_PORT": "eighty"}, "INGEST_PORT"),
        ({"INGEST_PORT": "70000"}, "INGEST_PORT"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"SETTLEWATCH_TOPIC_PARTITIONS": "0"}, "SETTLEWATCH_TOPIC_PARTITIONS"),
        ({"SETTLEWATCH_TOPIC_PREFIX": "has space"}, "SETTLEWATCH_TOPIC_PREFIX"),
        ({"SETTLEWATCH_API_TOKENS": "tok=root"}, "SETTLEWATCH_API_TOKENS"),
        ({"SETTLEWATCH_API_TOKENS": "no-equals-sign"}, "SETTLEWATCH_API_TOKENS"),
        ({"SETTLEWATCH_LOG_LEVEL": "LOUD"}, "SETTLEWATCH_LOG_LEVEL"),
        ({"SETTLEWATCH_SECRET_KEY": "short"}, "SETTLEWATCH_SECRET_KEY"),
        ({"SETTLEWATCH_SECRET_KEY": " , "}, "SETTLEWATCH_SECRET_KEY"),
        ({"SETTLEWATCH_SECRET_KEY": f"{KEY},short"}, "SETTLEWATCH_SECRET_KEY"),
        ({"SETTLEWATCH_WEBHOOK_SECRET_OVERLAP": "PT0S"}, "SETTLEWATCH_WEBHOOK_SECRET_OVERLAP"),
    ],
)
def test_bad_values_name_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    setenv(clean_env, **(REQUIRED | env))
    with pytest.raises(ConfigError, match=named):
        load_settings(IngestSettings)


@pytest.mark.parametrize("value", ["PT0S", "-PT1S", "often"])
def test_timer_interval_must_be_a_positive_duration(
    clean_env: pytest.MonkeyPatch, value: str
) -> None:
    setenv(clean_env, **REQUIRED, SETTLEWATCH_TIMER_INTERVAL=value)
    with pytest.raises(ConfigError, match="SETTLEWATCH_TIMER_INTERVAL"):
        load_settings(MatcherSettings)


@pytest.mark.parametrize("missing", ["DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"])
def test_services_require_database_and_broker(clean_env: pytest.MonkeyPatch, missing: str) -> None:
    setenv(clean_env, **{k: v for k, v in REQUIRED.items() if k != missing})
    with pytest.raises(ConfigError, match=missing):
        load_settings(IngestSettings)


@pytest.mark.parametrize("settings", [IngestSettings, AlertsSettings])
def test_the_services_that_hold_webhook_secrets_need_a_key(
    clean_env: pytest.MonkeyPatch, settings: type[IngestSettings | AlertsSettings]
) -> None:
    setenv(clean_env, **{k: v for k, v in REQUIRED.items() if k != "SETTLEWATCH_SECRET_KEY"})
    with pytest.raises(ConfigError, match="SETTLEWATCH_SECRET_KEY"):
        load_settings(settings)
    load_settings(MatcherSettings)  # the matcher never sees a secret


def test_a_key_never_appears_in_errors(clean_env: pytest.MonkeyPatch) -> None:
    setenv(clean_env, **REQUIRED | {"SETTLEWATCH_SECRET_KEY": f"{KEY},not-a-key-value"})
    with pytest.raises(ConfigError) as caught:
        load_settings(IngestSettings)
    assert "key 2 is not a Fernet key" in str(caught.value)
    assert KEY not in str(caught.value) and "not-a-key-value" not in str(caught.value)


def test_stack_runs_embedded_parts_when_no_urls_are_given(clean_env: pytest.MonkeyPatch) -> None:
    stack = load_settings(StackSettings)
    assert stack.database_url is None
    assert stack.kafka_bootstrap_servers is None


def test_token_values_never_appear_in_errors(clean_env: pytest.MonkeyPatch) -> None:
    setenv(clean_env, **REQUIRED, SETTLEWATCH_API_TOKENS="topsecretvalue=superuser")
    with pytest.raises(ConfigError) as caught:
        load_settings(IngestSettings)
    assert "topsecretvalue" not in str(caught.value)

"""deploy/compose.yaml and the Dockerfile. No Docker engine runs here, so what can be checked
without one is: the file is valid, every service's environment is accepted by that service's
settings (names and values), commands are real `settlewatch` commands, and ports, host names
and mounted files agree with Prometheus', Alertmanager's and Grafana's configs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from settlewatch.cli.main import _parser
from settlewatch.common.config import (
    AlertsSettings,
    ConsoleSettings,
    IngestSettings,
    MatcherSettings,
    ReconSettings,
    StackSettings,
)
from tests.deploy.conftest import DEPLOY

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SETTINGS = {
    "ingest": IngestSettings,
    "matcher": MatcherSettings,
    "alerts": AlertsSettings,
    "recon": ReconSettings,
}
KNOWN = {
    field.validation_alias
    for cls in (*SETTINGS.values(), ConsoleSettings, StackSettings)
    for field in cls.model_fields.values()
}


# What an operator exports before `docker compose up` (the file's header says so).
OPERATOR_SETS = {
    "SETTLEWATCH_API_TOKENS": "s3cret-token=acquirer",
    "SETTLEWATCH_SECRET_KEY": Fernet.generate_key().decode(),
}


def environment(service: str) -> dict[str, str]:
    """The service's environment as compose fills it in: `${VAR:?…}` with what an operator
    would set, `${VAR-default}` with its default."""
    env = SERVICES[service]["environment"]

    def filled(variable: re.Match[str]) -> str:
        default = re.fullmatch(r"\w+:?-(.*)", variable[1])
        return default[1] if default else OPERATOR_SETS[re.match(r"\w+", variable[1])[0]]

    return {k: re.sub(r"\$\{([^}]+)\}", filled, str(v)) for k, v in env.items()}


def test_the_stack_has_every_part() -> None:
    assert set(SERVICES) == {
        "kafka",
        "postgres",
        "migrate",
        "ingest",
        "matcher",
        "alerts",
        "recon",
        "console",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    kafka = SERVICES["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


@pytest.mark.parametrize("service", ["ingest", "matcher", "alerts", "recon"])
def test_each_service_accepts_its_environment_and_listens_where_it_is_scraped(
    service: str,
) -> None:
    env = environment(service)
    assert set(env) <= KNOWN, f"unknown variables: {set(env) - KNOWN}"
    settings = SETTINGS[service](**env)  # type: ignore[call-arg]
    assert SERVICES[service]["ports"] == [f"{settings.port}:{settings.port}"]
    assert _parser().parse_args(SERVICES[service]["command"]).service == service
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]
    }
    assert targets[f"settlewatch-{service}"] == [f"{service}:{settings.port}"]
    database = urlsplit(env["DATABASE_URL"])
    assert database.hostname == "postgres" and database.port == 5432
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_the_console_listens_where_it_is_scraped_and_reaches_each_service_where_it_listens() -> (
    None
):
    env = environment("console")
    assert set(env) <= KNOWN, f"unknown variables: {set(env) - KNOWN}"
    console = ConsoleSettings(**env)  # type: ignore[arg-type]
    assert SERVICES["console"]["ports"] == [f"{console.port}:{console.port}"]
    assert _parser().parse_args(SERVICES["console"]["command"]).service == "console"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]
    }
    assert targets["settlewatch-console"] == [f"console:{console.port}"]
    for service, settings_cls in SETTINGS.items():
        port = settings_cls(**environment(service)).port  # type: ignore[call-arg]
        assert console.service_url(service) == f"http://{service}:{port}"  # type: ignore[arg-type]
    assert set(SERVICES["console"]["depends_on"]) == set(SETTINGS)


def test_migrate_runs_before_the_services_and_creates_the_topics() -> None:
    migrate = SERVICES["migrate"]
    assert _parser().parse_args(migrate["command"]).command == "migrate"
    assert "KAFKA_BOOTSTRAP_SERVERS" in migrate["environment"]  # so it creates the topics too
    for service in SETTINGS:
        assert SERVICES[service]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_alerts_page_the_alertmanager_prometheus_alerts_and_grafana_reads_prometheus() -> None:
    pager = urlsplit(environment("alerts")["ALERTMANAGER_URL"])
    assert (pager.hostname, pager.port) == ("alertmanager", 9093)
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert urlsplit(datasource["url"]).netloc == "prometheus:9090"
    assert SERVICES["prometheus"]["ports"] == ["9090:9090"]
    dashboards = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "settlewatch.yml").read_text()
    )["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{dashboards}:ro" in SERVICES["grafana"]["volumes"]


def test_mounted_files_exist_and_the_image_runs_the_cli() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["settlewatch"]' in dockerfile
    build = SERVICES["ingest"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    ).resolve()
    for path in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (Path(DEPLOY / build["context"]) / path).exists(), path

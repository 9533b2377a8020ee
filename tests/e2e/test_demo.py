"""`settlewatch demo` against `settlewatch up`, scraped by a real Prometheus that loads the
on-call rules, paging a real Alertmanager: every injected problem is detected and nothing else;
every Grafana panel's query returns data; the rules evaluate; the bank incident reaches
Alertmanager (issue 6)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, tool
from tests.support.ports import free_port
from tests.support.stack import StartStack

pytestmark = pytest.mark.e2e

DASHBOARDS = DEPLOY / "grafana" / "dashboards"


@contextmanager
def running(args: list[str], log: Path, ready_url: str) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{args[0]} not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(15)


def prometheus_config(ports: dict[str, int], alertmanager: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at this stack and scraping every second."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / "prometheus" / "rules" / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{alertmanager}"
    ]
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("settlewatch-")
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports[service]}"]
    return config


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) of every panel, the bank variable set to all banks."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):  # a row has none
                expr = target["expr"].replace("$bank", ".*")
                queries.append((dashboard["title"], panel["title"], expr))
    return queries


def has_data(prometheus: str, expr: str) -> bool:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    values = [float(r["value"][1]) for r in answer["data"]["result"]]
    return any(not math.isnan(v) for v in values)


@pytest.mark.timeout(360)  # deadlines fall due on a whole minute: 30–90 s, then the checks
def test_demo_detects_what_it_injected_and_every_dashboard_panel_has_data(
    start_stack: StartStack, tmp_path: Path
) -> None:
    am_port, prom_port = free_port(), free_port()
    alertmanager = f"http://127.0.0.1:{am_port}"
    prometheus = f"http://127.0.0.1:{prom_port}"
    stack = start_stack({"ALERTMANAGER_URL": alertmanager, "SETTLEWATCH_GROUP_WAIT": "PT2S"})
    stack.wait_ready()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(stack.ports, am_port)))
    with (
        running(
            [
                tool("prometheus-alertmanager", "prometheus-alertmanager"),
                f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
            f"{alertmanager}/-/ready",
        ),
        running(
            [
                tool("prometheus", "prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
            f"{prometheus}/-/ready",
        ),
    ):
        demo = subprocess.run(
            [sys.executable, "-m", "settlewatch.cli", "demo", "--due-in", "30"],
            env=os.environ | stack.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stdout[-5000:] + demo.stderr[-3000:]
        assert "Every injected problem was detected, nothing else." in demo.stdout

        queries = panel_queries()
        deadline = time.monotonic() + 30  # gauges refreshed from the store every 5–10 s
        empty = queries
        while empty and time.monotonic() < deadline:
            time.sleep(1)
            empty = [q for q in empty if not has_data(prometheus, q[2])]
        assert empty == [], "panels without data:\n" + "\n".join(map(str, empty))

        rules = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
        unhealthy = [r["name"] for g in rules for r in g["rules"] if r["health"] != "ok"]
        assert rules and unhealthy == []

        paged = httpx.get(f"{alertmanager}/api/v2/alerts").json()
        assert {(a["labels"]["alertname"], a["labels"].get("bank_code")) for a in paged} >= {
            ("SettlementBankIncident", "BOCOM")
        }

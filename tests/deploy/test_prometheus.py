"""Prometheus config and on-call rules: valid, unit-tested by promtool, each with what on-call
needs (severity, summary, description, a runbook section that exists)."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from settlewatch.alerts.oncall import RUNBOOK as RUNBOOK_URL
from tests.deploy.conftest import DEPLOY, RUNBOOK, tool

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool", "prometheus"), *args], capture_output=True, text=True, cwd=PROMETHEUS
    )


def alerting_rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def runbook_anchors() -> set[str]:
    return {heading.lower() for heading in re.findall(r"^## (\w+)$", RUNBOOK.read_text(), re.M)}


def test_config_and_rules_are_valid() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = promtool(
        "check", "rules", *sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_what_on_call_needs_and_a_test_that_fires_it() -> None:
    fired = {
        case["alertname"]
        for path in (PROMETHEUS / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    anchors = runbook_anchors()
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbook.md has no section {name}"
        assert name in fired, f"no promtool test makes {name} fire"


def test_the_alerts_the_service_pushes_have_runbook_sections_too() -> None:
    assert {"settlementbankincident", "settlementpipelinestalled"} <= runbook_anchors()

"""The example Alertmanager config is valid and routes each on-call alert where it says."""

from __future__ import annotations

import subprocess

import pytest

from tests.deploy.conftest import DEPLOY, tool

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("amtool", "prometheus-alertmanager"), *args], capture_output=True, text=True
    )


def test_config_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=SettlementBankIncident", "bank_code=B1"], "bank-oncall"),
        (["alertname=SettlewatchBankOverdueRatioHigh", "bank_code=B1"], "bank-oncall"),
        (["alertname=SettlementPipelineStalled"], "platform-oncall"),
        (["alertname=SettlewatchServiceDown", "job=settlewatch-matcher"], "platform-oncall"),
    ],
)
def test_alerts_are_routed_to_their_team(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr

"""The deploy/ checks run Prometheus' and Alertmanager's own tools (Debian packages
`prometheus` and `prometheus-alertmanager`; `.ci/run` installs them). Without them the checks
are skipped on a developer's machine and fail in CI (CI=true)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: apt-get install {package}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path

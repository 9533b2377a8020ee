"""The README's configuration table names every variable the settings read, and
docs/metrics.md every metric the services export, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import settlewatch.alerts.metrics  # noqa: F401
import settlewatch.common.metrics  # noqa: F401  (importing registers the metrics)
import settlewatch.ingest.metrics  # noqa: F401
import settlewatch.matcher.metrics  # noqa: F401
from settlewatch.alerts.metrics import AlertCounts, AlertCountsCollector
from settlewatch.common.config import AlertsSettings, IngestSettings, MatcherSettings, StackSettings
from settlewatch.matcher.metrics import OpenPaymentsCollector

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
METRICS = ROOT / "docs" / "metrics.md"


def test_configuration_table_matches_the_settings() -> None:
    read = {
        field.validation_alias
        for cls in (IngestSettings, MatcherSettings, AlertsSettings, StackSettings)
        for field in cls.model_fields.values()
    }
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == read


def test_metrics_table_matches_what_the_services_export() -> None:
    families = [
        *REGISTRY.collect(),
        *OpenPaymentsCollector(dict, dict).collect(),
        *AlertCountsCollector(AlertCounts()).collect(),
    ]
    suffix = {"counter": "_total", "info": "_info"}
    exported = {
        family.name + suffix.get(family.type, "")
        for family in families
        if family.name.startswith("settlewatch_")
    }
    documented = set(
        re.findall(r"^\| `(settlewatch_[a-z_]+)` \|", METRICS.read_text(), flags=re.MULTILINE)
    )
    assert documented == exported

"""docs/configuration.md names every variable the settings read, and docs/metrics.md every metric
the services export, and no other; the README fits on two screens and links every page of docs/,
and no link between them points at a page or a heading that is not there."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import settlewatch.alerts.metrics  # noqa: F401
import settlewatch.common.metrics  # noqa: F401  (importing registers the metrics)
import settlewatch.console.metrics  # noqa: F401
import settlewatch.ingest.metrics  # noqa: F401
import settlewatch.matcher.metrics  # noqa: F401
import settlewatch.recon.metrics  # noqa: F401
from settlewatch.alerts.metrics import AlertCounts, AlertCountsCollector
from settlewatch.common.config import (
    AlertsSettings,
    ConsoleSettings,
    IngestSettings,
    MatcherSettings,
    ReconSettings,
    StackSettings,
)
from settlewatch.matcher.metrics import OpenPaymentsCollector

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
METRICS = DOCS / "metrics.md"


def test_configuration_table_matches_the_settings() -> None:
    read = {
        field.validation_alias
        for cls in (
            IngestSettings,
            MatcherSettings,
            AlertsSettings,
            ReconSettings,
            ConsoleSettings,
            StackSettings,
        )
        for field in cls.model_fields.values()
    }
    documented = set(
        re.findall(r"^\| `([A-Z_]+)` \|", CONFIGURATION.read_text(), flags=re.MULTILINE)
    )
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


def test_the_readme_is_short_and_links_every_page() -> None:
    readme = README.read_text()
    assert len(readme.splitlines()) <= 200
    linked = set(re.findall(r"\]\(docs/([\w.-]+\.md)", readme))
    assert linked == {page.name for page in DOCS.glob("*.md")}


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings."""
    titles = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


def test_every_link_between_the_pages_lands() -> None:
    broken = []
    for page in [README, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists() or (
                anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text())
            ):
                broken.append(f"{page.name}: {target}")
    assert not broken

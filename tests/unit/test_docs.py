"""The README's configuration table names every variable the settings read, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from settlewatch.common.config import AlertsSettings, IngestSettings, MatcherSettings, StackSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_table_matches_the_settings() -> None:
    read = {
        field.validation_alias
        for cls in (IngestSettings, MatcherSettings, AlertsSettings, StackSettings)
        for field in cls.model_fields.values()
    }
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == read

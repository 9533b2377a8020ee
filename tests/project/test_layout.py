"""The layout (docs/architecture.md): one package per job, each importing only the packages
below it. Services never import each other; common imports nothing of settlewatch but itself;
the production command line imports no developer part (they plug in through entry points)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"ingest", "matcher", "alerts", "recon"}
# What each package may import besides itself, bottom to top.
MAY_IMPORT: dict[str, set[str]] = {
    "common": set(),
    "schema": {"common"},
    "settlementfiles": {"common"},
    **{service: {"common", "schema", "settlementfiles"} for service in SERVICES},
    "cli": {"common", "schema", "settlementfiles", *SERVICES},
    "devstack": {"common", "schema", "settlementfiles", *SERVICES, "cli"},
    "demo": {"common", "schema", "settlementfiles", *SERVICES, "cli", "devstack"},
}


def packages() -> dict[str, Path]:
    """Each package and its folder, `libs/<name>/settlewatch/<name>` or `services/<name>/…`."""
    found = {}
    for top in ("libs", "services"):
        for folder in sorted((ROOT / top).iterdir()):
            if folder.is_dir():
                inner = sorted(p.name for p in (folder / "settlewatch").iterdir() if p.is_dir())
                assert inner == [folder.name], f"{folder} must hold settlewatch/{folder.name} only"
                found[folder.name] = folder / "settlewatch" / folder.name
    return found


def imported(path: Path) -> set[str]:
    """The settlewatch packages a module imports (statically, TYPE_CHECKING included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[1] for name in names if name.startswith("settlewatch.")}


def test_every_package_is_placed_in_the_layout() -> None:
    assert set(packages()) == set(MAY_IMPORT)


def test_packages_import_only_downward() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports settlewatch.{other}"
        for name, folder in packages().items()
        for path in sorted(folder.rglob("*.py"))
        for other in sorted(imported(path) - MAY_IMPORT[name] - {name})
    ]
    assert wrong == []


def test_the_rule_itself_has_no_cycle() -> None:
    order = list(MAY_IMPORT)  # listed bottom to top: each may import only what comes before
    for position, name in enumerate(order):
        assert MAY_IMPORT[name] <= set(order[:position]), name


def test_other_services_read_the_matcher_only_through_its_read_views() -> None:
    """Its tables are the matcher's own (schema/matcher.py); alerts (on-call) and ingest (report
    lines, a merchant's books) use the views and functions of 0006, 0007 and 0011."""

    def named(service: str) -> set[str]:
        pattern = r"(?:FROM|JOIN|UPDATE|INTO)\s+(matcher_\w+)"
        return {
            name
            for path in packages()[service].rglob("*.py")
            for name in re.findall(pattern, path.read_text())
        }

    assert named("alerts") == {"matcher_read_clock", "matcher_read_due"}
    assert named("ingest") == {"matcher_read_books"}
    assert named("recon") == {"matcher_read_payments"}


def test_no_transaction_is_opened_any_other_way() -> None:
    """`engine.begin()` and `conn.begin()` anywhere but common.db would bring the lazy BEGIN
    back."""
    found = []
    for path in sorted((ROOT / "services").rglob("*.py")) + sorted((ROOT / "libs").rglob("*.py")):
        if "migrations" in path.parts or path.name == "db.py" and path.parent.name == "common":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("begin", "transaction")
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "other")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []

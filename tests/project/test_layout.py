"""The layout (docs/architecture.md): one package per job, each importing only the packages
below it. Services never import each other; common imports nothing of settlewatch but itself;
the production command line imports no developer part (they plug in through entry points)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

from sqlalchemy import Table

import settlewatch.schema
from settlewatch.schema.reference import metadata

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"ingest", "matcher", "alerts", "recon"}
# What each package may import besides itself, bottom to top.
MAY_IMPORT: dict[str, set[str]] = {
    "common": set(),
    "schema": {"common"},
    "settlementfiles": {"common"},
    **{service: {"common", "schema", "settlementfiles"} for service in SERVICES},
    # The console reaches the services through their HTTP APIs only, never their code or tables.
    "console": {"common"},
    "cli": {"common", "schema", "settlementfiles", *SERVICES, "console"},
    "devstack": {"common", "schema", "settlementfiles", *SERVICES, "console", "cli"},
    "demo": {"common", "schema", "settlementfiles", *SERVICES, "console", "cli", "devstack"},
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


def owners() -> dict[str, str]:
    """Each table and view and the package that owns it: a table's ``info["owner"]``
    (settlewatch.schema), a view's by its name, ``<owner>_read_*`` (created by a migration)."""
    for module in pkgutil.iter_modules(settlewatch.schema.__path__):
        if module.name != "migrations":
            importlib.import_module(f"settlewatch.schema.{module.name}")
    tables = {name: table.info.get("owner", "?") for name, table in metadata.tables.items()}
    migrations = ROOT / "libs" / "schema" / "settlewatch" / "schema" / "migrations"
    views = {
        name: name.partition("_read_")[0]
        for path in migrations.rglob("*.py")
        for name in re.findall(r"\bVIEW (\w+_read_\w+)", path.read_text())
        + re.findall(r'"(\w+_read_\w+)": ', path.read_text())
    }
    return tables | views


def test_every_table_and_view_has_an_owner() -> None:
    unowned = {
        name: owner for name, owner in owners().items() if owner not in {*SERVICES, "common"}
    }
    assert unowned == {}


def test_each_service_reads_another_only_through_its_read_views() -> None:
    """A service uses its own tables, and the common ones (tokens, the audit log: through
    common.tokens and common.audit); another service's data only through that one's read views
    (``<owner>_read_*``, as the matcher's), never its tables — whether named in SQL or imported
    from settlewatch.schema."""
    owned = owners()
    sql = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)")
    wrong = []
    for name, folder in packages().items():
        if name not in {*SERVICES, "common"}:
            continue
        for path in sorted(folder.rglob("*.py")):
            used = set(sql.findall(path.read_text())) | schema_tables(path)
            for table in sorted(used & set(owned)):
                owner = owned[table]
                if owner in (name, "common") or (name in SERVICES and "_read_" in table):
                    continue
                wrong.append(f"{path.relative_to(ROOT)} uses {table} of {owner}")
    assert wrong == []


def schema_tables(path: Path) -> set[str]:
    """The tables a module imports from settlewatch.schema (a table, or a module of tables), by
    their names in the database."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "settlewatch.schema"
        ):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                value = getattr(module, alias.name)
                if isinstance(value, Table):
                    found.add(value.name)
                elif isinstance(value, ModuleType):
                    found |= {t.name for t in vars(value).values() if isinstance(t, Table)}
    return found


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

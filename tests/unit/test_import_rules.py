"""The design's one-way imports, enforced: each package may import only what the design allows."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "candour"

# Leaf modules anyone may import.
SHARED = {"errors", "progress", "yamlspec", "csvsafe"}
# package -> packages it may import (besides SHARED), from docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "home": set(),
    "store": {"config"},
    "synth": {"sources.spec"},
    "sources": {"store", "vault", "config", "home", "ledger"},
    "vault": {"store", "home", "config"},
    "warehouse": {"config", "home"},
    "ledger": {"home", "config"},
    "linkage": {"vault", "warehouse", "store", "ledger", "config", "home", "sources"},
    "choices": {"store", "ledger", "config", "home"},
    "register": {"store", "ledger", "config", "home"},
    "disclosure": {"store", "config", "home", "ledger"},
    "gate": {"warehouse", "choices", "register", "disclosure", "ledger", "store", "config", "home"},
    # disclosure: one list of person-level columns and one suppression marker for both checks,
    # and releases read through its API.
    "catalogue": {"store", "ledger", "config", "home", "disclosure"},
    "studies": {"gate", "disclosure", "catalogue", "register", "config", "home"},
}


def _candour_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("candour."):
                found.add(name.removeprefix("candour."))
    return found


def _allowed(package: str, imported: str) -> bool:
    if imported.split(".")[0] in SHARED | {package}:
        return True
    return any(
        imported == rule or imported.startswith(rule + ".") or rule.startswith(imported + ".")
        for rule in ALLOWED[package]
    )


# Top-level modules that orchestrate several domains (the CLI's and web app's workflows).
ORCHESTRATION = {"cli", "web", "demo", "initialise", "workflows", "maintenance", "__init__"}


def _modules() -> list[str]:
    return sorted(
        p.name if p.is_dir() else p.stem
        for p in SRC.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"
    )


def test_every_module_has_an_import_rule():
    unknown = [m for m in _modules() if m not in ALLOWED and m not in ORCHESTRATION | SHARED]
    assert unknown == [], "add these to ALLOWED (and to docs/architecture.md)"


@pytest.mark.parametrize("package", [m for m in _modules() if m in ALLOWED])
def test_package_imports_flow_one_way(package: str):
    root = SRC / package
    files = list(root.rglob("*.py")) if root.is_dir() else [SRC / f"{package}.py"]
    breaches = [
        f"{f.relative_to(SRC)} imports candour.{name}"
        for f in files
        for name in sorted(_candour_imports(f))
        if not _allowed(package, name)
    ]
    assert breaches == []


def test_nothing_but_web_and_cli_and_orchestration_imports_web_or_cli():
    for path in SRC.rglob("*.py"):
        top = path.relative_to(SRC).parts[0]
        if top in {"web", "cli"}:
            continue
        for name in _candour_imports(path):
            assert name.split(".")[0] not in {"web", "cli"}, f"{path} imports candour.{name}"


def test_web_never_reads_the_vault_directly():
    # Residents' identities reach the web only through audited workflows (design: web row).
    for path in (SRC / "web").rglob("*.py"):
        for name in _candour_imports(path):
            assert not name.startswith("vault"), f"{path.relative_to(SRC)} imports candour.{name}"

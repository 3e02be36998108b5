"""The dependency rules between the packages, checked on every import statement.

``webcore`` and ``eventstore`` are the floor and import nothing of ours;
``auth`` builds on them only; ``executor`` may use ``auth`` but never
``collab``; inside ``collab`` the real-time engine never reaches into the
REST routes, and only the app factory wires the routes in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("collab", "webcore", "auth", "eventstore", "executor")

# package (or module prefix) -> the packages of ours it may import
ALLOWED: dict[str, tuple[str, ...]] = {
    "webcore": ("webcore",),
    "eventstore": ("eventstore",),
    "auth": ("auth", "eventstore", "webcore"),
    "executor": ("executor", "auth", "eventstore", "webcore"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def _all_modules() -> list[tuple[str, set[str]]]:
    return [
        (_module_name(path), _imports(path))
        for package in OURS
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


MODULES = _all_modules()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_packages_import_only_what_they_may(package: str) -> None:
    wrong = {
        (module, imported)
        for module, imports in MODULES
        if _within(module, package)
        for imported in imports
        if imported.split(".")[0] not in ALLOWED[package]
    }
    assert not wrong, f"{package} may import only {ALLOWED[package]}: {sorted(wrong)}"


def test_only_the_app_imports_the_rest_api() -> None:
    wrong = {
        (module, imported)
        for module, imports in MODULES
        if not _within(module, "collab.api") and module != "collab.app"
        for imported in imports
        if _within(imported, "collab.api")
    }
    assert not wrong, f"only collab.app may import collab.api: {sorted(wrong)}"


def test_the_realtime_engine_does_not_know_the_app() -> None:
    wrong = {
        (module, imported)
        for module, imports in MODULES
        if _within(module, "collab.realtime")
        for imported in imports
        if _within(imported, "collab.app") or _within(imported, "collab.cli")
    }
    assert not wrong, sorted(wrong)


def test_every_module_is_seen() -> None:
    names = {module for module, _ in MODULES}
    assert {"collab.app", "collab.realtime.room", "webcore.errors", "auth.routes"} <= names

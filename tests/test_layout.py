"""The architecture holds: each heavy dependency stays in its folder, and the core imports
nothing of the database or the renderer (docs/ARCHITECTURE.md, rules of the house 1).

Read from the source (every import statement, lazy and type-only ones included), so a boundary
is crossed by no code path, not only by the ones the other tests happen to run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PROJECT

PACKAGE = PROJECT / "reconciler"

# The manifest pipeline and what pre-commit's validate runs: none of it may need the database
# or the renderer (the hooks install neither).
CORE = ["paths", "limits", "source", "loader", "spec", "serving", "catalog", "rules", "policy",
        "servinghistory", "diff", "events", "batch", "validate", "diagnostics", "files",
        "times", "gcpause", "extras", "distribution", "edit/", "git/", "dvc/"]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module name an import statement of path names (relative imports are not used)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            # `from reconciler.registry import store` names reconciler.registry.store
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _in(path: Path, names: list[str]) -> bool:
    relative = _relative(path)
    return any(relative.startswith(n) if n.endswith("/") else relative == f"{n}.py"
               for n in names)


@pytest.mark.parametrize(("dependency", "home"), [
    ("sqlalchemy", "registry/"), ("alembic", "registry/"),
    ("jinja2", ("render/", "site/")),  # deployment configs, and the registry's pages
    ("dvc", "dvc/remotes.py"), ("git", None),  # gitpython: never, git runs as a process
])
def test_each_heavy_dependency_is_imported_in_its_folder_only(
        dependency: str, home: str | tuple[str, ...] | None) -> None:
    outside = sorted({_relative(path) for path in _modules()
                      for name in _imports(path)
                      if name.split(".")[0] == dependency
                      and (home is None or not _relative(path).startswith(home))})
    assert outside == []


def test_the_core_imports_nothing_of_the_database_or_the_renderer() -> None:
    crossing = sorted({(_relative(path), name) for path in _modules() if _in(path, CORE)
                       for name in _imports(path)
                       if name.startswith(("reconciler.registry", "reconciler.render",
                                           "reconciler.reconcile", "reconciler.api",
                                           "reconciler.cli"))})
    assert crossing == []


def test_only_the_git_folder_starts_processes() -> None:
    starting = sorted(_relative(path) for path in _modules()
                      if "subprocess" in set(_imports(path))
                      and not _relative(path).startswith("git/"))
    assert starting == []


def test_subpackage_init_files_stay_empty() -> None:
    """An __init__ runs on every import of its folder: start-up is most of validate's time."""
    assert [_relative(p) for p in PACKAGE.rglob("__init__.py")
            if p.parent != PACKAGE and "migrations" not in p.parts and p.read_text().strip()
            ] == []


def test_every_folder_of_the_package_has_a_folder_of_tests() -> None:
    """Tests mirror the package: tests/registry/ for reconciler/registry/, and so on."""
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders <= {p.name for p in (PROJECT / "tests").iterdir() if p.is_dir()}


def test_every_package_folder_is_distributed() -> None:
    """pyproject.toml lists the packages: a folder left out would be missing from a wheel."""
    import tomllib

    listed = set(tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    folders = {".".join(p.parent.relative_to(PROJECT).parts)
               for p in PACKAGE.rglob("__init__.py")}
    assert folders <= listed

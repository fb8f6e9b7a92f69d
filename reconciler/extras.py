"""Optional dependencies: each command installs only what it needs.

The core (validate, pin, schema) needs only pydantic and PyYAML, so the pre-commit hooks install
in seconds. Every other command checks its extra before it imports anything from it, and says
exactly what to install when it is missing.
"""

from __future__ import annotations

import importlib.util
import sys

from reconciler.diagnostics import ReconcilerError

# extra -> the modules it brings that reconciler imports (pyproject.toml declares the packages).
EXTRAS: dict[str, tuple[str, ...]] = {
    "render": ("jinja2", "jsonschema", "kubernetes_validate", "configobj"),
    "apply": ("sqlalchemy", "alembic", "pymysql"),
    "dvc": ("dvc",),
    "postgres": ("psycopg",),
}


def missing(extra: str) -> list[str]:
    """The modules of an extra that cannot be imported here (found without importing them)."""
    return [module for module in EXTRAS[extra] if not _importable(module)]


def _importable(module: str) -> bool:
    if module in sys.modules:  # imported already, or blocked (None) as Python's docs allow
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def require(what: str, *extras: str) -> None:
    """Raise a usage error naming the pip command when a module of one of extras is missing."""
    lacking = [extra for extra in extras if missing(extra)]
    if lacking:
        names = ",".join(lacking)
        modules = ", ".join(module for extra in lacking for module in missing(extra))
        from reconciler.distribution import NAME, install_line

        raise ReconcilerError(f"{what} needs the optional dependencies of {NAME}[{names}] "
                              f"(missing: {modules}): {install_line(names)}")

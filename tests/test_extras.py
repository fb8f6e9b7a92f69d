"""Each command names the extra it needs when that extra is not installed (exit 2, one line)."""

from __future__ import annotations

import sys

import pytest

from reconciler import cli, distribution
from tests.conftest import Registry

COMMANDS = [
    (["render"], "jinja2", "render"),
    (["render", "--check"], "kubernetes_validate", "render"),
    (["apply"], "sqlalchemy", "apply"),
    (["apply"], "jinja2", "render"),
    (["db", "upgrade"], "alembic", "apply"),
    (["audit", "verify"], "sqlalchemy", "apply"),
    (["validate", "--check-remote"], "dvc", "dvc"),
]


@pytest.mark.parametrize(("argv", "module", "extra"), COMMANDS)
def test_missing_extra_names_the_pip_command(
        registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], module: str, extra: str) -> None:
    monkeypatch.chdir(registry.root)
    monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert distribution.install_line(extra) in err and module in err
    assert "'reconciler[" not in err  # the index's `reconciler` is another project


def test_the_core_needs_no_extra(registry: Registry, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(registry.root)
    for module in ("jinja2", "sqlalchemy", "alembic", "dvc", "jsonschema", "rich"):
        monkeypatch.setitem(sys.modules, module, None)
    assert cli.main(["validate"]) == 0
    assert cli.main(["pin"]) == 0
    assert cli.main(["schema"]) == 0
    capsys.readouterr()

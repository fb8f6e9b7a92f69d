"""The install lines this project prints and generates install this project, at the version
meant, never the unrelated `reconciler` of the package index."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import __version__, distribution, scaffold
from tests.conftest import PROJECT

pytestmark = pytest.mark.slow


def _generated_installs(ci: str) -> list[str]:
    """The requirements the CI `init --ci` writes installs, in order."""
    (recipe,) = [f for f in scaffold.plan_files(ci, "kserve") if f.path == scaffold.CI_FILES[ci][0]]
    return [shlex.split(line)[-1] for line in re.findall(r"pip install (.+)", recipe.text)]


def test_the_distribution_is_not_named_after_the_index_project() -> None:
    pyproject = (PROJECT / "pyproject.toml").read_text()
    assert re.search(r'^name = "reconciler-gitops"$', pyproject, re.M)
    assert "\"reconciler[" not in pyproject  # extras refer to this project by its own name


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_generated_ci_installs_the_release_the_hooks_pin(ci: str) -> None:
    pinned = re.search(r"rev: (\S+)", scaffold._pre_commit_config())
    assert pinned is not None and pinned.group(1) == f"v{__version__}"
    installs = _generated_installs(ci)
    assert installs == [distribution.release_requirement("render"),
                        distribution.release_requirement("apply")]
    for requirement in installs:
        assert requirement.startswith("reconciler-gitops[")
        assert requirement.endswith(f" @ git+{scaffold.HOOKS_REPO}@{pinned.group(1)}")


def test_the_generated_install_line_resolves_to_this_project(release: Path,
                                                             tmp_path: Path) -> None:
    """pip, for real, on the line the generated CI runs (the hooks' repository swapped for a
    local clone with the release tag): this project at this version, and nothing named
    `reconciler`."""
    requirement = _generated_installs("github")[-1].replace(scaffold.HOOKS_REPO,
                                                            f"file://{release}")
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                           "--ignore-installed", "--report", str(report), requirement],
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    installed = {item["metadata"]["name"].lower(): item
                 for item in json.loads(report.read_text())["install"]}
    assert "reconciler" not in installed
    ours = installed["reconciler-gitops"]
    assert ours["metadata"]["version"] == __version__
    assert ours["download_info"]["url"] == f"file://{release}"
    assert {"sqlalchemy", "alembic", "jinja2"} <= set(installed)  # the [apply] extra came too


def test_hints_name_how_this_installation_was_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {
        None: f"pip install 'reconciler-gitops[apply]=={__version__}'",
        json.dumps({"url": "file:///src/reconciler", "dir_info": {"editable": True}}):
            "pip install -e '/src/reconciler[apply]'",
        json.dumps({"url": "file:///src/reconciler", "dir_info": {}}):
            "pip install '/src/reconciler[apply]'",
        json.dumps({"url": "https://github.com/reconciler-dev/reconciler",
                    "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}}):
            "pip install 'reconciler-gitops[apply] @ "
            f"git+https://github.com/reconciler-dev/reconciler@{'ab' * 20}'",
    }
    for origin, line in cases.items():
        monkeypatch.setattr(distribution, "_direct_url",
                            lambda o=origin: None if o is None else json.loads(o))
        assert distribution.install_line("apply") == line


def test_this_installation_hint_installs_this_checkout() -> None:
    """In the development install (README's command), the hint points at this checkout."""
    line = distribution.install_line("apply")
    assert line == f"pip install -e {shlex.quote(str(PROJECT) + '[apply]')}", line

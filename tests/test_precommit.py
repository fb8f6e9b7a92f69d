"""The published hooks, run by the real pre-commit from a clone of this repository.

pre-commit clones `repo: <this repository>` at the commit under test and installs it into a
fresh virtual environment from PyPI, exactly as a user's repository would get it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import distribution, scaffold
from tests.conftest import Registry, model_manifest
from tests.test_validate import retrain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _pre_commit(registry: Registry, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "DVC_NO_ANALYTICS": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=registry.root,
                          capture_output=True, text=True, check=False, env=env, timeout=900)


def _use_hooks(registry: Registry, release: Path, *hooks: str) -> None:
    """Commit a .pre-commit-config.yaml using this repository's published hooks at the release
    tag: with every hook, exactly the file `reconciler init` writes."""
    config = scaffold._pre_commit_config().replace(scaffold.HOOKS_REPO, str(release))
    assert f"rev: {distribution.release_tag()}" in config
    if hooks != ("reconciler-pin", "reconciler-validate"):
        listed = "".join(f"      - id: {hook}\n" for hook in hooks)
        config = config[:config.index("    hooks:\n") + len("    hooks:\n")] + listed
    registry.write(".pre-commit-config.yaml", config)
    registry.commit("Add pre-commit config")


def test_published_hooks(registry: Registry, pre_commit_home: Path, release: Path) -> None:
    _use_hooks(registry, release, "reconciler-pin", "reconciler-validate")

    # A good manifest passes.
    done = _pre_commit(registry, pre_commit_home, "run", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reconciler validate" in done.stdout and "Passed" in done.stdout

    # The hooks' environment holds the core alone; what needs an extra says which.
    (environment,) = pre_commit_home.glob("repo*/py_env-*")
    listed = subprocess.run([environment / "bin" / "python", "-m", "pip", "list",
                             "--format=freeze", "--exclude", "pip", "--exclude", "setuptools"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(listed) <= 15, listed
    assert not any(name.lower().startswith(("dvc", "sqlalchemy", "jinja2")) for name in listed)
    done = subprocess.run([environment / "bin" / "reconciler", "render"], cwd=registry.root,
                          capture_output=True, text=True, check=False)
    # The hint installs this project (from where pre-commit installed it), never the unrelated
    # `reconciler` of the package index.
    assert done.returncode == 2 and "[render]" in done.stderr, done.stderr
    assert "pip install" in done.stderr and "'reconciler[" not in done.stderr

    # A bad one fails, naming the file, line and rule.
    fraud = "manifests/models/fraud.yaml"
    good = (registry.root / fraud).read_text()
    registry.write(fraud, good.replace('version: "1.0.0"\n      artifact',
                                       "version: 1.10\n      artifact", 1))
    registry.repo.git.add(fraud)
    done = _pre_commit(registry, pre_commit_home, "run", "--files", fraud)
    assert done.returncode == 1
    assert f"{fraud}:9:16: SPC005" in done.stdout

    # A retrain with a new version lacking its digest: pin fixes the file and fails once,
    # then everything passes.
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    registry.write(fraud, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", None)],
        stages='staging: {version: "1.0.0"}\nproduction: {version: "1.0.0"}'))
    registry.repo.git.add(A=True)
    done = _pre_commit(registry, pre_commit_home, "run", "--files", fraud,
                       "models/fraud.pkl.dvc")
    assert done.returncode == 1
    assert f"digest: {new}" in (registry.root / fraud).read_text()
    registry.repo.git.add(A=True)
    done = _pre_commit(registry, pre_commit_home, "run", "--files", fraud,
                       "models/fraud.pkl.dvc")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_published_hook_refuses_a_commit_that_skips_staging(
        registry: Registry, pre_commit_home: Path, release: Path) -> None:
    _use_hooks(registry, release, "reconciler-validate")
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    fraud = "manifests/models/fraud.yaml"
    registry.write(fraud, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.0.0"}\nproduction: {version: "1.1.0"}'))
    registry.repo.git.add(A=True)
    done = _pre_commit(registry, pre_commit_home, "run", "--files", fraud,
                       "models/fraud.pkl.dvc")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "POL001" in done.stdout and "staging" in done.stdout


def test_a_commit_that_only_deletes_a_manifest_is_checked(
        registry: Registry, pre_commit_home: Path, release: Path) -> None:
    """pre-commit passes no deleted file: the hook still runs and reads the staged deletion.
    Deleting the Environment a model is served in breaks the model's reference."""
    _use_hooks(registry, release, "reconciler-validate")
    registry.repo.git.rm("-q", "manifests/environments/staging.yaml")
    done = _pre_commit(registry, pre_commit_home, "run")  # the staged change, as git commit
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REF" in done.stdout and "staging" in done.stdout
    registry.repo.git.reset("-q", "--hard")
    registry.write("README.md", "docs only\n")
    registry.repo.git.add("README.md")
    done = _pre_commit(registry, pre_commit_home, "run")  # nothing of the registry: passes
    assert done.returncode == 0, done.stdout + done.stderr

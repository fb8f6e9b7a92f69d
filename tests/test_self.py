"""This repository dogfoods itself: its own registry validates and its artifacts pull offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git

from reconciler import api
from tests.conftest import PROJECT, dvc_env


def test_own_manifests_are_clean() -> None:
    result = api.validate(str(PROJECT))
    assert result.diagnostics == []
    assert result.files >= 7


def test_own_registry_has_what_the_examples_promise() -> None:
    from reconciler import catalog, source

    current = catalog.build(source.WorkTree(str(PROJECT)))
    assert len(current.models) >= 3 and len(current.datasets) >= 2
    assert {"staging", "production"} <= set(current.environments)
    assert any(stage.canary for entry in current.models.values()
               for stage in entry.manifest.spec.stages.values())
    churn = current.output("models/churn-predictor.json")
    assert churn is not None and churn.lineage is not None
    assert "data/customer-events.csv" in {dep.path for dep in churn.lineage.deps}


def test_fresh_clone_pulls_artifacts_from_the_committed_remote(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git.Repo.clone_from(str(PROJECT), clone).close()
    done = subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone,
                          capture_output=True, text=True, check=False, env=dvc_env())
    assert done.returncode == 0, done.stderr
    assert (clone / "models" / "fraud-detector.pkl").read_bytes().startswith(
        b"fraud-detector weights v1.3.0")
    assert api.validate(str(clone), check_remote=True).diagnostics == []


def test_readme_documents_every_rule_code() -> None:
    from reconciler.diagnostics import CODES

    readme = (PROJECT / "README.md").read_text()
    for code, (severity, _) in CODES.items():
        assert f"| {code} | {severity} |" in readme, code

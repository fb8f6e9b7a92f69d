"""Metrics a gate judges are what the pipeline wrote: a real `dvc stage add -M` pipeline, run
with `dvc repro`; pin fills metrics and params from DVC, validate refuses hand-typed ones, and
`import gto` reads a stage's metrics outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import api
from reconciler.gto import importer as gtoimport
from tests.conftest import ENVIRONMENTS, Registry, dvc_project

TRAIN = """\
import json, yaml
params = yaml.safe_load(open("params.yaml"))
open("models/churn.pkl", "w").write(f"weights depth={params['train']['depth']}\\n")
json.dump({"auc": 0.823, "eval": {"loss": 0.41}}, open("metrics.json", "w"))
"""
MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {name: churn, owner: ml@example.com}
spec:
  framework: sklearn
  versions:
    - version: "1.0.0"
      artifact: models/churn.pkl
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A DVC pipeline whose train stage writes the model and a metrics file (-M), run."""
    project = dvc_project(tmp_path_factory.mktemp("pipeline") / "repo")
    project.write("params.yaml", "train:\n  depth: 3\n")
    project.write("train.py", TRAIN)
    (project.root / "models").mkdir()
    project.dvc("stage", "add", "-q", "-n", "train", "-p", "train.depth", "-d", "train.py",
                "-o", "models/churn.pkl", "-M", "metrics.json",
                f"{sys.executable} train.py")
    project.dvc("repro", "-q")
    for path, text in ENVIRONMENTS.items():
        project.write(path, text)
    project.commit("pipeline and environments")
    return project


def test_pin_fills_metrics_and_params_from_dvc_and_validate_holds_them(
        pipeline: Registry) -> None:
    pipeline.write("manifests/models/churn.yaml", MODEL)
    done = api.pin(str(pipeline.root))
    assert done.changed == ["manifests/models/churn.yaml"] and done.diagnostics == []
    text = (pipeline.root / "manifests/models/churn.yaml").read_text()
    assert 'metrics: {"auc": 0.823, "eval.loss": 0.41}' in text
    assert 'params: {"train.depth": 3}' in text
    assert api.validate(str(pipeline.root)).diagnostics == []

    # Typed by hand, better than the pipeline wrote: refused, whatever the gate says.
    (pipeline.root / "manifests/models/churn.yaml").write_text(
        text.replace('"auc": 0.823', '"auc": 0.95'))
    found = api.validate(str(pipeline.root)).diagnostics
    assert [d.code for d in found] == ["MET001"]
    assert "says 0.95 for auc, but DVC records 0.823 (metrics.json, stage train)" in (
        found[0].message)
    # A metric DVC does not record stays as typed.
    (pipeline.root / "manifests/models/churn.yaml").write_text(
        text.replace('"auc": 0.823', '"auc": 0.823, "latency_ms": 12'))
    assert api.validate(str(pipeline.root)).diagnostics == []


def test_the_gate_judges_what_the_pipeline_wrote(pipeline: Registry) -> None:
    pipeline.write("manifests/models/churn.yaml", MODEL)
    api.pin(str(pipeline.root))
    pipeline.commit("churn 1.0.0")
    staging = ENVIRONMENTS["manifests/environments/staging.yaml"]
    pipeline.write("manifests/environments/staging.yaml",
                   staging + '  serves:\n    churn: {version: "1.0.0"}\n')
    pipeline.commit("churn 1.0.0 in staging")
    production = ENVIRONMENTS["manifests/environments/production.yaml"]
    pipeline.write("manifests/environments/production.yaml",
                   production + '  serves:\n    churn: {version: "1.0.0"}\n')
    found = api.validate(str(pipeline.root)).diagnostics
    assert [d.code for d in found] == ["POL002"]
    assert "requires auc >= 0.9; version '1.0.0' is 0.823" in found[0].message
    pipeline.repo.git.checkout("--", ".")


def test_import_gto_reads_a_stages_metrics_outputs(pipeline: Registry, tmp_path: Path) -> None:
    """A pipeline made with `dvc stage add -M` declares its metrics file on the stage only,
    not in dvc.yaml's top-level `metrics:` list."""
    text = (pipeline.root / "dvc.yaml").read_text()
    assert "metrics:" in text and not text.startswith("metrics:")
    pipeline.write("dvc.yaml", text + "artifacts:\n  churn:\n    path: models/churn.pkl\n"
                                      "    type: model\n")
    pipeline.commit("declare the artifact")
    pipeline.repo.git.tag("-a", "churn@v1.0.0", "-m", "Registering artifact churn version 1.0.0")
    imported = gtoimport.read_registry(str(pipeline.root))
    version = imported.versions[("churn", "v1.0.0")]
    assert version.metrics == {"auc": 0.823, "eval.loss": 0.41}
    assert version.params == {"train.depth": 3}
    done = subprocess.run([sys.executable, "-m", "reconciler", "import", "gto"],
                          cwd=pipeline.root, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "auc: 0.823" in done.stdout


def test_an_older_training_named_by_rev_says_the_metrics_recorded_there(
        pipeline: Registry) -> None:
    """A version added with `rev:` (an older training) is judged by the metrics files of its
    stage at that revision, not by numbers typed beside it (they passed unchecked before)."""
    pipeline.write("manifests/models/churn.yaml", MODEL)
    api.pin(str(pipeline.root))
    pipeline.commit("churn 1.0.0, pinned")
    first, first_digest = pipeline.repo.head.commit.hexsha, pipeline.digest("models/churn.pkl")
    pipeline.write("train.py", TRAIN.replace("0.823", "0.871").replace("depth=", "v2 depth="))
    pipeline.dvc("repro", "-q")
    pipeline.commit("retrained")
    pinned = (pipeline.root / "manifests/models/churn.yaml").read_text()
    older = (f'    - version: "0.9.0"\n      artifact: models/churn.pkl\n      rev: {first}\n'
             f"      digest: {first_digest}\n      metrics: {{auc: METRIC, eval.loss: 0.41}}\n")
    try:
        pipeline.write("manifests/models/churn.yaml",
                       pinned + older.replace("METRIC", "0.99"))
        found = [d for d in api.validate(str(pipeline.root)).diagnostics if d.code == "MET001"]
        assert len(found) == 1 and "says 0.99 for auc, but DVC records 0.823" in found[0].message
        assert f"at rev '{first}'" in found[0].message
        pipeline.write("manifests/models/churn.yaml",
                       pinned + older.replace("METRIC", "0.823"))
        assert [d.code for d in api.validate(str(pipeline.root)).diagnostics
                if d.code == "MET001"] == []
    finally:
        pipeline.repo.git.checkout("--", ".")

"""Lineage through a real DVC pipeline: raw data brought in by `dvc import` from another
repository, then prepare -> featurize (a directory) -> train, reproduced by `dvc repro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import sqlalchemy

from reconciler import limits, reconcile
from reconciler.dvc import lineage
from reconciler.dvc.records import Dependency, Output, StageLineage
from reconciler.registry import db
from tests.conftest import Registry, dvc_project, raw_data_source

STEP = ("import os, sys; os.makedirs(os.path.dirname(sys.argv[2]) or '.', exist_ok=True); "
        "open(sys.argv[2], 'wb').write(sys.argv[3].encode() + open(sys.argv[1], 'rb').read())")
SPLIT = ("import os, sys; os.makedirs(sys.argv[2], exist_ok=True); "
         "data = open(sys.argv[1], 'rb').read(); "
         "[open(os.path.join(sys.argv[2], n), 'wb').write(n.encode() + data) "
         "for n in ('a.bin', 'b.bin')]")


def _step(src: str, out: str, tag: str) -> str:
    return f"{sys.executable} -c \"{STEP}\" {src} {out} {tag}"


@pytest.fixture(params=["together", "dataset later"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    """A source repository with raw data, imported into a project whose three-stage pipeline
    trains models/model.pkl; the raw import is registered as a Dataset, the model as a Model
    (in one commit, or the Dataset in the next one)."""
    source = raw_data_source(tmp_path / "source")
    project = dvc_project(tmp_path / "project")
    (project.root / "data").mkdir()
    project.dvc("import", "-q", str(source.root), "raw.csv", "-o", "data/raw.csv")
    project.write("params.yaml", "train:\n  depth: 3\n")
    project.write("src/train.py", "# the training code\n")
    project.dvc("stage", "add", "-q", "-n", "prepare", "-d", "data/raw.csv",
                "-o", "data/prepared.csv", _step("data/raw.csv", "data/prepared.csv", "p"))
    project.dvc("stage", "add", "-q", "-n", "featurize", "-d", "data/prepared.csv",
                "-o", "data/features", f"{sys.executable} -c \"{SPLIT}\" data/prepared.csv "
                "data/features")
    project.dvc("stage", "add", "-q", "-n", "train", "-d", "data/features/a.bin",
                "-d", "src/train.py", "-p", "train.depth", "-o", "models/model.pkl",
                _step("data/features/a.bin", "models/model.pkl", "m"))
    project.dvc("repro", "-q")
    raw = project.digest("data/raw.csv")
    model = project.digest("models/model.pkl")
    dataset = f"""\
apiVersion: reconciler/v1
kind: Dataset
metadata: {{name: raw}}
spec:
  versions:
    - version: "v1"
      artifact: data/raw.csv
      digest: {raw}
"""
    if request.param == "together":
        project.write("manifests/raw.yaml", dataset)
    project.write("manifests/model.yaml", f"""\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: scorer}}
spec:
  framework: sklearn
  versions:
    - version: "1.0.0"
      artifact: models/model.pkl
      digest: {model}
""")
    project.commit("register the pipeline's model")
    if request.param == "dataset later":
        project.write("manifests/raw.yaml", dataset)
        project.commit("register the raw data", date="2024-06-02T10:00:00+00:00")
    return project


def test_lineage_reaches_the_imported_raw_data_through_three_stages(pipeline: Registry,
                                                                    tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    reconcile.sync(str(pipeline.root), url, "HEAD")
    engine = db.make_engine(sqlalchemy.make_url(url))
    with engine.connect() as connection:
        edges = connection.exec_driver_sql(
            "SELECT source_name, source_version, target_name, target_version, via "
            "FROM lineage_edges").all()
        landed = connection.exec_driver_sql(
            "SELECT e.commit_sha FROM lineage_edges e").scalar()
        payload, reproduction = connection.exec_driver_sql(
            "SELECT a.payload, v.reproduction FROM audit_events a JOIN model_versions v "
            "ON v.model = a.name AND v.version = a.version "
            "WHERE a.event_type = 'lineage.added'").one()
    engine.dispose()
    assert [tuple(e) for e in edges] == [
        ("raw", "v1", "scorer", "1.0.0", "dvc.lock:prepare>featurize>train")]
    assert landed == pipeline.repo.head.commit.hexsha  # the commit that registered the data
    imported = (payload if isinstance(payload, dict) else json.loads(payload))["import"]
    assert imported["path"] == "raw.csv" and imported["url"].endswith("source")
    assert len(imported["revLock"]) == 40
    record = reproduction if isinstance(reproduction, dict) else json.loads(reproduction)
    assert record["stage"] == "train" and "model.pkl" in record["cmd"]
    assert record["params"] == {"params.yaml": {"train.depth": 3}}
    assert {d["path"] for d in record["deps"]} == {"data/features/a.bin", "src/train.py"}
    assert all(d["digest"].startswith("md5:") for d in record["deps"])


def _output(path: str, stage: str, *deps: str) -> Output:
    return Output(path, f"md5:{path}", 1, None, "dvc.lock", StageLineage(
        "dvc.lock", stage, tuple(Dependency(d, f"md5:{d}") for d in deps), {}))


def test_a_hostile_dvc_lock_cannot_make_the_walk_loop_or_overflow_via() -> None:
    looped = {"a": _output("a", "s1", "b"), "b": _output("b", "s2", "a", "raw")}
    assert [(u.path, u.stages) for u in lineage.upstream(looped["a"], looped)] == [
        ("b", ("s1",)), ("a", ("s2", "s1")), ("raw", ("s2", "s1"))]
    chain = {f"f{n}": _output(f"f{n}", "x" * 200, f"f{n + 1}") for n in range(500)}
    found = list(lineage.upstream(chain["f0"], chain))
    assert len(found) == lineage.MAX_STAGES
    assert len(lineage.via("dvc.lock", found[-1].stages)) == limits.NAME_CHARS


def test_a_file_inside_an_output_directory_leads_to_the_stage_that_made_it() -> None:
    outputs = {"m.pkl": _output("m.pkl", "train", "feat/x"),
               "feat": _output("feat", "featurize", "raw.csv")}
    assert [(u.path, u.stages) for u in lineage.upstream(outputs["m.pkl"], outputs)] == [
        ("feat/x", ("train",)), ("raw.csv", ("featurize", "train"))]

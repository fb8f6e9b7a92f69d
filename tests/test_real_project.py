"""Issue 14's "done when", on a repository made as a team makes one: raw data brought in by
`dvc import`, a three-stage pipeline reproduced by `dvc repro` and retrained over the history by
several people, an older training registered later by `rev:`, a Seldon canary proposed in a
branch and merged with --no-ff after review, and the rendered configs committed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml

from reconciler import api
from reconciler.registry import db
from tests.conftest import Registry, dvc_project, raw_data_source

STEP = ("import os, sys; os.makedirs(os.path.dirname(sys.argv[2]) or '.', exist_ok=True); "
        "open(sys.argv[2], 'wb').write(open(sys.argv[1], 'rb').read() + open(sys.argv[3], "
        "'rb').read())")
ADA, BOB, DAVE, FRANK = ("Ada <ada@x.org>", "Bob <bob@x.org>", "Dave <dave@x.org>",
                         "Frank <frank@x.org>")
ENVIRONMENTS = """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: staging}
spec: {namespace: ml-staging, target: seldon}
---
apiVersion: reconciler/v1
kind: Environment
metadata: {name: production}
spec:
  namespace: ml-prod
  target: seldon
  promotion: {from: staging}
"""


def _step(src: str, out: str, extra: str) -> str:
    return f"{sys.executable} -c \"{STEP}\" {src} {out} {extra}"


def _model(versions: str, stages: str) -> str:
    return ("apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: scorer}\nspec:\n"
            f"  framework: sklearn\n  versions:\n{versions}  stages:\n{stages}")


def _version(number: str, digest: str, extra: str = "") -> str:
    return (f"    - version: \"{number}\"\n      artifact: models/model.pkl\n"
            f"      digest: {digest}\n{extra}")


def _retrain(project: Registry, depth: int) -> str:
    project.write("params.yaml", f"train:\n  depth: {depth}\n")
    project.dvc("repro", "-q")
    project.dvc("push", "-q")
    return project.digest("models/model.pkl")


@pytest.fixture
def project(tmp_path: Path) -> Registry:
    source = raw_data_source(tmp_path / "source")
    project = dvc_project(tmp_path / "project", ("Carol", "carol@x.org"))
    project.dvc("remote", "add", "-d", "local", str(tmp_path / "remote"))
    (project.root / "data").mkdir()
    project.dvc("import", "-q", str(source.root), "raw.csv", "-o", "data/raw.csv")
    project.write("src/train.py", "# training code\n")
    project.dvc("stage", "add", "-q", "-n", "prepare", "-d", "data/raw.csv",
                "-o", "data/prepared.csv", _step("data/raw.csv", "data/prepared.csv",
                                                 "src/train.py"))
    project.dvc("stage", "add", "-q", "-n", "featurize", "-d", "data/prepared.csv",
                "-o", "data/features.csv", _step("data/prepared.csv", "data/features.csv",
                                                 "src/train.py"))
    project.dvc("stage", "add", "-q", "-n", "train", "-d", "data/features.csv",
                "-d", "src/train.py", "-p", "train.depth", "-o", "models/model.pkl",
                _step("data/features.csv", "models/model.pkl", "params.yaml"))
    return project


def test_a_real_dvc_project_end_to_end(project: Registry, tmp_path: Path) -> None:
    first = _retrain(project, 3)
    raw = project.digest("data/raw.csv")
    project.write("manifests/environments.yaml", ENVIRONMENTS)
    project.write("manifests/raw.yaml", "apiVersion: reconciler/v1\nkind: Dataset\n"
                  "metadata: {name: raw}\nspec:\n  versions:\n    - version: \"v1\"\n"
                  f"      artifact: data/raw.csv\n      digest: {raw}\n")
    project.write("manifests/scorer.yaml", _model(_version("1.0.0", first),
                                                  "    staging: {version: \"1.0.0\"}\n"))
    project.commit("scorer 1.0.0", ADA, "2024-06-01T10:00:00+02:00")
    second = _retrain(project, 4)
    project.commit("retrain at depth 4", BOB, "2024-06-02T10:00:00+00:00")
    project.repo.create_tag("trained-depth-4")
    third = _retrain(project, 5)
    project.write("manifests/scorer.yaml", _model(
        _version("1.0.0", first) + _version("1.2.0", third),
        "    staging: {version: \"1.2.0\"}\n    production: {version: \"1.0.0\"}\n"))
    project.commit("scorer 1.2.0", BOB, "2024-06-03T10:00:00+00:00")

    # An older training registered afterwards: pin reads it from the revision it names.
    project.write("manifests/scorer.yaml", _model(
        _version("1.0.0", first) + "    - version: \"1.1.0\"\n      artifact: models/model.pkl\n"
        "      rev: trained-depth-4\n" + _version("1.2.0", third),
        "    staging: {version: \"1.2.0\"}\n    production: {version: \"1.0.0\"}\n"))
    assert api.pin(str(project.root)).changed == ["manifests/scorer.yaml"]
    assert f"digest: {second}" in (project.root / "manifests/scorer.yaml").read_text()
    assert api.validate(str(project.root)).diagnostics == []
    pinned = (project.root / "manifests/scorer.yaml").read_text()
    # A made-up digest for a version being added is refused.
    project.write("manifests/scorer.yaml", pinned.replace(
        "    - version: \"1.2.0\"", _version("1.1.5", "md5:" + "0" * 32) + "    - version: "
        "\"1.2.0\"", 1))
    assert [d.code for d in api.validate(str(project.root)).diagnostics] == ["ART009"]
    project.write("manifests/scorer.yaml", pinned)
    project.commit("register the depth-4 training as 1.1.0", DAVE, "2024-06-04T10:00:00Z")

    # Frank proposes a canary of 1.2.0 in production; Carol merges it after Erin's review.
    project.repo.git.checkout("-q", "-b", "canary")
    project.write("manifests/scorer.yaml", pinned.replace(
        "    production: {version: \"1.0.0\"}\n",
        "    production:\n      version: \"1.0.0\"\n      canary: {version: \"1.2.0\", "
        "traffic: 10}\n"))
    project.commit("canary 1.2.0 at 10%", FRANK, "2024-06-05T09:00:00+02:00")
    project.repo.git.checkout("-q", "main")
    when = {"GIT_AUTHOR_DATE": "2024-06-06T10:00:00Z", "GIT_COMMITTER_DATE": "2024-06-06T10:00:00Z"}
    subprocess.run(["git", "merge", "-q", "--no-ff", "canary", "-m", "Merge pull request #3",
                    "-m", "Reviewed-by: Erin <erin@x.org>"], cwd=project.root, check=True,
                   env={**os.environ, **when})
    assert api.render(str(project.root)).ok
    project.commit("rendered configs", DAVE, "2024-06-06T11:00:00Z")

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    outcome = api.apply(str(project.root), url, out=str(tmp_path / "applied"))
    assert outcome.applied is not None
    rows = _query(url)
    assert rows["edges"] == [("1.0.0", "dvc.lock:prepare>featurize>train"),
                             ("1.2.0", "dvc.lock:prepare>featurize>train")]
    assert rows["import"]["path"] == "raw.csv" and rows["import"]["revLock"]
    sizes = dict(rows["sizes"])
    assert all(isinstance(size, int) and size > 0 for size in sizes.values()), sizes
    assert rows["merge"] == [("proposer", "frank@x.org"), ("merger", "carol@x.org"),
                             ("reviewer", "erin@x.org")]
    experiment = [d for d in yaml.safe_load_all(
        (project.root / "deploy" / "production" / "scorer.yaml").read_text())
                  if d["kind"] == "Experiment"]
    assert [c["weight"] for c in experiment[0]["spec"]["candidates"]] == [90, 10]
    assert api.render(str(project.root), rev="HEAD", check=True).ok
    for env, digest in rows["renders"]:
        written = (project.root / "deploy" / env / "scorer.yaml").read_bytes()
        assert hashlib.sha256(written).hexdigest() == digest
    history = api.audit_history(str(project.root), url, model="scorer", env="production")
    merged = [row for row in history.data if row["event"] == "canary.changed"]
    assert merged and merged[0]["people"]["proposer"][0]["email"] == "frank@x.org"


def _query(url: str) -> dict[str, Any]:
    engine = db.make_engine(sqlalchemy.make_url(url))
    with engine.connect() as connection:
        run = connection.exec_driver_sql
        found = {
            "edges": [tuple(r) for r in run("SELECT target_version, via FROM lineage_edges "
                                            "ORDER BY target_version")],
            "import": json.loads(run("SELECT payload FROM audit_events WHERE event_type = "
                                     "'lineage.added' LIMIT 1").scalar())["import"],
            "sizes": [tuple(r) for r in run("SELECT version, size FROM model_versions")],
            "merge": [tuple(r) for r in run(
                "SELECT p.role, p.email FROM commit_people p JOIN commits c ON "
                "c.sha = p.commit_sha WHERE c.message LIKE 'Merge pull request #3%' "
                "ORDER BY p.position")],
            "renders": [(r[0], r[1].strip()) for r in run(
                "SELECT environment, digest FROM renders WHERE model = 'scorer'")]}
    engine.dispose()
    return found

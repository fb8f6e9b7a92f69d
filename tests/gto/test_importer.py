"""`reconciler import gto` against GTO itself: registries built with `gto register`, `gto
assign` and `gto deprecate`, imported, and compared with `gto show --json` and `gto history
--json`: the same versions, stages, actors and order."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import git
import pytest

from reconciler import api, reconcile
from reconciler.diagnostics import ReconcilerError
from reconciler.gto import importer as gtoimport
from reconciler.gto import tags as gtoregistry
from reconciler.report import listing
from tests.conftest import Registry, dvc_project

GTO = str(Path(sys.executable).parent / "gto")
ARTIFACTS = """\
metrics:
  - metrics.json
artifacts:
  churn:
    path: models/churn.pkl
    type: model
    desc: Churn scoring
    labels: [tabular]
  fraud_model:
    path: models/fraud.pkl
    type: model
  customers:
    path: data/customers.csv
    type: dataset
  remote-model:
    path: s3://bucket/model.pkl
    type: model
  tiny:
    path: models/tiny.bin
    type: model
"""


def _gto(project: Registry, who: str, *args: str) -> None:
    """A GTO command by who (GTO's tags record git's committer as tagger). GTO stamps tags
    with the current second: a pause keeps every action's second its own, so the order of
    history is the order of the commands, for GTO and for the import alike."""
    name, email = who[:-1].split(" <")
    env = {**os.environ, "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    done = subprocess.run([GTO, *args], cwd=project.root, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    time.sleep(1.05)


def _gto_json(project: Registry, *args: str) -> Any:
    done = subprocess.run([GTO, *args, "--json"], cwd=project.root, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def _retrain(project: Registry, path: str, content: str, author: str) -> None:
    project.write(path, content)
    project.dvc("add", "-q", path)
    project.commit(f"train {path}", author, "2024-06-01T10:00:00+00:00")


@pytest.fixture(scope="module")
def gto_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    project = dvc_project(tmp_path_factory.mktemp("gto") / "repo", ("Ada", "ada@x.org"))
    project.write("dvc.yaml", ARTIFACTS)
    project.write("metrics.json", '{"auc": 0.91, "eval": {"loss": 0.3}}')
    project.write("params.yaml", "train:\n  depth: 3\n")
    project.write("data/customers.csv", "id\n1\n")
    _retrain(project, "models/fraud.pkl", "fraud v1", "Ada <ada@x.org>")
    _retrain(project, "models/churn.pkl", "churn v1", "Ada <ada@x.org>")
    _gto(project, "Ada <ada@x.org>", "register", "churn")                      # v0.0.1
    _gto(project, "Ada <ada@x.org>", "register", "fraud_model")
    _gto(project, "Bob <bob@x.org>", "assign", "churn", "--version", "v0.0.1", "--stage",
         "staging")
    _gto(project, "Carol <carol@x.org>", "assign", "churn", "--version", "v0.0.1", "--stage",
         "prod")
    project.write("metrics.json", '{"auc": 0.94, "eval": {"loss": 0.2}}')
    _retrain(project, "models/churn.pkl", "churn v2", "Bob <bob@x.org>")
    _gto(project, "Bob <bob@x.org>", "register", "churn", "--bump-minor")      # v0.1.0
    _gto(project, "Bob <bob@x.org>", "assign", "churn", "--version", "v0.1.0", "--stage",
         "staging")
    _gto(project, "Carol <carol@x.org>", "assign", "churn", "--version", "v0.1.0", "--stage",
         "prod")
    _gto(project, "Dave <dave@x.org>", "deprecate", "churn", "v0.1.0", "prod")  # unassign
    _retrain(project, "models/churn.pkl", "churn v3", "Bob <bob@x.org>")
    _gto(project, "Bob <bob@x.org>", "register", "churn")                      # v0.1.1
    _gto(project, "Bob <bob@x.org>", "deprecate", "churn", "v0.1.1")           # deregister
    _gto(project, "Dave <dave@x.org>", "deprecate", "fraud_model")             # the artifact
    project.write("models/tiny.bin", "tiny weights")  # committed to git itself, not DVC
    project.commit("tiny model", "Eve <eve@x.org>", "2024-06-02T10:00:00+00:00")
    _gto(project, "Eve <eve@x.org>", "register", "tiny")
    project.repo.close()
    return project


def test_import_agrees_with_gtos_own_view(gto_registry: Registry, tmp_path: Path) -> None:
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    dry = api.import_gto(str(project.root))
    assert dry.written == [] and not (project.root / "manifests").exists()
    assert sorted(dry.manifests) == [
        "manifests/environments/prod.yaml", "manifests/environments/staging.yaml",
        "manifests/models/churn.yaml", "manifests/models/fraud-model.yaml",
        "manifests/models/tiny.yaml"]
    tiny_digest = "md5:" + hashlib.md5(b"tiny weights").hexdigest()
    assert f"digest: {tiny_digest}" in dry.manifests["manifests/models/tiny.yaml"]
    assert dry.renamed == {"fraud_model": "fraud-model"}
    assert any("customers: type dataset" in s for s in dry.skipped)
    assert any("remote-model" in s and "outside the repository" in s for s in dry.skipped)

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    done = api.import_gto(str(project.root), url, write=True, history=True)
    assert done.events == 12  # one per tag of the three models
    assert api.validate(str(project.root)).diagnostics == []
    project.commit("adopt reconciler", "Ada <ada@x.org>", "2030-01-01T00:00:00+00:00")
    # GTO's stages deploy nothing: imported as stages only, so apply renders nothing and needs
    # no DVC remote (every apply failed with RND002 when they were made kserve environments).
    assert "target" not in dry.manifests["manifests/environments/prod.yaml"]
    outcome = api.apply(str(project.root), url, branch="main")
    assert outcome.applied is not None and outcome.render_problems == []
    assert outcome.rendered == []

    shown = _rows(api.show(str(project.root), url, model="churn"))[0]
    gto_show = _gto_json(project, "show")
    assert shown["versions"][-1]["version"] == gto_show["churn"]["version"] == "v0.1.0"
    assert {env: state["version"] for env, state in shown["serving"].items()} == (
        gto_show["churn"]["stage"]) == {"prod": "v0.0.1", "staging": "v0.1.0"}
    assert "fraud_model" not in gto_show  # deprecated: GTO shows it no more
    fraud = _rows(api.show(str(project.root), url, model="fraud-model"))[0]
    assert fraud["serving"] == {} and all(v["deprecated"] for v in fraud["versions"])
    assert [v["metrics"] for v in shown["versions"]] == [{"auc": 0.91, "eval.loss": 0.3},
                                                        {"auc": 0.94, "eval.loss": 0.2}]
    churn_text = (project.root / "manifests/models/churn.yaml").read_text()
    assert "rev: " in churn_text and "train.depth: 3" in churn_text

    history = [r for r in _rows(api.audit_history(str(project.root), url, model="churn"))
               if r["payload"].get("imported")]
    theirs = list(reversed(_gto_json(project, "history", "churn")))
    assert [(r["payload"]["gto"], r["version"] if r["payload"]["gto"] in (
        gtoregistry.REGISTER, gtoregistry.DEREGISTER) else r["payload"].get("to"),
             r["environment"], r["author_email"], r["landed"]) for r in history] == [
        (e["event"], _served_after(e, theirs), e["stage"], e["author_email"],
         e["timestamp"].replace("+00:00", "Z")) for e in theirs]
    assert "[gto tag churn@v0.0.1]" in history[0]["change"]
    prod = [r["change"] for r in history if r["environment"] == "prod"]
    assert prod == ["imported: (none) -> v0.0.1 [gto tag churn#prod#2]",
                    "imported: v0.0.1 -> v0.1.0 [gto tag churn#prod#4]",
                    "imported: v0.1.0 -> v0.0.1 [gto tag churn#prod!#5]"]
    # After adoption, history goes on from the adoption commit.
    adopted = [r for r in _rows(api.audit_history(str(project.root), url, model="churn"))
               if not r["payload"].get("imported")]
    assert adopted[0]["landed"] == "2030-01-01T00:00:00Z"
    assert api.audit_verify(str(project.root), url) == []


def _served_after(event: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    """What the stage serves after one of GTO's events, as GTO folds them (a registration's
    own version for the others)."""
    if event["event"] in (gtoregistry.REGISTER, gtoregistry.DEREGISTER):
        return str(event["version"])
    if event["event"] == gtoregistry.ASSIGN:
        return str(event["version"])
    upto = events[:events.index(event) + 1]
    live: dict[str, bool] = {}
    for earlier in upto:
        if earlier["stage"] == event["stage"]:
            live[earlier["version"]] = earlier["event"] == gtoregistry.ASSIGN
    assigned = [e["version"] for e in upto if e["stage"] == event["stage"] and live[e["version"]]
                and e["event"] == gtoregistry.ASSIGN]
    return assigned[-1] if assigned else None


def _rows(found: listing.Listing) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(listing.formatted(found, "json"))["rows"]
    return data


def test_import_refuses_a_database_with_history_and_never_overwrites(
        gto_registry: Registry, tmp_path: Path) -> None:
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    api.import_gto(str(project.root), url, write=True, history=True)
    with pytest.raises(ReconcilerError, match="already exist"):
        api.import_gto(str(project.root), write=True)
    with pytest.raises(ReconcilerError, match="before the first apply"):
        api.import_gto(str(project.root), url, write=True, force=True, history=True)


@pytest.mark.parametrize("tag, expected", [
    ("churn@v1.2.3", ("churn", gtoregistry.REGISTER, "v1.2.3", None, None)),
    ("churn@v1.2.3-rc.1+b5!", ("churn", gtoregistry.DEREGISTER, "v1.2.3-rc.1+b5", None, None)),
    ("churn#prod", ("churn", gtoregistry.ASSIGN, None, "prod", None)),
    ("churn#prod#12", ("churn", gtoregistry.ASSIGN, None, "prod", 12)),
    ("churn#prod!#3", ("churn", gtoregistry.UNASSIGN, None, "prod", 3)),
    ("churn@deprecated", ("churn", gtoregistry.DEPRECATE, None, None, None)),
    ("nlp/models=bert@v0.1.0", ("nlp/models:bert", gtoregistry.REGISTER, "v0.1.0", None, None)),
    ("churn@1.2.3", None), ("churn@v01.2.3", None), ("churn#", None), ("v1.0.0", None),
    ("churn@created", None), ("-churn@v1.0.0", None), ("churn#prod#x", None)])
def test_tag_names_are_read_as_gto_writes_them(tag: str, expected: tuple[Any, ...] | None
                                               ) -> None:
    parsed = gtoregistry.parse_tag(tag)
    assert (tuple(parsed) if parsed else None) == expected


def test_the_command_line_prints_a_dry_run(gto_registry: Registry) -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "import", "gto", "--repo",
                           str(gto_registry.root)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--- manifests/models/churn.yaml (dry run: --write writes it)" in done.stdout
    assert "renamed: fraud_model -> fraud-model" in done.stdout
    assert "skipped 2:" in done.stdout
    assert not (gto_registry.root / "manifests").exists()


def test_params_that_are_an_alias_bomb_are_cut_short() -> None:
    from reconciler.dvc import metrics as dvcmetrics

    bomb = "a: &a {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9, q: 10}\n"
    for level in "bcdefghij":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} {{" + ", ".join(f"k{n}: *{previous}" for n in range(10)) + "}\n"
    started = time.perf_counter()
    flat = dvcmetrics.flat(dvcmetrics.data("params.yaml", bomb.encode()))
    assert len(flat) <= dvcmetrics.MAX_KEYS and time.perf_counter() - started < 5


def test_tags_a_database_cannot_hold_are_left_out_and_a_tag_of_a_tag_counts(
        gto_registry: Registry, tmp_path: Path, db_url: str) -> None:
    """A version longer than the versions column is left out and said so, on every back end
    alike (SQLite would store it, the servers refuse it); a tag whose object is another tag
    is read at the commit it peels to, as GTO reads it."""
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    long_tag = "churn@v9.9.9-" + "a" * 200
    project.repo.git.tag("-a", long_tag, "-m", "long", "HEAD")
    inner = project.repo.git.rev_parse("churn@v0.0.1")  # an annotated tag object
    project.repo.git.tag("-a", "churn#staging#9", "-m", "a tag of a tag", inner)
    imported = gtoimport.read_registry(str(project.root))
    assert any(long_tag[:80] in line and "no version" in line for line in imported.skipped)
    outer = next(a for a in imported.actions if a.tag == "churn#staging#9")
    assert outer.commit == project.repo.git.rev_parse("churn@v0.0.1^{commit}")
    api.db_upgrade(str(project.root), db_url)
    done = api.import_gto(str(project.root), db_url, write=True, history=True)
    assert done.events == 13  # the 12 of the registry and the tag of a tag


def test_a_huge_params_file_is_never_read_whole(gto_registry: Registry, tmp_path: Path) -> None:
    """A 40 MB params.yaml at a tagged commit: import asks git for its size first and leaves
    it out, instead of reading it whole to refuse it."""
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    project.write("params.yaml", "train:\n  depth: 3\n" + "# padding\n" * 4_000_000)
    project.commit("huge params", "Ada <ada@x.org>", "2024-07-01T10:00:00+00:00")
    project.repo.git.tag("-a", "churn@v0.2.0", "-m", "register")
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "reconciler",
                           "import", "gto"], cwd=project.root, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert 'version: "v0.2.0"' in done.stdout or "version: v0.2.0" in done.stdout
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < 100 * 1024, peak_kib


def test_a_gto_tag_made_after_the_import_is_no_tamper(gto_registry: Registry,
                                                      tmp_path: Path, db_url: str) -> None:
    """verify derives the imported history again from the tags that were imported, not from
    every tag git has today: a `gto assign` run after adoption is no change of the record."""
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    url = db_url
    api.db_upgrade(str(project.root), url)
    api.import_gto(str(project.root), url, write=True, history=True)
    project.commit("adopt reconciler", "Ada <ada@x.org>", "2030-01-01T00:00:00+00:00")
    reconcile.sync(str(project.root), url, "HEAD")
    assert api.audit_verify(str(project.root), url) == []
    version = project.repo.git.rev_parse("churn@v0.0.1^{commit}")
    project.repo.git.tag("-a", "churn#staging#9", "-m", "Assigning stage staging", version)
    assert api.audit_verify(str(project.root), url) == []


def test_a_gto_tag_dated_in_the_future_lands_when_the_registry_was_read(
        gto_registry: Registry, tmp_path: Path) -> None:
    """A tagger's clock set to 2100 opens no serving period in the future: the assignment
    lands when the import read the registry, its own date kept as taggedAt; verify, deriving
    the import again later, agrees."""
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    version = project.repo.git.rev_parse("churn@v0.0.1^{commit}")
    env = {**os.environ, "GIT_COMMITTER_DATE": "@4102444800 +0000",  # 2100-01-01
           "GIT_COMMITTER_NAME": "Eve", "GIT_COMMITTER_EMAIL": "eve@x.org"}
    subprocess.run(["git", "tag", "-a", "churn#staging#9", "-m", "Assigning stage staging",
                    version], cwd=project.root, env=env, check=True)
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    before = datetime.now(UTC).replace(microsecond=0)
    api.import_gto(str(project.root), url, write=True, history=True)
    project.commit("adopt reconciler", "Ada <ada@x.org>", "2030-01-01T00:00:00+00:00")
    reconcile.sync(str(project.root), url, "HEAD")
    history = [r for r in _rows(api.audit_history(str(project.root), url, model="churn",
                                                  env="staging"))
               if r["payload"].get("imported")]
    last = history[-1]
    assert last["payload"]["tag"] == "churn#staging#9"
    assert last["payload"]["taggedAt"] == "2100-01-01T00:00:00"  # UTC, as git times are
    landed = datetime.fromisoformat(last["landed"].replace("Z", "+00:00"))
    assert before <= landed <= datetime.now(UTC)
    assert api.audit_verify(str(project.root), url) == []


def test_a_stage_that_returns_to_a_version_at_one_commit_keeps_every_period(
        gto_registry: Registry, tmp_path: Path) -> None:
    """GTO's tags of one version point at one commit: prod assigned v0.1.0 there, then
    unassigned back to v0.0.1 (`gto deprecate churn v0.1.0 prod`). Both serving periods are
    recorded, so `audit at` a moment between the import and the adoption sees v0.0.1."""
    project = Registry(tmp_path / "repo", git.Repo.clone_from(gto_registry.root,
                                                              tmp_path / "repo"))
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    api.import_gto(str(project.root), url, write=True, history=True)
    project.commit("adopt reconciler", "Ada <ada@x.org>", "2030-01-01T00:00:00+00:00")
    reconcile.sync(str(project.root), url, "HEAD")
    served = _rows(api.audit_at(str(project.root), url, when="2029-01-01T00:00:00Z"))
    assert sorted((r["environment"], r["model"], r["version"]) for r in served) == [
        ("prod", "churn", "v0.0.1"), ("staging", "churn", "v0.1.0")]
    assert api.audit_verify(str(project.root), url) == []

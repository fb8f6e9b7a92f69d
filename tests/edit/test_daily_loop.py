"""The daily loop end to end, with no YAML edited by hand: `init`, a real DVC pipeline that
writes a metrics file, `register` (metrics, params and lineage from DVC), `promote` through a
pull request (`plan`, a `--no-ff` merge, `apply`), the production gate refusing a version below
it and taking one above, `rollback` to what the environment served before, and `get` of what
production serves in a fresh clone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import Registry, dvc_project
from tests.test_validate import run_cli

TRAIN = """\
import json, yaml
depth = yaml.safe_load(open("params.yaml"))["train"]["depth"]
open("models/churn.pkl", "w").write(f"weights depth={depth}\\n")
json.dump({"auc": round(0.8 + depth * 0.03, 2)}, open("metrics.json", "w"))
"""


def _ok(registry: Registry, *args: str) -> str:
    done = run_cli(registry, *args)
    assert done.returncode == 0, f"reconciler {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _train(project: Registry, depth: int) -> None:
    project.write("params.yaml", f"train:\n  depth: {depth}\n")
    project.dvc("repro", "-q")
    project.dvc("push", "-q")
    project.commit(f"train at depth {depth}")


def _merge(project: Registry, branch: str) -> None:
    """What a forge's merge button does: a --no-ff merge of the pull request's branch."""
    project.repo.git.checkout("-q", "main")
    project.repo.git.merge("--no-ff", "-q", "-m", f"Merge {branch}", branch)


def _served(project: Registry, env: str) -> str:
    text = (project.root / f"manifests/environments/{env}.yaml").read_text()
    return text.split("serves:", 1)[1] if "serves:" in text else ""


def test_register_promote_plan_apply_gate_and_rollback_without_editing_yaml(
        tmp_path: Path) -> None:
    project = dvc_project(tmp_path / "repo")
    project.dvc("remote", "add", "-q", "-d", "local", str(tmp_path / "remote"))
    _ok(project, "init", "--ci", "none")
    project.write("train.py", TRAIN)
    (project.root / "models").mkdir()
    project.write("params.yaml", "train:\n  depth: 3\n")
    project.dvc("stage", "add", "-q", "-n", "train", "-p", "train.depth", "-d", "train.py",
                "-o", "models/churn.pkl", "-M", "metrics.json", f"{sys.executable} train.py")
    _train(project, 3)  # auc 0.89: below production's gate (>= 0.9)
    database = f"sqlite:///{tmp_path / 'registry.sqlite'}"

    # A pull request: register the model and promote it to staging.
    project.repo.git.checkout("-q", "-b", "churn-0.1.0")
    registered = _ok(project, "register", "churn", "--artifact", "models/churn.pkl",
                     "--framework", "sklearn", "--commit")
    assert "register churn 0.1.0" in registered and "committed" in registered
    model = yaml.safe_load((project.root / "manifests/models/churn.yaml").read_text())
    first = model["spec"]["versions"][0]
    assert first["metrics"] == {"auc": 0.89}  # from metrics.json, as DVC records it
    assert first["params"] == {"train.depth": 3}  # as dvc.lock locked them
    assert first["digest"].startswith("md5:")
    _ok(project, "promote", "churn", "0.1.0", "--to", "staging", "--commit")
    planned = json.loads(_ok(project, "plan", "--base", "main", "--format", "json"))
    assert {(c["type"], c["environment"]) for c in planned["changes"]} >= {
        ("version.added", None), ("stage.assigned", "staging")}
    _merge(project, "churn-0.1.0")
    applied = json.loads(_ok(project, "apply", "--db", database, "--format", "json"))
    assert applied["events"]["stage.assigned"] == 1

    # Production's gate refuses 0.1.0 (auc 0.89) and writes nothing.
    before = (project.root / "manifests/environments/production.yaml").read_bytes()
    refused = run_cli(project, "promote", "churn", "0.1.0", "--to", "production")
    assert refused.returncode == 1 and "POL002" in refused.stdout + refused.stderr
    assert (project.root / "manifests/environments/production.yaml").read_bytes() == before

    # Retrain above the gate: register (the next patch, parent 0.1.0), promote, merge, apply.
    project.repo.git.checkout("-q", "-b", "churn-0.1.1")
    _train(project, 5)  # auc 0.95
    _ok(project, "register", "churn", "--commit")
    _ok(project, "promote", "churn", "0.1.1", "--to", "staging", "--commit")
    _merge(project, "churn-0.1.1")
    _ok(project, "apply", "--db", database)
    project.repo.git.checkout("-q", "-b", "release")
    promoted = _ok(project, "promote", "churn", "0.1.1", "--to", "production", "--commit")
    assert "production needs approval from @your-org/ml-leads" in promoted
    _merge(project, "release")
    _ok(project, "apply", "--db", database)
    assert '"0.1.1"' in _served(project, "production")

    # Roll staging back: by default, to what it served before on the registry branch.
    rolled = _ok(project, "rollback", "churn", "--env", "staging", "--commit")
    assert "rollback: 0.1.1 -> 0.1.0" in rolled
    assert '"0.1.0"' in _served(project, "staging")
    _ok(project, "apply", "--db", database)
    history = _ok(project, "audit", "history", "churn", "--db", database, "--format", "json")
    changes = [row["change"] for row in json.loads(history)["rows"]]
    assert "rollback: 0.1.1 -> 0.1.0" in changes
    # A batch job's fresh clone (no DVC cache) gets what production serves, byte for byte.
    fresh = tmp_path / "job"
    subprocess.run(["git", "clone", "-q", str(project.root), str(fresh)], check=True)
    job = Registry(fresh, project.repo)
    fetched = _ok(job, "get", "churn@production", "-o", "model.pkl")
    assert "get:" in fetched and not (fresh / ".dvc" / "cache").exists()
    pinned = yaml.safe_load((fresh / "manifests/models/churn.yaml").read_text())
    digest = next(v["digest"] for v in pinned["spec"]["versions"] if v["version"] == "0.1.1")
    assert "md5:" + hashlib.md5((fresh / "model.pkl").read_bytes()).hexdigest() == digest
    # Every manifest change was a command's: the commits say which.
    log = subprocess.run(["git", "-C", str(project.root), "log", "--format=%s", "main"],
                         capture_output=True, text=True, check=True).stdout
    assert "promote churn 0.1.1 to production" in log
    assert "rollback churn to 0.1.0 in staging" in log

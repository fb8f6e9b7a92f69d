"""plan on real git histories: what merging a branch does, with violations and approvals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from reconciler import api
from reconciler import plan as plan_mod
from tests.conftest import Registry, model_manifest
from tests.test_validate import retrain

GOLDEN = Path(__file__).parent / "golden"
FRAUD = "manifests/models/fraud.yaml"
PRODUCTION = "manifests/environments/production.yaml"


def _branch(registry: Registry) -> tuple[str, str]:
    """A feature branch off main: 1.1.0 retrained into staging, approvers on production."""
    registry.repo.git.checkout("-q", "-b", "feature")
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}'))
    text = (registry.root / PRODUCTION).read_text()
    registry.write(PRODUCTION, text + '  approvers: ["@org/ml-leads"]\n')
    registry.commit("1.1.0 to staging")
    return old, new


def _run(registry: Registry, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "plan", *args],
                          cwd=registry.root, capture_output=True, text=True, check=False)


def test_a_version_added_to_staging(registry: Registry) -> None:
    _branch(registry)
    planned = api.plan(str(registry.root), base="main")
    assert planned.ok and planned.changed
    types = [(e.type, e.environment) for e in planned.events]
    assert ("version.added", None) in types and ("stage.assigned", "staging") in types
    assert planned.approvals["staging"] == [] and "staging" in planned.render_diffs
    text = plan_mod.text(planned)
    assert "promotion: 1.0.0 -> 1.1.0 (auc 0.93 -> 0.93, +0)" in text
    assert "version 1.1.0 added (md5:" in text and " bytes, auc 0.93)" in text
    assert _run(registry, "--base", "main").returncode == 0
    assert _run(registry, "--base", "main", "--detailed-exitcode").returncode == 2


def test_a_promotion_that_skips_staging_fails_and_lists_approvals(registry: Registry) -> None:
    old, new = _branch(registry)
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.0.0"}\nproduction: {version: "1.1.0"}'))
    registry.commit("Straight to production")
    done = _run(registry, "--base", "main", "--format", "json", "--detailed-exitcode")
    assert done.returncode == 1
    planned = json.loads(done.stdout)
    assert planned["format_version"] == 1 and not planned["ok"]
    assert [d["code"] for d in planned["diagnostics"]] == ["POL001"]
    assert planned["approvals"]["production"] == ["@org/ml-leads"]


def test_markdown_is_bounded_and_its_mermaid_declares_every_node(registry: Registry) -> None:
    _branch(registry)
    planned = api.plan(str(registry.root), base="main")
    lineage = plan_mod.mermaid([*planned.events, *[
        plan_mod.Event("lineage.added", "Model", "fraud", "1.1.0",
                       payload={"source": "tx\"]; click x", "sourceVersion": "v1"})]])
    declared = set(re.findall(r"^  (\w+)\[", lineage, re.M))
    used = {n for line in lineage.splitlines() if "-->" in line for n in line.split(" --> ")}
    assert {n.strip() for n in used} <= declared and '"]; click' not in lineage
    many = planned._replace(events=planned.events * 2000)
    text = plan_mod.markdown(many)
    assert len(text) <= plan_mod.MARKDOWN_LIMIT and "left out" in text


def test_the_work_tree_can_be_planned(registry: Registry) -> None:
    registry.repo.git.checkout("-q", "-b", "feature")
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace('production: {version: "1.0.0"}', ""))
    planned = api.plan(str(registry.root), base="main", worktree=True)
    assert planned.head == "the work tree"
    assert [(e.type, e.environment) for e in planned.events] == [
        ("stage.removed", "production")]


def test_a_rollback_and_an_edited_version(registry: Registry) -> None:
    old, new = _branch(registry)
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.1.0"}\nproduction: {version: "1.1.0"}'))
    registry.commit("Promote 1.1.0")
    registry.repo.git.branch("-f", "main", "HEAD")  # it has landed
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}'))
    registry.commit("Roll production back")
    planned = api.plan(str(registry.root), base="main")
    assert planned.ok, planned.diagnostics  # a rollback needs no earlier stage
    assert "[production] rollback: 1.1.0 -> 1.0.0" in plan_mod.text(planned)
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace("auc: 0.93", "auc: 0.99", 1))
    registry.commit("Better numbers for 1.0.0")
    done = _run(registry, "--base", "main", "--detailed-exitcode")
    assert done.returncode == 1 and "IMM003" in done.stdout


def _normalised(text: str) -> str:
    """Commit shas and digests vary with how a test repository was made: masked."""
    text = re.sub(r"\b[0-9a-f]{40}\b", "<sha>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<sha12>", text)
    return re.sub(r"md5:[0-9a-f]{32}", "md5:<digest>", text)


def test_markdown_and_json_match_their_golden_files(registry: Registry) -> None:
    _branch(registry)
    planned = api.plan(str(registry.root), base="main")
    for name, rendered in (("plan.md", plan_mod.markdown(planned)),
                           ("plan.json", plan_mod.as_json(planned))):
        golden = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(_normalised(rendered))
        assert _normalised(rendered) == golden.read_text(), name

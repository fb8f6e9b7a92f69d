"""plan on real git histories: what merging a branch does, with violations and approvals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler import api
from reconciler import plan as planning
from reconciler.report import plan as plan_mod
from tests.conftest import Registry, environment_manifest, model_manifest
from tests.test_validate import retrain

GOLDEN = Path(__file__).parent / "golden"
FRAUD = "manifests/models/fraud.yaml"
PRODUCTION = "manifests/environments/production.yaml"
STAGING = "manifests/environments/staging.yaml"


def _serve(registry: Registry, staging: str, production: str) -> None:
    """What staging and production serve of fraud, in their files; production has approvers."""
    registry.write(STAGING, environment_manifest(STAGING, {"fraud": f'{{version: "{staging}"}}'}))
    registry.write(PRODUCTION, environment_manifest(
        PRODUCTION, {"fraud": f'{{version: "{production}"}}'},
        extra='  approvers: ["@org/ml-leads"]\n'))


def _branch(registry: Registry) -> tuple[str, str]:
    """On main, fraud's stages moved to the Environments' files and approvers on production;
    then a feature branch off main: 1.1.0 retrained into staging."""
    old = registry.digest("models/fraud.pkl")
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old)]))
    _serve(registry, "1.0.0", "1.0.0")
    registry.commit("Say what each environment serves in its file")
    registry.repo.git.checkout("-q", "-b", "feature")
    new = retrain(registry)
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)]))
    _serve(registry, "1.1.0", "1.0.0")
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
    _branch(registry)
    _serve(registry, "1.0.0", "1.1.0")
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
    _branch(registry)
    _serve(registry, "1.1.0", "1.1.0")
    registry.commit("Promote 1.1.0")
    registry.repo.git.branch("-f", "main", "HEAD")  # it has landed
    _serve(registry, "1.1.0", "1.0.0")
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
    return re.sub(r"md5(:|&#58;)[0-9a-f]{32}", r"md5\1<digest>", text)


def test_markdown_and_json_match_their_golden_files(registry: Registry) -> None:
    _branch(registry)
    planned = api.plan(str(registry.root), base="main")
    for name, rendered in (("plan.md", plan_mod.markdown(planned)),
                           ("plan.json", plan_mod.as_json(planned))):
        golden = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(_normalised(rendered))
        assert _normalised(rendered) == golden.read_text(), name


CHURN = "manifests/models/churn.yaml"
DATASET = "manifests/datasets/transactions.yaml"


def _churn(registry: Registry, stages: str = 'staging: {version: "1.0.0"}') -> str:
    """A second model, trained on the dataset: a file a change to fraud leaves alone."""
    digest = registry.digest("models/fraud.pkl")
    return (model_manifest("churn", [("1.0.0", "models/fraud.pkl", digest)], stages=stages)
            .replace("      metrics: {auc: 0.93}\n", "      metrics: {auc: 0.93}\n      trainedOn: "
                     '[{dataset: transactions, version: "2024-06"}]\n'))


def _read_everything(registry: Registry, base: str, head: str | None
                     ) -> tuple[list[Any], list[Any]]:
    """The events and diagnostics of a plan that reads every manifest at both revisions."""
    from reconciler import catalog, rules
    from reconciler.diff import diff
    from reconciler.source import open_source

    root = str(registry.root)
    current = catalog.build(open_source(root, head))
    before = catalog.build(open_source(root, base))
    found = current.diagnostics + rules.check(current, before) + current.dvc.diagnostics
    return diff(catalog.snapshot(before), catalog.snapshot(current)), found


def _stage_removed(text: str) -> str:
    return text.replace('staging: {version: "1.0.0"}', "")


SCOPED_CHANGES = {
    # A change to models alone: only their files are read in full.
    "a model's stage": lambda r: r.write(FRAUD, _stage_removed((r.root / FRAUD).read_text())),
    "a model deleted": lambda r: (r.root / FRAUD).unlink(),
    "a duplicate name": lambda r: r.write("manifests/models/copy.yaml", _churn(r)),
    # A dataset or environment changed: every model that may refer to it is read.
    "a dataset version edited": lambda r: r.write(DATASET, (r.root / DATASET).read_text()
                                                  .replace('"2024-06"', '"2024-07"')),
    "an environment's namespace": lambda r: r.write(
        "manifests/environments/staging.yaml",
        (r.root / "manifests/environments/staging.yaml").read_text().replace(
            "ml-staging", "ml-stage")),
    # Removed: models left referring to it are found by reading everything.
    "a dataset deleted": lambda r: (r.root / DATASET).unlink(),
    "a dataset renamed": lambda r: r.write(DATASET, (r.root / DATASET).read_text()
                                           .replace("name: transactions", "name: txns")),
    "an environment deleted": lambda r: (r.root / "manifests/environments/staging.yaml")
    .unlink(),
    # A DVC file may change any model's pins: everything is read.
    "a retrain": lambda r: r.write(FRAUD, (r.root / FRAUD).read_text().replace(
        "  stages:", f'    - version: "1.1.0"\n      artifact: models/fraud.pkl\n      digest: '
        f"{retrain(r)}\n  stages:")),
}


READ_EVERYTHING = {"a dataset deleted", "a dataset renamed", "an environment deleted",
                   "a retrain", "a duplicate name"}


@pytest.mark.parametrize("change", sorted(SCOPED_CHANGES))
@pytest.mark.parametrize("worktree", [False, True], ids=["commit", "worktree"])
def test_a_plan_that_reads_only_the_change_finds_what_reading_everything_finds(
        registry: Registry, change: str, worktree: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.write(CHURN, _churn(registry))
    registry.commit("churn 1.0.0")
    registry.repo.git.checkout("-q", "-b", "feature")
    SCOPED_CHANGES[change](registry)
    if not worktree:
        registry.commit(change)
    read_everything = []
    full_catalogs = planning.full_catalogs
    monkeypatch.setattr(planning, "full_catalogs",
                        lambda *a: read_everything.append(1) or full_catalogs(*a))
    planned = api.plan(str(registry.root), base="main", worktree=worktree)
    assert bool(read_everything) == (change in READ_EVERYTHING)
    events, found = _read_everything(registry, "main", None if worktree else "HEAD")
    assert planned.events == events
    assert events or change == "a duplicate name"  # the first definition still wins
    changed = {d.path for d in planned.diagnostics}
    # Errors in files the change left alone are not this change's; the rest are all found.
    assert set(planned.diagnostics) <= set(found)
    assert {d for d in found if d.path in changed or d.code.startswith(("REF", "NAM"))} <= set(
        planned.diagnostics)


def test_an_untracked_manifest_is_part_of_a_work_tree_plan(registry: Registry) -> None:
    registry.repo.git.checkout("-q", "-b", "feature")
    registry.write(CHURN, _churn(registry, stages='production: {version: "1.0.0"}'))
    planned = api.plan(str(registry.root), base="main", worktree=True)
    assert ("model.created", "churn") in [(e.type, e.name) for e in planned.events]
    assert [d.code for d in planned.diagnostics] == ["POL001"]  # never in staging
    assert "production" in planned.render_diffs


def _pointer(md5: str) -> str:
    """A .dvc file as `dvc add` writes it for one output."""
    return f"outs:\n- md5: {md5}\n  size: 2048\n  hash: md5\n  path: weights.pkl\n"


def test_a_pull_request_touching_50_models_stays_bounded_and_useful(registry: Registry) -> None:
    digests = [f"{index:02d}{'ab' * 15}" for index in range(60)]
    for index, md5 in enumerate(digests):
        registry.write(f"models/m{index:02d}/weights.pkl.dvc", _pointer(md5))
        registry.write(f"manifests/models/m{index:02d}.yaml", model_manifest(
            f"model-{index:02d}", [("1.0.0", f"models/m{index:02d}/weights.pkl", f"md5:{md5}")],
            stages='staging: {version: "1.0.0"}'))
    registry.commit("60 models")
    registry.repo.git.checkout("-q", "-b", "feature")
    for index in range(50):
        path = registry.root / f"manifests/models/m{index:02d}.yaml"
        path.write_text(path.read_text().replace(
            'staging: {version: "1.0.0"}',
            'staging: {version: "1.0.0"}\n    production: {version: "1.0.0"}'))
    registry.commit("50 models to production")
    planned = api.plan(str(registry.root), base="main")
    assert planned.ok, planned.diagnostics
    promoted = {e.name for e in planned.events if e.environment == "production"}
    assert promoted == {f"model-{index:02d}" for index in range(50)}
    text = plan_mod.markdown(planned)
    assert len(text) <= plan_mod.MARKDOWN_LIMIT
    assert "50 changes to 50 models" in text.splitlines()[2]
    table = text[text.index("#### production"):]
    assert all(f"| model-{index:02d} |" in table for index in range(50))  # every row is kept
    assert planned.render_diffs["production"] and len(planned.render_diffs["production"]) == 50
    many = planned._replace(events=planned.events * 40)  # 2,000 rows: the table itself is cut
    cut = plan_mod.markdown(many)
    assert len(cut) <= plan_mod.MARKDOWN_LIMIT and "more rows left out" in cut
    kept = cut.count("\n| model-")
    assert kept > 1000 and f"{2000 - kept} more rows left out" in cut  # the room is used
    assert json.loads(plan_mod.as_json(planned))["changes"].__len__() == 50


def test_values_from_the_pull_request_are_text_in_every_format(registry: Registry) -> None:
    """An approver holding a newline, a metric name holding a mention, a link and an image: no
    workflow command at a line start, no Markdown, strict JSON."""
    registry.repo.git.checkout("-q", "-b", "hostile")
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.1.0"}').replace(
        "metrics: {auc: 0.93}",
        'metrics: {auc: 0.93, "@org/all ![x](https://e.example/p.png) [a](https://e.example)"'
        ": 1}"))
    text = (registry.root / PRODUCTION).read_text()
    registry.write(PRODUCTION, text + '  approvers: ["@org/leads\\n::error ::forged\\n'
                                      '::add-mask::x"]\n')
    registry.commit("hostile values")
    for output in ("text", "github"):
        done = _run(registry, "--base", "main", "--format", output)
        lines = done.stdout.splitlines()
        assert not any(line.startswith("::") and "forged" in line for line in lines), output
        assert not any(line.startswith("::add-mask::") for line in lines), output
    markdown = _run(registry, "--base", "main", "--format", "markdown").stdout
    assert "@org" not in markdown and "](" not in markdown and "![" not in markdown
    assert "https://" not in markdown and "<" not in markdown.replace("<details>", "").replace(
        "</details>", "").replace("<summary>", "").replace("</summary>", "")
    done = _run(registry, "--base", "main", "--format", "json")

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    document = json.loads(done.stdout, parse_constant=refuse)
    assert any(c["type"] == "version.added" for c in document["changes"])


def test_json_output_is_strict_whatever_a_value_holds() -> None:
    """What no manifest may hold (NaN) can still come from history: a dvc.lock param."""
    from reconciler.report import jsonout

    text = jsonout.dumps({"params": {"lr": float("nan"), "top": [float("inf"), -float("inf")]}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "params": {"lr": "NaN", "top": ["Infinity", "-Infinity"]}}

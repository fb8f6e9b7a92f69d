"""What each environment serves, said in its own file: the rules, the forge's approvals for
every kind of change, `reconciler migrate`, and apply and the audit across the move."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from reconciler import api, catalog, reconcile, rules
from reconciler.diagnostics import Diagnostic
from tests.conftest import Registry, dvc_project, environment_manifest, model_manifest
from tests.test_apply import _rows
from tests.test_rules import DIGEST, MemorySource
from tests.test_validate import retrain

STAGING = "manifests/environments/staging.yaml"
PRODUCTION = "manifests/environments/production.yaml"
FRAUD = "manifests/models/fraud-detector.yaml"
LEGACY_FRAUD = "manifests/models/fraud.yaml"  # the conftest template's model


# ---- rules: where a finding about a stage points, and what the layout allows


def _env(name: str, extra: str = "") -> tuple[str, str]:
    return (f"manifests/environments/{name}.yaml",
            f"apiVersion: reconciler/v1\nkind: Environment\nmetadata: {{name: {name}}}\n"
            f"spec:\n  namespace: ml-{name}\n  target: kserve\n{extra}")


def _found(files: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    current = catalog.build(MemorySource(dict(files)))
    found: list[Diagnostic] = current.diagnostics + rules.check(current)
    return sorted((d.code, d.path, d.line) for d in found)


MODEL = ("manifests/models/fraud.yaml",
         "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: fraud}\nspec:\n"
         "  framework: sklearn\n  versions:\n"
         f'    - {{version: "1.0.0", artifact: m.pkl, digest: {DIGEST}, metrics: {{auc: 0.95}}}}\n')
DVC = ("m.pkl.dvc", f"outs:\n- md5: {DIGEST[4:]}\n  size: 3\n  hash: md5\n  path: m.pkl\n")


def test_a_stage_said_in_the_environment_is_checked_there() -> None:
    served = _env("staging", '  serves:\n    fraud: {version: "1.0.0"}\n')
    assert _found([served, MODEL, DVC]) == []
    wrong = _env("staging", '  serves:\n    fraud:\n      version: "9.9.9"\n'
                            '      replicas: {min: 3, max: 1}\n')
    assert _found([wrong, MODEL, DVC]) == [
        ("REF005", "manifests/environments/staging.yaml", 9),
        ("STG002", "manifests/environments/staging.yaml", 10)]


def test_an_environment_serving_an_unknown_model_is_refused() -> None:
    served = _env("staging", '  serves:\n    fraud: {version: "1.0.0"}\n    frod: '
                             '{version: "1.0.0"}\n')
    assert _found([served, MODEL, DVC]) == [("REF008", "manifests/environments/staging.yaml", 9)]


def test_a_stage_in_the_models_file_is_refused_where_approvers_would_not_see_it() -> None:
    legacy = (MODEL[0], MODEL[1] + '  stages:\n    production: {version: "1.0.0"}\n')
    approved = _env("production", '  approvers: ["@org/leads"]\n')
    assert _found([approved, legacy, DVC]) == [("LAY001", "manifests/models/fraud.yaml", 9)]
    # An environment nobody must approve may still be said the earlier way (history has it).
    assert _found([_env("production"), legacy, DVC]) == []
    said_twice = _env("production", '  serves:\n    fraud: {version: "1.0.0"}\n')
    assert _found([said_twice, legacy, DVC]) == [("LAY003", "manifests/models/fraud.yaml", 9)]


# ---- the forge: for each kind of change, the owners CODEOWNERS gives the files it touches


def codeowners_of(text: str, path: str) -> set[str]:
    """The owners GitHub and GitLab read for path: the last matching line wins."""
    owners: set[str] = set()
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, *who = line.split()
        if _matches(pattern, path):
            owners = set(who)
    return owners


def _matches(pattern: str, path: str) -> bool:
    """gitignore-style: a leading / anchors at the root, a trailing / matches a folder."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        return path.startswith(pattern) if anchored else f"/{pattern}" in f"/{path}"
    if anchored:
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


def test_the_codeowners_reader_lets_the_last_match_win() -> None:
    text = "* @org/all\n/manifests/ @org/ml\n/manifests/environments/production.yaml @org/leads\n"
    assert codeowners_of(text, "manifests/environments/production.yaml") == {"@org/leads"}
    assert codeowners_of(text, "manifests/models/fraud.yaml") == {"@org/ml"}
    assert codeowners_of(text, "README.md") == {"@org/all"}


def _stage(version: str, extra: str = "") -> str:
    return f'{{version: "{version}"{extra}}}'


def _serves(registry: Registry, path: str, entries: dict[str, str]) -> None:
    """Set the `serves` of an Environment that init wrote (its commented example replaced)."""
    text = (registry.root / path).read_text()
    for cut in ("  # What ", "  serves:\n"):  # init's comment and example, or a former serves
        text = text.split(cut, 1)[0]
    lines = "".join(f"    {model}: {stage}\n" for model, stage in entries.items())
    registry.write(path, text + ("  serves:\n" + lines if lines else ""))


def _versions(registry: Registry, count: int, deprecated: str | None = None) -> str:
    text = model_manifest("fraud-detector", [
        (f"1.{i}.0", f"models/fraud-{i}.pkl", registry.digest(f"models/fraud-{i}.pkl"))
        for i in range(count)])
    if deprecated:
        text = text.replace(f'version: "{deprecated}"\n',
                            f'version: "{deprecated}"\n      deprecated: true\n')
    return text


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """`reconciler init`, then fraud-detector 1.0.0-1.2.0: 1.2.0 in staging, 1.1.0 in
    production (both served staging first, on main)."""
    project = dvc_project(tmp_path_factory.mktemp("governed") / "repo")
    api.init(str(project.root), ci="github")
    for i in range(4):
        project.write(f"models/fraud-{i}.pkl", f"weights {i}\n".encode())
        project.dvc("add", "-q", f"models/fraud-{i}.pkl")
    project.write(FRAUD, _versions(project, 3))
    _serves(project, STAGING, {"fraud-detector": _stage("1.1.0")})
    project.commit("fraud-detector 1.1.0 in staging")
    _serves(project, PRODUCTION, {"fraud-detector": _stage("1.1.0")})
    project.commit("fraud-detector 1.1.0 in production")
    _serves(project, STAGING, {"fraud-detector": _stage("1.2.0")})
    project.commit("fraud-detector 1.2.0 in staging")
    assert api.validate(str(project.root)).diagnostics == []
    yield project
    project.repo.close()


def _retire(registry: Registry) -> None:
    """Retiring a model: no environment serves it, and its file is deleted."""
    _serves(registry, STAGING, {})
    _serves(registry, PRODUCTION, {})
    (registry.root / FRAUD).unlink()


LEADS = {"@your-org/ml-leads"}
Change = Callable[[Registry], None]
CHANGES: dict[str, tuple[Change, set[str]]] = {
    "register a version": (lambda r: r.write(FRAUD, _versions(r, 4)), set()),
    "deprecate a version": (lambda r: r.write(FRAUD, _versions(r, 3, deprecated="1.0.0")),
                            set()),
    "promote to staging": (lambda r: _serves(r, STAGING, {"fraud-detector": _stage("1.0.0")}),
                           set()),
    "promote to production": (
        lambda r: _serves(r, PRODUCTION, {"fraud-detector": _stage("1.2.0")}), LEADS),
    "roll back production": (
        lambda r: _serves(r, PRODUCTION, {"fraud-detector": _stage("1.0.0")}), LEADS),
    "canary in production": (
        lambda r: _serves(r, PRODUCTION, {"fraud-detector": _stage(
            "1.1.0", ', canary: {version: "1.2.0", traffic: 10}')}), LEADS),
    "resize in production": (
        lambda r: _serves(r, PRODUCTION, {"fraud-detector": _stage(
            "1.1.0", ", replicas: {min: 2, max: 4}")}), LEADS),
    "retire the model": (lambda r: _retire(r), LEADS),
    "edit production's policy": (
        lambda r: r.write(PRODUCTION, (r.root / PRODUCTION).read_text().replace(
            '">= 0.9"', '">= 0.92"')), LEADS),
    "edit production's approvers": (
        lambda r: r.write(PRODUCTION, (r.root / PRODUCTION).read_text().replace(
            '["@your-org/ml-leads"]', '["@your-org/ml-leads", "@your-org/sre"]')), LEADS),
}


@pytest.mark.parametrize("kind", CHANGES)
def test_the_forge_asks_exactly_the_approvers_plan_lists(governed: Registry, kind: str) -> None:
    change, expected = CHANGES[kind]
    governed.repo.git.checkout("-q", "-f", "main")
    governed.repo.git.checkout("-q", "-b", kind.replace(" ", "-").replace("'", ""))
    change(governed)
    governed.commit(kind)
    touched = governed.repo.git.diff("--name-only", "main...HEAD").splitlines()
    codeowners = (governed.root / ".github/CODEOWNERS").read_text()
    forge = set().union(*(codeowners_of(codeowners, path) for path in touched))
    planned = api.plan(str(governed.root), base="main")
    listed = {who for names in planned.approvals.values() for who in names}
    assert forge == listed == expected, (touched, planned.approvals)
    assert not [d for d in planned.diagnostics if d.code.startswith("LAY")]


# ---- migrate: the earlier layout moved, with no change of serving in the record


def test_migrate_moves_every_stage_and_nothing_is_recorded_at_the_move(
        registry: Registry, db_url: str) -> None:
    from tests.test_apply import build_history

    build_history(registry)
    assert api.render(str(registry.root)).ok
    registry.commit("Render")
    api.db_upgrade(str(registry.root), db_url)
    reconcile.sync(str(registry.root), db_url, "HEAD")
    before = _rows(db_url, "SELECT model, environment, role, version, traffic, valid_from "
                           "FROM stage_assignments ORDER BY id")
    done = subprocess.run([sys.executable, "-m", "reconciler", "migrate"], cwd=registry.root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "moved 2 stages" in done.stdout
    fraud = (registry.root / "manifests/models/fraud.yaml").read_text()
    assert "stages:" not in fraud and "deprecated: true" in fraud
    assert "    fraud:\n      version: \"1.0.0\"\n      replicas: {min: 2, max: 4}\n" in (
        registry.root / PRODUCTION).read_text()
    assert api.validate(str(registry.root)).diagnostics == []
    assert api.render(str(registry.root), check=True).ok  # the same configs
    moved = registry.commit("Move what each environment serves into its file")
    result = reconcile.sync(str(registry.root), db_url, "HEAD")
    assert result.commits == 1 and not result.events
    assert _rows(db_url, "SELECT event_type FROM audit_events WHERE commit_sha = :sha",
                 sha=moved) == []
    assert _rows(db_url, "SELECT model, environment, role, version, traffic, valid_from "
                         "FROM stage_assignments ORDER BY id") == before
    # After the move, a promotion said in the Environment's file is recorded as before.
    text = (registry.root / PRODUCTION).read_text()
    registry.write(PRODUCTION, text.replace('version: "1.0.0"', 'version: "1.1.0"'))
    promoted = registry.commit("Promote fraud 1.1.0 again")
    reconcile.sync(str(registry.root), db_url, "HEAD")
    listing = api.audit_history(str(registry.root), db_url, model="fraud", env="production")
    commits = [row["commit"] for row in listing.data]
    # The whole history reads on across the move: the first assignment to the last promotion.
    assert commits[0] == registry.repo.git.rev_list("--max-parents=0", "HEAD")
    assert commits[-1] == promoted and moved not in commits and len(commits) >= 5
    assert [tuple(r) for r in _rows(
        db_url, "SELECT event_type, version FROM audit_events WHERE commit_sha = :sha "
                "AND environment = 'production'", sha=promoted)] == [("stage.assigned", "1.1.0")]
    again = subprocess.run([sys.executable, "-m", "reconciler", "migrate"], cwd=registry.root,
                           capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "nothing to move" in again.stdout


def test_migrate_writes_nothing_when_a_file_cannot_be_edited(registry: Registry) -> None:
    flow = (registry.root / PRODUCTION).read_text().replace(
        "spec:\n  namespace: ml-prod\n  target: kserve\n",
        "spec: {namespace: ml-prod, target: kserve,\n")
    flow = flow.replace("  promotion:\n    from: staging\n    requireMetrics: {auc: \">= 0.9\"}\n",
                        "  promotion: {from: staging, requireMetrics: {auc: \">= 0.9\"}}}\n")
    registry.write(PRODUCTION, flow)
    originals = {p: p.read_bytes() for p in (registry.root / "manifests").rglob("*.yaml")}
    done = api.migrate(str(registry.root))
    assert [d.code for d in done.diagnostics] == ["LAY004"]
    assert done.diagnostics[0].path == PRODUCTION and not done.changed
    assert {p: p.read_bytes() for p in originals} == originals


# ---- promotion.from: served in the required environment at some moment of the registry branch


def _retrained(registry: Registry, staging: str, production: str, *,
               newest_first: bool = False) -> tuple[str, str]:
    """fraud retrained: 1.0.0 and 1.1.0 (listed oldest first, or newest first), served as
    said in the Environments' files; the two digests."""
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    listed = [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)]
    registry.write(LEGACY_FRAUD, model_manifest("fraud", listed[::-1] if newest_first
                                                else listed))
    registry.write(STAGING, environment_manifest(STAGING, {"fraud": _stage(staging)}))
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage(production)}))
    return old, new


def _promotion_history(registry: Registry) -> tuple[str, str]:
    """On main: 1.1.0 retrained and put in staging, then staging rolled back to 1.0.0."""
    old, new = _retrained(registry, "1.1.0", "1.0.0")
    registry.commit("fraud 1.1.0 in staging")
    registry.write(STAGING, environment_manifest(STAGING, {"fraud": _stage("1.0.0")}))
    registry.commit("Roll staging back to 1.0.0")
    return old, new


def test_a_version_rolled_back_in_staging_has_served_there(registry: Registry,
                                                            db_url: str) -> None:
    _promotion_history(registry)
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage("1.1.0")}))
    assert api.validate(str(registry.root)).diagnostics == []  # pre-commit
    registry.repo.git.checkout("-q", "-b", "promote")
    registry.commit("Promote fraud 1.1.0")
    assert api.plan(str(registry.root), base="main").diagnostics == []
    registry.repo.git.checkout("-q", "main")
    registry.repo.git.merge("-q", "--no-ff", "promote", "-m", "Merge promote")
    api.db_upgrade(str(registry.root), db_url)
    reconcile.sync(str(registry.root), db_url, "HEAD")
    # (The template's first commit serves 1.0.0 in both at once: that one is recorded.)
    assert _rows(db_url, "SELECT event_type FROM audit_events "
                         "WHERE event_type = 'policy.violated' AND version = '1.1.0'") == []


def test_a_version_staged_only_on_the_pull_requests_branch_has_not(registry: Registry,
                                                                    db_url: str) -> None:
    first, second = _promotion_history(registry)
    third = retrain(registry, b"fraud weights v3\n")
    registry.repo.git.checkout("-q", "-b", "straight")
    registry.write(LEGACY_FRAUD, model_manifest("fraud", [
        ("1.0.0", "models/fraud.pkl", first), ("1.1.0", "models/fraud.pkl", second),
        ("1.2.0", "models/fraud.pkl", third)]))
    registry.write(STAGING, environment_manifest(STAGING, {"fraud": _stage("1.2.0")}))
    registry.commit("1.2.0 in staging, on the branch only")
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage("1.2.0")}))
    # pre-commit on the branch: the base (HEAD) serves 1.2.0 in staging, main never did.
    found = api.validate(str(registry.root)).diagnostics
    assert [(d.code, d.path) for d in found] == [("POL001", PRODUCTION)]
    assert "never served in staging on main's first-parent history" in found[0].message
    registry.commit("1.2.0 to production")
    assert [d.code for d in api.plan(str(registry.root), base="main").diagnostics] == ["POL001"]
    registry.repo.git.checkout("-q", "main")
    registry.repo.git.merge("-q", "--no-ff", "straight", "-m", "Merge straight")
    api.db_upgrade(str(registry.root), db_url)
    reconcile.sync(str(registry.root), db_url, "HEAD")
    recorded = _rows(db_url, "SELECT version, environment FROM audit_events "
                             "WHERE event_type = 'policy.violated' AND version <> '1.0.0'")
    assert [tuple(row) for row in recorded] == [("1.2.0", "production")]


def test_listing_a_new_version_first_does_not_make_it_a_rollback(registry: Registry,
                                                                  db_url: str) -> None:
    """A rollback is a return to a version this environment served before on the registry
    branch, whatever order the versions are listed in."""
    _retrained(registry, "1.0.0", "1.1.0", newest_first=True)
    found = api.validate(str(registry.root)).diagnostics
    assert [(d.code, d.path) for d in found] == [("POL001", PRODUCTION)]
    registry.commit("1.1.0 straight to production, listed first")
    api.db_upgrade(str(registry.root), db_url)
    reconcile.sync(str(registry.root), db_url, "HEAD")
    head = registry.repo.head.commit.hexsha
    rows = _rows(db_url, "SELECT event_type, payload FROM audit_events WHERE commit_sha = :sha "
                         "AND environment = 'production'", sha=head)
    kinds = {row[0]: row[1] if isinstance(row[1], dict) else json.loads(row[1]) for row in rows}
    assert kinds["stage.assigned"]["kind"] == "promotion"
    assert kinds["policy.violated"]["rule"] == "POL001"
    # Back to 1.0.0, which production served before: a rollback, exempt from staging.
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage("1.0.0")}))
    assert api.validate(str(registry.root)).diagnostics == []


def test_what_a_file_git_would_quote_said_in_history_counts(registry: Registry) -> None:
    """History is read by what git stores: an Environment's file named with a quote and a tab
    says what it served as any other does (listed quoted, it was lost, and a promotion from
    it refused)."""
    odd = 'manifests/environments/staging "main"\t.yaml'
    _retrained(registry, "1.1.0", "1.0.0")
    (registry.root / STAGING).rename(registry.root / odd)
    registry.commit("fraud 1.1.0 in staging, said in a file with an odd name")
    registry.write(odd, environment_manifest(STAGING, {"fraud": _stage("1.0.0")}))
    registry.commit("Roll staging back to 1.0.0")
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage("1.1.0")}))
    assert api.validate(str(registry.root)).diagnostics == []


# ---- a change checked file by file (the hook, apply's replay, an action) is compared with
# everything it reads as it was at the base: what an Environment serves of a model is judged
# only when it changes, whichever file the change touched


def _gate_raised_after_serving(registry: Registry) -> None:
    """fraud 1.0.0 (auc 0.93) serving in both environments, said in their files; then
    production's gate raised to 0.95, which does not judge again what serves there already."""
    digest = registry.digest("models/fraud.pkl")
    registry.write(LEGACY_FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", digest)]))
    registry.write(STAGING, environment_manifest(STAGING, {"fraud": _stage("1.0.0")}))
    registry.write(PRODUCTION, environment_manifest(PRODUCTION, {"fraud": _stage("1.0.0")}))
    registry.commit("Serve fraud from the Environments' files")
    registry.write(PRODUCTION, (registry.root / PRODUCTION).read_text().replace(
        '">= 0.9"', '">= 0.95"'))
    assert api.validate(str(registry.root)).diagnostics == []
    registry.commit("Raise production's gate")


def test_a_file_checked_alone_is_judged_as_the_whole_repository_is(registry: Registry) -> None:
    _gate_raised_after_serving(registry)
    for path in (LEGACY_FRAUD, STAGING, PRODUCTION):
        with open(registry.root / path, "a", encoding="utf-8") as handle:
            handle.write("# reviewed\n")
        # What pre-commit runs (the changed file alone) finds what a whole run finds: nothing.
        assert api.validate(str(registry.root)).diagnostics == []
        assert api.validate(str(registry.root), [path]).diagnostics == [], path
        registry.repo.git.checkout("--", path)


def test_apply_records_no_violation_for_what_a_change_left_serving(registry: Registry,
                                                                   db_url: str) -> None:
    _gate_raised_after_serving(registry)
    text = (registry.root / LEGACY_FRAUD).read_text()
    registry.write(LEGACY_FRAUD, text.replace("metrics:", "deprecated: true\n      metrics:"))
    assert api.validate(str(registry.root)).diagnostics == []
    assert api.validate(str(registry.root), [LEGACY_FRAUD]).diagnostics == []
    registry.commit("Deprecate fraud 1.0.0, which still serves")
    api.db_upgrade(str(registry.root), db_url)
    api.apply(str(registry.root), db_url)
    # (The template's first commit serves 1.0.0 in both at once: that one is recorded.)
    first = registry.repo.git.rev_list("--max-parents=0", "HEAD")
    assert _rows(db_url, "SELECT commit_sha, payload FROM audit_events "
                         "WHERE event_type = 'policy.violated' AND commit_sha <> :first",
                 first=first) == []

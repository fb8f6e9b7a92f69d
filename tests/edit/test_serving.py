"""promote and rollback: the stage edited where it is said, comments and layout kept, checked
before anything is written, and hostile names answered with one clear line."""

from __future__ import annotations

import pytest

from reconciler import api
from reconciler.diagnostics import ReconcilerError
from tests.conftest import ENVIRONMENTS, Registry, model_manifest
from tests.test_validate import retrain, run_cli

STAGING = "manifests/environments/staging.yaml"
PRODUCTION = "manifests/environments/production.yaml"
FRAUD = "manifests/models/fraud.yaml"


def _two_versions(registry: Registry, serves_staging: str = '{version: "1.0.0"}') -> None:
    """fraud 1.0.0 and 1.1.0 (retrained, auc 0.93), staging saying what it serves itself."""
    first = registry.digest("models/fraud.pkl")
    second = retrain(registry)
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", first),
                                                   ("1.1.0", "models/fraud.pkl", second)]))
    registry.write(STAGING, ENVIRONMENTS[STAGING] + f"""\
  # What staging serves: a promotion edits it here.
  serves:
    fraud:   {serves_staging}   # keep this comment
""")
    registry.write(PRODUCTION, ENVIRONMENTS[PRODUCTION] + """\
  serves:
    fraud:
      version: "1.0.0"      # the stable one
      replicas: {min: 2, max: 4}
""")
    registry.commit("fraud 1.1.0; environments say what they serve")


def test_a_promotion_edits_only_the_version_and_keeps_everything_else(registry: Registry) -> None:
    _two_versions(registry)
    before = (registry.root / PRODUCTION).read_text()
    registry.repo.git.checkout("-q", "-b", "try")
    api.promote(str(registry.root), "fraud", "1.1.0", to="staging", commit=True)
    registry.repo.git.checkout("-q", "main")
    registry.repo.git.merge("--no-ff", "-q", "-m", "merge", "try")
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="production")
    assert change.ok and change.written and change.files == [PRODUCTION]
    after = (registry.root / PRODUCTION).read_text()
    assert after == before.replace('version: "1.0.0"      # the stable one',
                                   'version: "1.1.0"      # the stable one')
    assert [(e.type, e.payload.get("kind")) for e in change.events] == [
        ("stage.assigned", "promotion")]


def test_a_flow_stage_is_written_again_with_its_other_keys_as_they_were(
        registry: Registry) -> None:
    _two_versions(registry, '{version: "1.0.0", replicas: {min: 1, max: 3}}')
    api.promote(str(registry.root), "fraud", "1.1.0", to="staging")
    text = (registry.root / STAGING).read_text()
    assert 'fraud:   {version: "1.1.0", replicas: {min: 1, max: 3}}   # keep this comment' in text
    assert "# What staging serves: a promotion edits it here." in text


def test_a_canary_is_added_moved_and_ended_by_promoting_its_version(registry: Registry) -> None:
    _two_versions(registry)
    root = str(registry.root)
    api.promote(root, "fraud", "1.1.0", to="staging", canary=10)
    assert 'fraud:   {version: "1.0.0", canary: {version: "1.1.0", traffic: 10}}' in (
        registry.root / STAGING).read_text()
    api.promote(root, "fraud", "1.1.0", to="staging", canary=50)
    assert "traffic: 50}}" in (registry.root / STAGING).read_text()
    change = api.promote(root, "fraud", "1.1.0", to="staging")
    assert 'fraud:   {version: "1.1.0"}   # keep this comment' in (
        registry.root / STAGING).read_text()
    assert {e.type for e in change.events} == {"stage.assigned", "canary.changed"}


def test_a_block_canary_is_replaced_whole(registry: Registry) -> None:
    _two_versions(registry)
    root = str(registry.root)
    api.promote(root, "fraud", "1.1.0", to="staging", commit=True)  # production's gate: from
    api.promote(root, "fraud", "1.1.0", to="production", canary=5)
    text = (registry.root / PRODUCTION).read_text()
    assert '      canary: {version: "1.1.0", traffic: 5}\n' in text
    api.promote(root, "fraud", "1.1.0", to="production", canary=20)
    text = (registry.root / PRODUCTION).read_text()
    assert text.count("canary:") == 1 and "traffic: 20}" in text


def test_a_new_stage_goes_into_the_environments_serves(registry: Registry) -> None:
    _two_versions(registry)
    registry.write(PRODUCTION, ENVIRONMENTS[PRODUCTION] + "  # serves: nothing yet\n")
    registry.write(STAGING, ENVIRONMENTS[STAGING])
    registry.commit("serve nothing")
    api.promote(str(registry.root), "fraud", "1.0.0", to="staging")
    assert (registry.root / STAGING).read_text().endswith(
        '  serves:\n    fraud: {version: "1.0.0"}\n')


def test_a_stage_said_in_the_models_file_is_edited_there(registry: Registry) -> None:
    """The earlier layout, still read for environments without approvers."""
    first = registry.digest("models/fraud.pkl")
    second = retrain(registry)
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", first),
                                                   ("1.1.0", "models/fraud.pkl", second)],
                                         stages='staging: {version: "1.0.0"}'))
    registry.commit("fraud 1.1.0")
    text = (registry.root / FRAUD).read_text()
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="staging", dry_run=True)
    assert change.ok and not change.written and change.files == [FRAUD]
    assert (registry.root / FRAUD).read_text() == text
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="staging")
    assert change.written and 'staging: {version: "1.1.0"}' in (registry.root / FRAUD).read_text()


def test_a_promotion_the_gate_refuses_writes_nothing(registry: Registry) -> None:
    _two_versions(registry)
    before = (registry.root / PRODUCTION).read_bytes()
    done = run_cli(registry, "promote", "fraud", "1.1.0", "--to", "production")
    assert done.returncode == 1
    assert "POL001" in done.stdout and "nothing was written" in done.stderr
    assert (registry.root / PRODUCTION).read_bytes() == before


def test_commit_commits_the_edited_file_alone_with_a_message_naming_the_change(
        registry: Registry) -> None:
    _two_versions(registry)
    registry.write("notes.txt", "not part of it\n")
    registry.repo.git.add("notes.txt")
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="staging", commit=True)
    head = registry.repo.head.commit
    assert change.commit == head.hexsha
    assert head.message.strip() == "promote fraud 1.1.0 to staging"
    assert list(head.stats.files) == [STAGING]
    assert "notes.txt" in registry.repo.git.diff("--cached", "--name-only")  # left staged


def test_promoting_what_is_served_already_changes_nothing(registry: Registry) -> None:
    """As `kubectl apply` says "unchanged": no file is rewritten (not even its quotes), nothing
    is checked or committed, and the command says so."""
    _two_versions(registry, "{version: 1.0.0}")
    before = (registry.root / STAGING).read_text()
    head = registry.repo.head.commit.hexsha
    change = api.promote(str(registry.root), "fraud", "1.0.0", to="staging", commit=True)
    assert change.files == [] and not change.written and change.commit is None
    assert (registry.root / STAGING).read_text() == before
    assert registry.repo.head.commit.hexsha == head
    done = run_cli(registry, "promote", "fraud", "1.0.0", "--to", "production")
    assert done.returncode == 0
    assert done.stdout.strip() == ("promote fraud 1.0.0 to production: nothing to change; "
                                   "nothing was written")


def test_rollback_returns_to_what_the_environment_served_before(registry: Registry) -> None:
    _two_versions(registry)
    root = str(registry.root)
    api.promote(root, "fraud", "1.1.0", to="staging", commit=True)
    change = api.rollback(root, "fraud", env="staging", commit=True)
    assert change.message == "rollback fraud to 1.0.0 in staging"
    assert [e.payload.get("kind") for e in change.events] == ["rollback"]
    with pytest.raises(ReconcilerError, match="served no other version"):
        api.rollback(root, "fraud", env="production")


def _churn_served_wrongly(registry: Registry) -> None:
    """Another model, churn (committed), whose staging entry names a version it does not
    have (not committed yet)."""
    _two_versions(registry)
    registry.write("manifests/models/churn.yaml", model_manifest(
        "churn", [("0.1.0", "models/fraud.pkl", registry.digest("models/fraud.pkl"))]))
    registry.commit("churn 0.1.0")
    registry.write(STAGING, (registry.root / STAGING).read_text()
                   + '    churn: {version: "9.9.9"}\n')


def test_an_action_is_not_refused_for_another_models_landed_mistake(registry: Registry) -> None:
    """What landed wrong for churn (pushed past the hook) is churn's to fix: rolling fraud
    back must still work, and reads only fraud and what the Environments say of it."""
    _churn_served_wrongly(registry)
    registry.commit("churn 9.9.9 in staging (a typo)")
    assert [d.code for d in api.validate(str(registry.root)).diagnostics] == ["REF005"]
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="staging", commit=True)
    assert change.ok and change.written and change.diagnostics == []


def test_a_file_edited_by_hand_too_is_checked_whole(registry: Registry) -> None:
    """The action would write (and commit) the hand edit with its own: so it is checked."""
    _churn_served_wrongly(registry)
    edited = (registry.root / STAGING).read_text()
    head = registry.repo.head.commit.hexsha
    change = api.promote(str(registry.root), "fraud", "1.1.0", to="staging", commit=True)
    assert [(d.path, d.code) for d in change.diagnostics] == [(STAGING, "REF005")]
    assert not change.written and registry.repo.head.commit.hexsha == head
    assert (registry.root / STAGING).read_text() == edited
    assert [e.name for e in change.events] == ["fraud"]  # churn's entry: no change of this one's


def test_a_models_file_that_does_not_load_is_named_with_why(registry: Registry) -> None:
    _two_versions(registry)
    registry.write(FRAUD, (registry.root / FRAUD).read_text() + "  stages: [\n")
    before = (registry.root / STAGING).read_bytes()
    done = run_cli(registry, "promote", "fraud", "1.1.0", "--to", "staging")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"reconciler: error: {FRAUD}:")
    assert "YML001" in done.stderr and "the file of 'fraud' does not load" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert (registry.root / STAGING).read_bytes() == before


@pytest.mark.parametrize(("args", "message"), [
    (("no-such", "1.0.0", "staging"), "no model 'no-such' (known: fraud)"),
    (("fraud", "9.9.9", "staging"), "has no version '9.9.9'"),
    (("fraud", "1.0.0", "mars"), "no environment 'mars' (known: production, staging)"),
    (("fra\x1bud\n", "1.0.0", "staging"), r"no model 'fra\x1bud\n'"),
    (("fraud", '1.0.0"\n  evil: true', "staging"), "has no version '1.0.0\"\\n  evil: true'"),
])
def test_a_name_no_manifest_holds_is_one_line_and_nothing_is_written(
        registry: Registry, args: tuple[str, str, str], message: str) -> None:
    _two_versions(registry)
    done = run_cli(registry, "promote", args[0], args[1], "--to", args[2])
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not registry.repo.is_dirty()

"""policy on plain data: the one definition of rollback, promotion gates and immutability that
both the validator and the audit trail use."""

from __future__ import annotations

import pytest

from reconciler import policy, spec

ORDER = ["1.0.0", "1.1.0", "2.0.0"]


@pytest.mark.parametrize(("before", "after", "kind"), [
    (None, "1.0.0", "initial"),
    ("1.0.0", "1.1.0", "promotion"),
    ("2.0.0", "1.0.0", "rollback"),
    ("1.1.0", "1.1.0", "promotion"),
    ("gone", "1.0.0", "promotion"),  # from a version no longer listed: not provably back
])
def test_assignment_kind(before: str | None, after: str, kind: str) -> None:
    assert policy.assignment_kind(ORDER, before, after) == kind


def test_the_base_settles_only_a_version_the_required_stage_serves() -> None:
    """Anything else (a rollback included: the order of versions proves nothing) is left to
    the registry branch's history (tests/test_serving.py)."""
    assert policy.skips_required_stage("staging", {"dev"})
    assert not policy.skips_required_stage("staging", {"staging"})
    assert policy.skips_required_stage("staging", set())
    assert not policy.skips_required_stage(None, set())


@pytest.mark.parametrize(("expression", "value", "met"), [
    (">= 0.9", 0.9, True), ("> 0.9", 0.9, False), ("<0.2", 0.1, True), ("== 1e-3", 0.001, True),
    ("!= 0", 0.0, False), (" <= -1 ", -2.0, True),
])
def test_requirements(expression: str, value: float, met: bool) -> None:
    assert (policy.unmet({"m": expression}, {"m": value}) == []) is met


def test_missing_metrics_and_unreadable_requirements() -> None:
    (failure,) = policy.unmet({"auc": ">= 0.9", "bad": "about 1"}, {})
    assert failure == (policy.Requirement("auc", ">=", 0.9), None)
    assert policy.requirement("bad", "about 1") is None


def _version(**fields: object) -> spec.ModelVersion:
    return spec.ModelVersion.model_validate({"version": "1.0.0", "artifact": "m.pkl", **fields})


def test_gates_judge_what_a_version_landed_with() -> None:
    landed = [_version(metrics={"auc": 0.5})]
    now = [_version(metrics={"auc": 0.99}), _version(version="2.0.0", metrics={"auc": 0.7})]
    assert policy.landed_metrics(landed, now) == {"1.0.0": {"auc": 0.5}, "2.0.0": {"auc": 0.7}}


def test_content_changes_name_every_field_of_what_a_version_is() -> None:
    before = _version(metrics={"auc": 0.5}, description="old words", deprecated=False)
    after = _version(metrics={"auc": 0.9}, params={"depth": 3}, description="new words",
                     deprecated=True, parent="0.9.0")
    assert policy.content_changes(before, after) == {
        "metrics": {"from": {"auc": 0.5}, "to": {"auc": 0.9}},
        "params": {"from": {}, "to": {"depth": 3}},
        "parent": {"from": None, "to": "0.9.0"},
    }
    assert policy.content_changes(before, before) == {}

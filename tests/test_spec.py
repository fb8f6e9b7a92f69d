"""Unit tests of the pydantic spec: pure functions of plain data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler import spec

PROJECT = Path(__file__).resolve().parent.parent

MODEL: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "kind": "Model",
    "metadata": {"name": "fraud", "owner": "risk@example.com", "labels": {"team": "risk"}},
    "spec": {
        "framework": "sklearn",
        "versions": [
            {"version": "1.2.0", "artifact": "models/f.pkl",
             "digest": "md5:d1f6e055f7f5e2827fcfae68d9b64d4c",
             "trainedOn": [{"dataset": "tx", "version": "2024-06"}],
             "metrics": {"auc": 0.931, "n": 3}, "params": {"depth": [1, {"a": None}]}},
        ],
        "stages": {"production": {"version": "1.2.0", "canary": {"version": "1.2.0",
                                                                   "traffic": 10},
                                  "replicas": {"min": 2, "max": 10},
                                  "resources": {"cpu": "1", "memory": "2Gi"}}},
    },
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(MODEL)
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


def test_valid_model_parses_with_snake_case_fields() -> None:
    model = spec.parse(MODEL)
    assert isinstance(model, spec.Model)
    version = model.spec.versions[0]
    assert version.trained_on[0].dataset == "tx"
    assert version.metrics == {"auc": 0.931, "n": 3.0}
    assert model.spec.stages["production"].canary == spec.Canary(version="1.2.0", traffic=10)


def test_unknown_field_suggests_the_near_one() -> None:
    data = _with(("spec", "versions", 0, "trainedOm"), [])
    (error,) = spec.parse(data)  # type: ignore[misc]
    assert error.code == "SPC003"
    assert error.loc == ("spec", "versions", 0, "trainedOm") and error.at_key
    assert "trainedOn" in error.hint


def test_unquoted_version_is_a_number_not_a_string() -> None:
    (error,) = spec.parse(_with(("spec", "versions", 0, "version"), 1.1))  # type: ignore[misc]
    assert error.code == "SPC005"
    assert "number 1.1" in error.message


@pytest.mark.parametrize(("path", "value", "code"), [
    (("apiVersion",), "v1", "SPC001"),
    (("kind",), "Modle", "SPC002"),
    (("spec", "framework"), "sklern", "SPC006"),
    (("spec", "versions", 0, "digest"), "sha256:abc", "SPC007"),
    (("spec", "stages", "production", "resources", "memory"), "lots", "SPC007"),
    (("spec", "stages", "production", "replicas", "min"), -1, "SPC007"),
    # What Kubernetes cannot take (int32 in its schemas) is refused, not rendered.
    (("spec", "stages", "production", "replicas", "max"), 2**31, "SPC007"),
    (("spec", "stages", "production", "replicas", "min"), 2**63, "SPC007"),
    (("spec", "stages", "production", "resources", "gpu"), 2**31, "SPC007"),
    (("spec", "versions"), [], "SPC007"),
    (("metadata", "labels"), {"team": 3}, "SPC005"),
])
def test_bad_values(path: tuple[Any, ...], value: Any, code: str) -> None:
    errors = spec.parse(_with(path, value))
    assert isinstance(errors, list)
    assert [e.code for e in errors] == [code]


def test_the_largest_int32_replica_count_is_accepted() -> None:
    data = _with(("spec", "stages", "production", "replicas"), {"min": 2**31 - 1,
                                                                 "max": 2**31 - 1})
    assert not isinstance(spec.parse(data), list)


def test_missing_field_is_located_at_its_parent() -> None:
    data = copy.deepcopy(MODEL)
    del data["spec"]["framework"]
    (error,) = spec.parse(data)  # type: ignore[misc]
    assert (error.code, error.loc, error.at_key) == ("SPC004", ("spec",), True)


def test_not_a_mapping() -> None:
    (error,) = spec.parse(["a"])  # type: ignore[misc]
    assert error.code == "SPC008"


def test_environment_promotion_uses_from_keyword() -> None:
    environment = spec.parse({
        "apiVersion": "reconciler/v1", "kind": "Environment", "metadata": {"name": "prod"},
        "spec": {"namespace": "ml", "target": "kserve",
                 "promotion": {"from": "staging", "requireMetrics": {"auc": ">= 0.9"}}}})
    assert isinstance(environment, spec.Environment)
    assert environment.spec.promotion is not None
    assert environment.spec.promotion.from_ == "staging"


def test_json_schema_accepts_this_repository_and_rejects_bad_input() -> None:
    schema = spec.json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    manifests = sorted((PROJECT / "manifests").rglob("*.yaml"))
    assert manifests
    for path in manifests:
        for document in yaml.safe_load_all(path.read_text()):
            assert not list(validator.iter_errors(document)), path
    assert list(validator.iter_errors(_with(("spec", "versions", 0, "version"), 1.1)))
    assert list(validator.iter_errors(_with(("spec", "surprise"), 1)))

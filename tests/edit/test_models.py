"""register, deprecate and retire: versions added with what DVC records, the next version by
semantic versioning, values from the command line written as the strings they are, and each
refusal one line with nothing written."""

from __future__ import annotations

import pytest
import yaml

from reconciler import api
from reconciler.diagnostics import ReconcilerError
from tests.conftest import ENVIRONMENTS, Registry, model_manifest
from tests.test_validate import retrain, run_cli

FRAUD = "manifests/models/fraud.yaml"


def _versions(registry: Registry, path: str = FRAUD) -> list[dict[str, object]]:
    return yaml.safe_load((registry.root / path).read_text())["spec"]["versions"]


def test_register_adds_the_next_patch_pinned_to_what_dvc_records(registry: Registry) -> None:
    digest = retrain(registry)
    change = api.register(str(registry.root), "fraud", trained_on=["transactions@2024-06"])
    assert change.ok and change.written and change.message == "register fraud 1.0.1"
    added = _versions(registry)[-1]
    assert added == {"version": "1.0.1", "artifact": "models/fraud.pkl", "digest": digest,
                     "parent": "1.0.0",
                     "trainedOn": [{"dataset": "transactions", "version": "2024-06"}]}
    assert [e.type for e in change.events][:1] == ["version.added"]
    assert api.validate(str(registry.root)).ok


@pytest.mark.parametrize(("options", "expected"), [
    ({"bump": "minor"}, "1.1.0"), ({"bump": "major"}, "2.0.0"), ({"version": "1.0.0-rc.2"},
                                                                 "1.0.0-rc.2"),
])
def test_the_version_follows_the_bump_or_is_named(registry: Registry, options: dict[str, str],
                                                   expected: str) -> None:
    retrain(registry)
    api.register(str(registry.root), "fraud", dry_run=False, **options)
    assert _versions(registry)[-1]["version"] == expected


def test_a_text_value_is_written_as_the_string_it_is(registry: Registry) -> None:
    retrain(registry)
    hostile = 'line one\n  evil: true\n- {"a": 1} # not a comment'
    api.register(str(registry.root), "fraud", description=hostile)
    added = _versions(registry)[-1]
    assert added["description"] == hostile and "evil" not in added


def test_a_new_model_gets_its_own_file(registry: Registry) -> None:
    registry.write("models/churn.pkl", b"churn weights\n")
    registry.dvc("add", "-q", "models/churn.pkl")
    root = str(registry.root)
    with pytest.raises(ReconcilerError, match="--artifact"):
        api.register(root, "churn")
    with pytest.raises(ReconcilerError, match="--framework"):
        api.register(root, "churn", artifact="models/churn.pkl")
    change = api.register(root, "churn", artifact="models/churn.pkl", framework="xgboost")
    assert change.files == ["manifests/models/churn.yaml"]
    document = yaml.safe_load((registry.root / "manifests/models/churn.yaml").read_text())
    assert document["spec"]["framework"] == "xgboost"
    assert document["spec"]["versions"] == [{"version": "0.1.0",
                                             "artifact": "models/churn.pkl",
                                             "digest": registry.digest("models/churn.pkl")}]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "already version '1.0.0'"),  # no retrain: the same bytes
    ({"version": "1.0.0"}, "already has version '1.0.0'"),
    ({"artifact": "models/none.pkl"}, "DVC records nothing for 'models/none.pkl'"),
    ({"trained_on": ["transactions"]}, "is not DATASET@VERSION"),
])
def test_what_cannot_be_registered_is_refused_before_anything_is_written(
        registry: Registry, kwargs: dict[str, object], message: str) -> None:
    text = (registry.root / FRAUD).read_text()
    if "trained_on" in kwargs:
        retrain(registry)
    with pytest.raises(ReconcilerError, match=message):
        api.register(str(registry.root), "fraud", **kwargs)
    assert (registry.root / FRAUD).read_text() == text


@pytest.mark.parametrize("name", ["../../../../outside", "../datasets/x", "a/b", ".hidden",
                                  "x\ny", "", "Churn", "churn.yaml"])
def test_a_new_name_that_is_no_dns_label_is_refused_before_it_makes_a_path(
        registry: Registry, name: str) -> None:
    """The name makes the file's path: refused before anything is read or written there."""
    root = str(registry.root)
    with pytest.raises(ReconcilerError, match="is not a DNS-1123 label"):
        api.register(root, name, artifact="models/fraud.pkl", framework="sklearn")
    with pytest.raises(ReconcilerError, match="is not a DNS-1123 label"):
        api.register_dataset(root, name, artifact="models/fraud.pkl")
    assert registry.repo.git.status("--porcelain", "--untracked-files=all") == ""


def test_a_name_refused_is_one_line(registry: Registry) -> None:
    done = run_cli(registry, "register", "../../x\n", "--artifact", "models/fraud.pkl",
                   "--framework", "sklearn")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("reconciler: error: '../../x\\n' is not a DNS-1123 label (lower-case "
                           "letters, digits and '-', starting and ending with a letter or digit, "
                           "at most 63 characters)\n")


def test_a_description_is_written_as_given_or_refused_in_one_line(registry: Registry) -> None:
    """DEL and a C1 control are escaped (they made the edit "not load"); bytes that are not
    UTF-8 (a terminal in another encoding) are refused, where they were a traceback."""
    retrain(registry)
    text = (registry.root / FRAUD).read_text()
    done = run_cli(registry, "register", "fraud", "--description", "a\udcffb")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == 'reconciler: error: "a\\udcffb" is not UTF-8 text\n'
    assert (registry.root / FRAUD).read_text() == text
    api.register(str(registry.root), "fraud", description="a\x7fb\x9bc\x85d")
    assert _versions(registry)[-1]["description"] == "a\x7fb\x9bc\x85d"


def test_a_registration_validate_refuses_writes_nothing(registry: Registry) -> None:
    """A dataset version that does not exist: REF002, as pre-commit would say."""
    retrain(registry)
    text = (registry.root / FRAUD).read_text()
    done = run_cli(registry, "register", "fraud", "--trained-on", "transactions@1999")
    assert done.returncode == 1 and "REF" in done.stdout
    assert (registry.root / FRAUD).read_text() == text


@pytest.mark.parametrize("style", ["block", "flow", "said false"])
def test_deprecate_marks_the_version_however_it_is_written(registry: Registry,
                                                           style: str) -> None:
    digest = registry.digest("models/fraud.pkl")
    second = retrain(registry)
    item = {"block": f'    - version: "1.1.0"\n      artifact: models/fraud.pkl\n'
                     f"      digest: {second}\n",
            "flow": f'    - {{version: "1.1.0", artifact: models/fraud.pkl, digest: {second}}}\n',
            "said false": f'    - version: "1.1.0"\n      deprecated: false\n'
                          f"      artifact: models/fraud.pkl\n      digest: {second}\n"}[style]
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", digest)])
                   + item)
    registry.commit("fraud 1.1.0")
    change = api.deprecate(str(registry.root), "fraud", "1.1.0", commit=True)
    assert change.ok and [e.type for e in change.events] == ["version.deprecated"]
    assert _versions(registry)[1]["deprecated"] is True
    with pytest.raises(ReconcilerError, match="deprecated already"):
        api.deprecate(str(registry.root), "fraud", "1.1.0")


def test_retire_is_refused_while_an_environment_serves_the_model(registry: Registry) -> None:
    done = run_cli(registry, "retire", "fraud")
    assert done.returncode == 1 and "REF" in done.stdout
    assert (registry.root / FRAUD).exists()


def test_retire_deletes_the_models_file_and_commits_it(registry: Registry) -> None:
    registry.write(FRAUD, model_manifest("fraud", [
        ("1.0.0", "models/fraud.pkl", registry.digest("models/fraud.pkl"))]))
    for path, text in ENVIRONMENTS.items():
        registry.write(path, text)
    registry.commit("nothing serves fraud")
    change = api.retire(str(registry.root), "fraud", commit=True)
    assert [e.type for e in change.events] == ["model.retired"]
    assert not (registry.root / FRAUD).exists()
    assert registry.repo.head.commit.message.strip() == "retire fraud"
    assert not registry.repo.is_dirty(untracked_files=True)


def test_a_dataset_version_is_registered_the_same_way(registry: Registry) -> None:
    registry.write("data/transactions.parquet", b"PAR1 july PAR1")
    registry.dvc("add", "-q", "data/transactions.parquet")
    root = str(registry.root)
    with pytest.raises(ReconcilerError, match=r"is not MAJOR\.MINOR\.PATCH"):
        api.register_dataset(root, "transactions")  # 2024-06: no next version to guess
    change = api.register_dataset(root, "transactions", version="2024-07", commit=True)
    assert change.ok and change.message == "register dataset transactions 2024-07"
    added = _versions(registry, "manifests/datasets/transactions.yaml")[-1]
    assert added == {"version": "2024-07", "artifact": "data/transactions.parquet",
                     "digest": registry.digest("data/transactions.parquet")}
    registry.write("data/events.csv", "id\n1\n")
    registry.dvc("add", "-q", "data/events.csv")
    done = run_cli(registry, "register", "events", "--dataset", "--artifact", "data/events.csv")
    assert done.returncode == 0, done.stderr
    assert _versions(registry, "manifests/datasets/events.yaml")[0]["version"] == "0.1.0"
    refused = run_cli(registry, "register", "events", "--dataset", "--parent", "0.1.0")
    assert refused.returncode == 2 and "a dataset version has none" in refused.stderr


def test_a_gto_style_version_keeps_its_v_when_bumped(registry: Registry) -> None:
    registry.write(FRAUD, model_manifest("fraud", [
        ("v1.2.9", "models/fraud.pkl", registry.digest("models/fraud.pkl"))]))
    for path, text in ENVIRONMENTS.items():
        registry.write(path, text)
    registry.commit("versions as GTO names them")
    retrain(registry)
    assert api.register(str(registry.root), "fraud", bump="minor").message == (
        "register fraud v1.3.0")

"""diff is a pure function of two snapshots: no git, no database, no files."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import spec
from reconciler.catalog import EMPTY, Snapshot
from reconciler.diff import DatabaseState, diff, undo
from reconciler.dvc.records import Dependency, Output, StageLineage
from reconciler.events import EVENT_TYPES, Event

D1, D2 = "md5:" + "1" * 32, "md5:" + "2" * 32
DATA = "md5:" + "d" * 32


def model(versions: list[dict[str, Any]], stages: dict[str, Any] | None = None,
          **meta: Any) -> spec.Model:
    parsed = spec.parse({"apiVersion": "reconciler/v1", "kind": "Model",
                         "metadata": {"name": "fraud", **meta},
                         "spec": {"framework": "sklearn", "versions": versions,
                                  "stages": stages or {}}})
    assert isinstance(parsed, spec.Model), parsed
    return parsed


def dataset() -> spec.Dataset:
    parsed = spec.parse({"apiVersion": "reconciler/v1", "kind": "Dataset",
                         "metadata": {"name": "tx"},
                         "spec": {"versions": [{"version": "v1", "artifact": "data/tx",
                                                "digest": DATA}]}})
    assert isinstance(parsed, spec.Dataset)
    return parsed


V1 = {"version": "1.0.0", "artifact": "m.pkl", "digest": D1, "metrics": {"auc": 0.9}}
V2 = {"version": "1.1.0", "artifact": "m.pkl", "digest": D2, "parent": "1.0.0"}


def snap(*models: spec.Model, outputs: dict[str, Output] | None = None,
         datasets: tuple[spec.Dataset, ...] = ()) -> Snapshot:
    return Snapshot({m.metadata.name: m for m in models}, {d.metadata.name: d for d in datasets},
                    {}, outputs or {})


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_identical_snapshots_give_no_events() -> None:
    state = snap(model([V1], {"production": {"version": "1.0.0"}}))
    assert diff(state, state) == []
    assert diff(EMPTY, EMPTY) == []


def test_new_model_with_a_stage() -> None:
    events = diff(EMPTY, snap(model([V1], {"staging": {"version": "1.0.0"}}, owner="a@x")))
    assert types(events) == ["model.created", "version.added", "stage.assigned"]
    assert events[0].payload == {"owner": "a@x", "framework": "sklearn"}
    assert events[1].payload["digest"] == D1 and events[1].payload["metrics"] == {"auc": 0.9}
    assert events[2].payload == {"from": None, "to": "1.0.0", "kind": "initial"}
    assert all(e.type in EVENT_TYPES for e in events)


def test_promotion_canary_and_rollback() -> None:
    base = model([V1, V2], {"production": {"version": "1.0.0"}})
    canary = model([V1, V2], {"production": {"version": "1.0.0",
                                             "canary": {"version": "1.1.0", "traffic": 10}}})
    promoted = model([V1, V2], {"production": {"version": "1.1.0"}})
    rolled_back = model([V1, V2], {"production": {"version": "1.0.0"}})

    events = diff(snap(base), snap(canary))
    assert types(events) == ["canary.changed"]
    assert events[0].payload == {"from": None, "to": {"version": "1.1.0", "traffic": 10}}

    events = diff(snap(canary), snap(promoted))
    assert types(events) == ["stage.assigned", "canary.changed"]
    assert events[0].payload["kind"] == "promotion" and events[1].payload["to"] is None

    (event,) = diff(snap(promoted), snap(rolled_back))
    assert (event.type, event.payload["kind"], event.version) == ("stage.assigned", "rollback",
                                                                   "1.0.0")


def test_stage_configuration_change_is_its_own_event() -> None:
    before = model([V1], {"production": {"version": "1.0.0", "replicas": {"min": 1, "max": 2}}})
    after = model([V1], {"production": {"version": "1.0.0", "replicas": {"min": 2, "max": 4}}})
    (event,) = diff(snap(before), snap(after))
    assert event.type == "stage.updated"
    assert event.payload == {"replicas": {"from": {"min": 1, "max": 2},
                                          "to": {"min": 2, "max": 4}}}


def test_retirement_removes_stages_then_retires() -> None:
    events = diff(snap(model([V1], {"staging": {"version": "1.0.0"}})), EMPTY)
    assert types(events) == ["stage.removed", "model.retired"]


def test_deprecation_and_its_undoing() -> None:
    deprecated = model([{**V1, "deprecated": True}, V2])
    assert types(diff(snap(model([V1, V2])), snap(deprecated))) == ["version.deprecated"]
    assert types(diff(snap(deprecated), snap(model([V1, V2])))) == ["version.undeprecated"]


def test_metadata_change_lists_fields() -> None:
    (event,) = diff(snap(model([V1], owner="a@x")), snap(model([V1], owner="b@x")))
    assert event.type == "model.updated"
    assert event.payload == {"owner": {"from": "a@x", "to": "b@x"}}


def test_lineage_from_trained_on_parent_and_dvc_lock() -> None:
    stage = StageLineage("dvc.lock", "train", (Dependency("data/tx", DATA),), {})
    outputs = {"m.pkl": Output("m.pkl", D2, 10, None, "dvc.lock", stage)}
    before = snap(model([V1]), datasets=(dataset(),), outputs=outputs)
    after = snap(model([V1, {**V2, "trainedOn": [{"dataset": "tx", "version": "v1"}]}]),
                 datasets=(dataset(),), outputs=outputs)
    lineage = [e.payload for e in diff(before, after) if e.type == "lineage.added"]
    assert {(p["sourceKind"], p["source"], p["sourceVersion"], p["via"]) for p in lineage} == {
        ("Dataset", "tx", "v1", "trainedOn"), ("Model", "fraud", "1.0.0", "parent"),
        ("Dataset", "tx", "v1", "dvc.lock:train")}
    added = next(e for e in diff(before, after) if e.type == "version.added")
    assert added.payload["size"] == 10


def test_lineage_declared_later_on_an_existing_version() -> None:
    # An edit of a landed version (IMM003 under --base) that lands anyway: recorded as it was.
    trained = {**V2, "trainedOn": [{"dataset": "tx", "version": "v1"}]}
    events = diff(snap(model([V1, V2]), datasets=(dataset(),)),
                  snap(model([V1, trained]), datasets=(dataset(),)))
    assert [(e.type, e.version) for e in events] == [("version.updated", "1.1.0"),
                                                    ("lineage.added", "1.1.0")]
    assert events[0].payload == {"trainedOn": {"from": [], "to": trained["trainedOn"]}}
    assert events[1].payload["source"] == "tx"
    parented = {**V1, "parent": "0.9.0"}
    events = diff(snap(model([V1, V2])), snap(model([parented, V2])))
    assert [(e.type, e.version) for e in events] == [("version.updated", "1.0.0"),
                                                    ("lineage.added", "1.0.0")]
    assert events[1].payload["sourceVersion"] == "0.9.0"


def test_an_edit_of_a_landed_version_is_recorded_with_before_and_after() -> None:
    edited = {**V1, "metrics": {"auc": 0.99}, "params": {"depth": 9}}
    (event,) = diff(snap(model([V1])), snap(model([edited])))
    assert (event.type, event.version) == ("version.updated", "1.0.0")
    assert set(event.payload) == {"metrics", "params"}
    assert event.payload["metrics"]["to"] == {"auc": 0.99}
    described = {**V1, "description": "now documented"}  # about the version, not of it
    assert diff(snap(model([V1])), snap(model([described]))) == []


def test_events_are_deterministic_and_sorted_by_subject() -> None:
    a = model([V1])
    b_raw = spec.parse({"apiVersion": "reconciler/v1", "kind": "Model",
                        "metadata": {"name": "alpha"},
                        "spec": {"framework": "onnx", "versions": [V1]}})
    assert isinstance(b_raw, spec.Model)
    events = diff(EMPTY, snap(a, b_raw))
    assert [e.name for e in events if e.type == "model.created"] == ["alpha", "fraud"]
    assert diff(EMPTY, snap(a, b_raw)) == diff(EMPTY, snap(b_raw, a))


def _manifest(name: str, versions: int, stage: int | None = None) -> bytes:
    lines = ["apiVersion: reconciler/v1", "kind: Model", f"metadata: {{name: {name}}}",
             "spec:", "  framework: sklearn", "  versions:"]
    lines += [f"    - {{version: \"1.{v}.0\", artifact: m.pkl, digest: \"md5:{v:032d}\"}}"
              for v in range(1, versions + 1)]
    if stage is not None:
        lines += ["  stages:", f"    production: {{version: \"1.{stage}.0\"}}"]
    return ("\n".join(lines) + "\n").encode()


def test_a_replay_that_names_what_it_touched_gives_the_events_of_a_full_compare() -> None:
    from reconciler.replay import History

    state = History()
    before = state.snapshot()
    steps: list[list[tuple[str, bytes | None]]] = [
        [("manifests/a.yaml", _manifest("fraud", 1)), ("manifests/b.yaml", _manifest("churn", 1))],
        [("manifests/a.yaml", _manifest("fraud", 2, 1))],
        # A second definition of fraud in a later path: ignored while a.yaml defines it...
        [("manifests/z.yaml", _manifest("fraud", 3, 3))],
        # ...and revealed when a.yaml goes, in the same commit as another model's change.
        [("manifests/a.yaml", None), ("manifests/b.yaml", _manifest("churn", 2, 2))],
        [("manifests/b.yaml", b"not: [valid")],  # skipped: churn keeps its last content
        [("manifests/z.yaml", None)],
    ]
    seen = []
    for changes in steps:
        for path, raw in changes:
            state.update(path, raw, "c")
        touched = state.touched()
        after = state.snapshot()
        full, narrowed = diff(before, after), diff(before, after, touched)
        assert narrowed == full
        seen += types(full)
        before = after
    assert seen.count("model.created") == 2 and seen.count("model.retired") == 1
    assert "version.added" in seen and "stage.assigned" in seen


def test_undo_brings_what_a_database_holds_back_to_the_base() -> None:
    # The database holds what lost commits did: 1.1.0 added and serving production with a
    # canary, 1.0.0 deprecated, and a model "gone" the base never had.
    recorded = DatabaseState(
        commits=("c2", "c1"), environments=frozenset(),
        datasets={"tx": {"v1": False, "v2": False}},
        models={"fraud": {"1.0.0": True, "1.1.0": False}, "gone": {"0.1": False}},
        serving={("fraud", "production"): ("1.1.0", ("1.0.0", 10)),
                 ("gone", "staging"): ("0.1", None)})
    base = snap(model([V1], {"production": {"version": "1.0.0"}}), datasets=(dataset(),))
    events = [(e.type, e.name, e.version, e.environment) for e in undo(recorded, base)]
    assert events == [
        ("dataset.version.removed", "tx", "v2", None),
        ("stage.assigned", "fraud", "1.0.0", "production"),
        ("canary.changed", "fraud", None, "production"),
        ("version.removed", "fraud", "1.1.0", None),
        ("version.undeprecated", "fraud", "1.0.0", None),
        ("stage.removed", "gone", None, "staging"),
        ("model.retired", "gone", None, None),
    ]
    assert undo(DatabaseState((), frozenset(), {"tx": {"v1": False}},
                         {"fraud": {"1.0.0": False}},
                         {("fraud", "production"): ("1.0.0", None)}), base) == []


def test_a_dataset_registered_after_the_version_still_gets_its_dvc_lock_edge() -> None:
    stage = StageLineage("dvc.lock", "train", (Dependency("feat", "md5:" + "f" * 32),), {})
    prepare = StageLineage("dvc.lock", "featurize", (Dependency("data/tx", DATA),), {})
    outputs = {"m.pkl": Output("m.pkl", D2, 10, None, "dvc.lock", stage),
               "feat": Output("feat", "md5:" + "f" * 32, 5, None, "dvc.lock", prepare)}
    landed = snap(model([V1, V2]), outputs=outputs)
    events = diff(landed, snap(model([V1, V2]), datasets=(dataset(),), outputs=outputs))
    assert [(e.type, e.name, e.version) for e in events] == [
        ("dataset.created", "tx", None), ("dataset.version.added", "tx", "v1"),
        ("lineage.added", "fraud", "1.1.0")]  # 1.0.0's bytes are no longer what DVC records
    assert events[-1].payload == {"sourceKind": "Dataset", "source": "tx", "sourceVersion": "v1",
                                  "via": "dvc.lock:featurize>train"}
    # The same, replayed as apply does (only the dataset's file touched).
    assert diff(landed, snap(model([V1, V2]), datasets=(dataset(),), outputs=outputs),
                touched={("Dataset", "tx")}) == events


def test_versions_added_together_on_one_output_walk_its_pipeline_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Lineage costs the pipeline once, not once per version pinned to it (issue 25: 31
    versions on a 6,300-file pipeline took plan and apply past a minute)."""
    from reconciler.dvc import lineage

    walks = []
    real = lineage.upstream

    def counted(output: Output, outputs: Any) -> Any:
        walks.append(output.path)
        return real(output, outputs)

    monkeypatch.setattr(lineage, "upstream", counted)
    stage = StageLineage("dvc.lock", "train", (Dependency("data/tx", DATA),), {})
    outputs = {"m.pkl": Output("m.pkl", D2, 10, None, "dvc.lock", stage)}
    added = [{"version": f"1.0.{i}", "artifact": "m.pkl"} for i in range(31)]
    events = diff(snap(datasets=(dataset(),), outputs=outputs),
                  snap(model(added), datasets=(dataset(),), outputs=outputs))
    lineage_events = [e for e in events if e.type == "lineage.added"]
    assert len(lineage_events) == 31  # every version still gets its edge
    assert walks == ["m.pkl"]

"""catalog(A) vs catalog(B) -> typed events. Pure: snapshots in, events out, no I/O.

Events come out in a fixed order (environments, datasets, models; names sorted; within a model:
model, versions, lineage, stages), so the same two snapshots always give the same list.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler import policy, serving, spec
from reconciler.catalog import Snapshot
from reconciler.dvc import lineage
from reconciler.dvc.records import Output
from reconciler.events import Event


@dataclass(frozen=True)
class DatabaseState:
    """What a database holds as current, for when the commit it was reconciled to is gone
    from git (a force-push, then a fresh clone) and its snapshot cannot be rebuilt."""

    commits: tuple[str, ...]  # commits it reconciled, newest first
    environments: frozenset[str]
    datasets: dict[str, dict[str, bool]]  # dataset -> its versions not removed -> deprecated
    models: dict[str, dict[str, bool]]  # model -> its versions not removed -> deprecated
    serving: dict[tuple[str, str], tuple[str | None, tuple[str, int | None] | None]]
    # (model, environment) -> (primary version, (canary version, traffic))
    landed: datetime | None = None  # when the newest event it holds took effect


def undo(recorded: DatabaseState, base: Snapshot) -> list[Event]:
    """The events that bring what the database holds back to base (the newest reconciled
    commit git still has): what the lost commits did, undone as far as the database knows it."""
    events: list[Event] = []
    for name in sorted(recorded.environments - base.environments.keys()):
        events.append(Event("environment.retired", "Environment", name))
    for name in sorted(base.environments.keys() - recorded.environments):
        events += _environment(name, None, base.environments[name])
    for name in sorted(recorded.datasets.keys() | base.datasets.keys()):
        dataset = base.datasets.get(name)
        if name not in recorded.datasets:
            events += _dataset(name, None, dataset, base.outputs)
        elif dataset is None:
            events.append(Event("dataset.retired", "Dataset", name))
        else:
            events += _restored_versions("dataset.version", "Dataset", name,
                                         recorded.datasets[name], dataset.spec.versions, base)
    for name in sorted(recorded.models.keys() | base.models.keys()):
        events += _undo_model(name, recorded, base)
    return events


def _undo_model(name: str, recorded: DatabaseState, base: Snapshot) -> list[Event]:
    model = base.models.get(name)
    if name not in recorded.models:
        return list(_model(name, None, model, base.outputs, lambda: _dataset_digests(base)))
    events = list(_undo_serving(name, recorded, model))
    if model is None:
        events.append(Event("model.retired", "Model", name))
    else:
        events += _restored_versions("version", "Model", name, recorded.models[name],
                                     model.spec.versions, base)
    return events


def _undo_serving(name: str, recorded: DatabaseState, model: spec.Model | None) -> Iterator[Event]:
    """What each environment serves of the model, from what the database says to the base."""
    served = {env: state for (owner, env), state in recorded.serving.items() if owner == name}
    stages = model.spec.stages if model else {}
    order = [v.version for v in model.spec.versions] if model else []
    for env in sorted(served.keys() | stages.keys()):
        (primary, canary), stage = served.get(env, (None, None)), stages.get(env)
        wanted = (stage.canary.version, stage.canary.traffic) if stage and stage.canary else None
        if stage is None and primary is not None:
            yield Event("stage.removed", "Model", name, environment=env,
                        payload={"from": primary})
        elif stage is not None and stage.version != primary:
            yield Event("stage.assigned", "Model", name, stage.version, env, payload={
                "from": primary, "to": stage.version,
                "kind": policy.assignment_kind(order, primary, stage.version)})
        if canary != wanted:
            yield Event("canary.changed", "Model", name, wanted[0] if wanted else None, env,
                        payload={"from": _canary(canary), "to": _canary(wanted)})


def _canary(state: tuple[str, int | None] | None) -> dict[str, Any] | None:
    return None if state is None else {"version": state[0], "traffic": state[1]}


def _restored_versions(prefix: str, kind: str, name: str, recorded: dict[str, bool],
                       versions: Sequence[spec.ArtifactVersion], base: Snapshot
                       ) -> Iterator[Event]:
    wanted = {v.version: v for v in versions}
    for gone in sorted(recorded.keys() - wanted.keys()):
        yield Event(f"{prefix}.removed", kind, name, gone)
    for version in versions:
        deprecated = recorded.get(version.version)
        if deprecated is None:
            yield Event(f"{prefix}.added", kind, name, version.version,
                        payload=_version_payload(version, base.outputs))
        elif version.deprecated and not deprecated:
            yield Event(f"{prefix}.deprecated", kind, name, version.version)
        elif deprecated and not version.deprecated:
            yield Event(f"{prefix}.undeprecated", kind, name, version.version)


def diff(old: Snapshot, new: Snapshot,
         touched: Collection[tuple[str, str]] | None = None) -> list[Event]:
    """The events that turn old into new. touched, when given, holds (kind, name) of every
    manifest that may differ between the two (any other is the same object in both), so a
    long replay compares what each commit changed, not the whole registry."""
    events: list[Event] = []
    for name in _changed(old.environments, new.environments, touched, "Environment"):
        events += _environment(name, old.environments.get(name), new.environments.get(name))
    for name in _changed(old.datasets, new.datasets, touched, "Dataset"):
        events += _dataset(name, old.datasets.get(name), new.datasets.get(name), new.outputs)
    # Needed only where a new version has dvc.lock lineage: computed then, once per diff.
    dataset_digests = functools.cache(lambda: _dataset_digests(new))
    for name in _changed(old.models, new.models, touched, "Model"):
        events += _violations(name, old.models.get(name), new.models.get(name),
                              new.environments)
        events += _model(name, old.models.get(name), new.models.get(name), new.outputs,
                         dataset_digests)
    events += _late_lineage(old, new, touched)
    return events


def _late_lineage(old: Snapshot, new: Snapshot,
                  touched: Collection[tuple[str, str]] | None) -> list[Event]:
    """lineage.added for versions that landed before a dataset version they were made from
    was registered: at the commit that registers it. Found from the dvc.lock of that commit,
    so only for versions whose bytes DVC still records there (an older training's lock is
    history)."""
    registered: dict[str, tuple[str, str]] = {}
    for name in _changed(old.datasets, new.datasets, touched, "Dataset"):
        before, after = old.datasets.get(name), new.datasets.get(name)
        known = {v.version for v in before.spec.versions} if before else set()
        for added in after.spec.versions if after else []:
            if added.version not in known and added.digest:
                registered.setdefault(added.digest, (name, added.version))
    events: list[Event] = []
    if not registered:
        return events
    for name in sorted(new.models):
        earlier = old.models.get(name)
        landed = {v.version for v in earlier.spec.versions} if earlier else set()
        for version in new.models[name].spec.versions:
            output = new.outputs.get(version.artifact)
            if (version.version not in landed or output is None or output.lineage is None
                    or version.digest != output.digest):
                continue
            edges = _pipeline_edges(output, new.outputs, registered)
            events += [_lineage_event(name, version.version, edge)
                       for edge in sorted(set(edges), key=lambda edge: edge[:4])]
    return events


def _changed(old: dict[str, Any], new: dict[str, Any],
             touched: Collection[tuple[str, str]] | None, kind: str) -> list[str]:
    """Sorted names whose manifest object differs (unchanged files keep their objects)."""
    if touched is not None:
        return sorted(name for touched_kind, name in touched if touched_kind == kind
                      and old.get(name) is not new.get(name))
    names = [name for name, value in new.items() if old.get(name) is not value]
    names += [name for name in old if name not in new]
    return sorted(names)


def _environment(name: str, before: spec.Environment | None,
                 after: spec.Environment | None) -> list[Event]:
    if before is after or before == after:
        return []
    if after is None:
        return [Event("environment.retired", "Environment", name)]
    data = serving.environment_spec(after)
    if before is None:
        return [Event("environment.created", "Environment", name, payload=data)]
    changes = _changes(serving.environment_spec(before), data)
    return [Event("environment.updated", "Environment", name, payload=changes)] if changes else []


def _dataset(name: str, before: spec.Dataset | None, after: spec.Dataset | None,
             outputs: dict[str, Output]) -> Iterator[Event]:
    if after is None:
        yield Event("dataset.retired", "Dataset", name)
        return
    meta = _metadata(after.metadata)
    if before is None:
        yield Event("dataset.created", "Dataset", name, payload=meta)
    elif before.metadata != after.metadata:
        yield Event("dataset.updated", "Dataset", name,
                    payload=_changes(_metadata(before.metadata), meta))
    yield from _versions("dataset.version", "Dataset", name,
                         before.spec.versions if before else [], after.spec.versions, outputs)


def _model(name: str, before: spec.Model | None, after: spec.Model | None,
           outputs: dict[str, Output],
           dataset_digests: Callable[[], dict[str, tuple[str, str]]]) -> Iterator[Event]:
    if after is None:
        assert before is not None
        for env_name in sorted(before.spec.stages):
            yield Event("stage.removed", "Model", name, environment=env_name,
                        payload={"from": before.spec.stages[env_name].version})
        yield Event("model.retired", "Model", name)
        return
    if before is None:
        meta = {**_metadata(after.metadata), "framework": after.spec.framework}
        yield Event("model.created", "Model", name, payload=meta)
    elif before.metadata != after.metadata or before.spec.framework != after.spec.framework:
        old_meta = {**_metadata(before.metadata), "framework": before.spec.framework}
        meta = {**_metadata(after.metadata), "framework": after.spec.framework}
        if old_meta != meta:
            yield Event("model.updated", "Model", name, payload=_changes(old_meta, meta))
    old_versions = before.spec.versions if before else []
    yield from _versions("version", "Model", name, old_versions, after.spec.versions, outputs)
    yield from _lineage(name, old_versions, after.spec.versions, outputs, dataset_digests)
    yield from _stages(name, before, after)


def _violations(name: str, before: spec.Model | None, after: spec.Model | None,
                environments: dict[str, spec.Environment]) -> Iterator[Event]:
    """policy.violated for each version that arrives in an environment against its promotion
    policy (a commit validate would have refused, pushed anyway), as policy judges it."""
    if after is None:
        return
    for found in policy.violations(before, after, environments):
        payload: dict[str, Any] = {"rule": found.rule, "requires": found.required_stage}
        if found.requirement is not None:
            wanted = found.requirement
            payload = {"rule": found.rule, "metric": wanted.metric,
                       "requires": f"{wanted.op} {wanted.threshold:g}", "value": found.value}
        yield Event("policy.violated", "Model", name, found.version, found.environment,
                    payload=payload)


def _metadata(metadata: spec.Metadata) -> dict[str, Any]:
    """metadata as an event payload: the fields that are set, without the name."""
    return metadata.model_dump(mode="json", by_alias=True, exclude={"name"}, exclude_defaults=True)


def _versions(prefix: str, kind: str, name: str, before: Sequence[spec.ArtifactVersion],
              after: Sequence[spec.ArtifactVersion],
              outputs: dict[str, Output]) -> Iterator[Event]:
    old = {v.version: v for v in before}
    new = {v.version: v for v in after}
    for version in after:
        previous = old.get(version.version)
        if previous is None:
            yield Event(f"{prefix}.added", kind, name, version.version,
                        payload=_version_payload(version, outputs))
            continue
        if previous.__dict__ == version.__dict__:  # the fields alone: pydantic's == checks
            continue                                 # more (bench/backfill.py)
        if version.deprecated and not previous.deprecated:
            yield Event(f"{prefix}.deprecated", kind, name, version.version)
        elif previous.deprecated and not version.deprecated:
            yield Event(f"{prefix}.undeprecated", kind, name, version.version)
        changed = policy.content_changes(previous, version)
        if changed:  # it got past validate (IMM001/IMM003): history records the edit
            yield Event(f"{prefix}.updated", kind, name, version.version, payload=changed)
    for version in before:
        if version.version not in new:
            yield Event(f"{prefix}.removed", kind, name, version.version)


def _version_payload(version: spec.ArtifactVersion, outputs: dict[str, Output]) -> dict[str, Any]:
    payload = version.model_dump(mode="json", by_alias=True, exclude={"version"},
                                 exclude_defaults=True)
    output = outputs.get(version.artifact)
    # Size is known only while DVC's record is this version's bytes (normally: when it is added).
    if output is not None and output.digest == (version.digest or output.digest):
        payload["digest"] = output.digest
        payload["size"] = output.size
        if output.nfiles is not None:
            payload["nfiles"] = output.nfiles
        record = lineage.reproduction(output)
        if record is not None and isinstance(version, spec.ModelVersion):
            payload["reproduction"] = record
    return payload


def _dataset_digests(snapshot: Snapshot) -> dict[str, tuple[str, str]]:
    """digest -> (dataset, version), for lineage found through dvc.lock dependencies."""
    found: dict[str, tuple[str, str]] = {}
    for name in sorted(snapshot.datasets):
        for version in snapshot.datasets[name].spec.versions:
            if version.digest:
                found.setdefault(version.digest, (name, version.version))
    return found


def _lineage(name: str, before: Sequence[spec.ModelVersion], after: Sequence[spec.ModelVersion],
             outputs: dict[str, Output],
             dataset_digests: Callable[[], dict[str, tuple[str, str]]]) -> Iterator[Event]:
    old = {v.version: v for v in before}
    # Versions added together that pin one output share its pipeline: walked once, not once
    # per version (bench/lineage.py --plan).
    pipelines: dict[str, list[Edge]] = {}
    for version in after:
        previous = old.get(version.version)
        if previous is not None and (previous.parent, previous.trained_on) == (
                version.parent, version.trained_on):
            continue  # an older version's edges come from these two fields only
        edges = set(_edges(name, version, outputs, dataset_digests, previous is None,
                           pipelines))
        if previous is not None:
            edges -= set(_edges(name, previous, outputs, dataset_digests, False, pipelines))
        for edge in sorted(edges, key=lambda edge: edge[:4]):
            yield _lineage_event(name, version.version, edge)


def _edges(name: str, version: spec.ModelVersion, outputs: dict[str, Output],
           dataset_digests: Callable[[], dict[str, tuple[str, str]]],
           is_new: bool, pipelines: dict[str, list[Edge]]) -> Iterator[Edge]:
    for ref in version.trained_on:
        yield ("Dataset", ref.dataset, ref.version, "trainedOn", None)
    if version.parent:
        yield ("Model", name, version.parent, "parent", None)
    output = outputs.get(version.artifact)
    # dvc.lock lineage describes the bytes DVC records now: it belongs to the version added now.
    if is_new and output is not None and output.lineage is not None and (
            version.digest in (None, output.digest)):
        if version.artifact not in pipelines:
            pipelines[version.artifact] = list(_pipeline_edges(output, outputs,
                                                               dataset_digests()))
        yield from pipelines[version.artifact]


Edge = tuple[str, str, str, str, tuple[str, str, str] | None]
# (source kind, name, version, via, the import source (url, path, rev_lock) of its bytes)


def _pipeline_edges(output: Output, outputs: dict[str, Output],
                    datasets: dict[str, tuple[str, str]]) -> Iterator[Edge]:
    """Edges to the dataset versions (digest -> (dataset, version)) that output was made from,
    through its dvc.lock stages."""
    assert output.lineage is not None
    for found in lineage.upstream(output, outputs):
        match = datasets.get(found.digest or "")
        if match:
            source = found.source
            yield ("Dataset", match[0], match[1],
                   lineage.via(output.lineage.lock_path, found.stages),
                   (source.url, source.path, source.rev_lock or "") if source else None)


def _lineage_event(name: str, version: str, edge: Edge) -> Event:
    source_kind, source_name, source_version, via, imported = edge
    payload: dict[str, Any] = {"sourceKind": source_kind, "source": source_name,
                               "sourceVersion": source_version, "via": via}
    if imported is not None:  # the dataset's bytes came in by `dvc import`
        payload["import"] = {"url": imported[0], "path": imported[1],
                             "revLock": imported[2] or None}
    return Event("lineage.added", "Model", name, version, payload=payload)


def _stages(name: str, before: spec.Model | None, after: spec.Model) -> Iterator[Event]:
    old_stages = before.spec.stages if before else {}
    order = [v.version for v in after.spec.versions]
    for env_name in sorted(old_stages.keys() | after.spec.stages.keys()):
        old, new = old_stages.get(env_name), after.spec.stages.get(env_name)
        if old == new:
            continue
        if new is None:
            assert old is not None
            yield Event("stage.removed", "Model", name, environment=env_name,
                        payload={"from": old.version})
            continue
        if old is None or old.version != new.version:
            yield Event("stage.assigned", "Model", name, new.version, env_name, payload={
                "from": old.version if old else None, "to": new.version,
                "kind": policy.assignment_kind(order, old.version if old else None,
                                               new.version)})
        old_canary = old.canary.model_dump(mode="json") if old and old.canary else None
        new_canary = new.canary.model_dump(mode="json") if new.canary else None
        if old_canary != new_canary:
            yield Event("canary.changed", "Model", name,
                        new.canary.version if new.canary else None, env_name,
                        payload={"from": old_canary, "to": new_canary})
        if old is None or all(getattr(old, key) == getattr(new, key) for key in _STAGE_CONFIG):
            continue  # cheaper than dumping both configurations to find no difference
        old_config = _stage_config(old)
        new_config = _stage_config(new)
        if old_config != new_config:
            yield Event("stage.updated", "Model", name, new.version, env_name,
                        payload=_changes(old_config, new_config))


_STAGE_CONFIG = [key for key in spec.Stage.model_fields if key not in ("version", "canary")]


def _stage_config(stage: spec.Stage | None) -> dict[str, Any]:
    if stage is None:
        return {}
    return stage.model_dump(mode="json", by_alias=True, exclude={"version", "canary"},
                            exclude_none=True)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{field: {"from": old, "to": new}} for every field that differs."""
    return {key: {"from": before.get(key), "to": after.get(key)}
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)}

"""The metrics and params DVC records for an artifact a dvc.yaml stage produced.

A stage's metrics files are its own `metrics:` outputs (`dvc stage add -M`) and the top-level
`metrics:` entries of dvc.yaml that the stage outputs; its params are what dvc.lock recorded
for it. An artifact DVC did not produce in a stage (`dvc add`) has no metrics DVC records:
whatever its manifest says is all there is.
"""

from __future__ import annotations

import json
import math
import posixpath
from typing import Any

import yaml

from reconciler.diagnostics import ReconcilerError
from reconciler.dvc.records import StageLineage
from reconciler.limits import MAX_FILE_BYTES
from reconciler.loader import expands_past, too_deep
from reconciler.paths import escapes, plain_path
from reconciler.source import FileProblem, Source

MAX_KEYS = 1000  # metrics or params of one version: an alias bomb must not run for ever


def yaml_data(path: str, raw: bytes | None) -> dict[str, Any]:
    """A small YAML mapping as DVC reads it (PyYAML's safe loader), refusing what could hurt:
    {} for what is too large, deep or aliased; ReconcilerError for what is not YAML."""
    if (raw is None or len(raw) > MAX_FILE_BYTES or too_deep(raw) is not None
            or expands_past(raw)):
        return {}
    try:
        data = yaml.load(raw, Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError):
        raise ReconcilerError(f"{path}: not valid YAML") from None
    return data if isinstance(data, dict) else {}


def data(path: str, raw: bytes | None) -> dict[str, Any]:
    """A metrics or params file's mapping: JSON by its name, else YAML ({} when neither)."""
    if raw is not None and path.endswith(".json") and len(raw) <= MAX_FILE_BYTES:
        try:
            loaded = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return yaml_data(path, raw)


def flat(mapping: dict[str, Any]) -> dict[str, Any]:
    """Nested mappings as dotted keys (`train.depth`), as DVC shows params and metrics; at
    most MAX_KEYS of them, at most 8 levels deep."""
    found: dict[str, Any] = {}
    pending: list[tuple[str, Any, int]] = [("", mapping, 0)]
    while pending and len(found) < MAX_KEYS:
        prefix, current, depth = pending.pop(0)
        for key, value in current.items():
            if len(found) + len(pending) >= MAX_KEYS:
                break
            name = f"{prefix}{key}"
            if isinstance(value, dict) and depth < 8:
                pending.append((f"{name}.", value, depth + 1))
            elif isinstance(value, str | int | float | bool) or value is None:
                found[name] = value
    return dict(sorted(found.items()))


def numbers(mapping: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics file, by dotted key (what a gate can compare)."""
    return {key: float(value) for key, value in flat(mapping).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value)}


def _listed(entries: Any) -> list[str]:
    """Paths of a dvc.yaml list of outputs: plain strings or {path: options} entries."""
    paths: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and len(entry) == 1:
            entry = next(iter(entry))
        if isinstance(entry, str) and plain_path(entry):
            paths.append(entry)
    return paths


def top_level_metrics(dvc_yaml: dict[str, Any]) -> list[str]:
    """dvc.yaml's top-level `metrics:` list."""
    return _listed(dvc_yaml.get("metrics"))


def stage_metrics(dvc_yaml: dict[str, Any], stage: str) -> list[str]:
    """The metrics files of a dvc.yaml stage: its `metrics:` outputs, and the top-level
    `metrics:` entries among its outputs."""
    stages = dvc_yaml.get("stages")
    definition = stages.get(stage) if isinstance(stages, dict) else None
    if not isinstance(definition, dict):
        return []
    own = _listed(definition.get("metrics"))
    outputs = set(_listed(definition.get("outs"))) | set(own)
    return own + [p for p in top_level_metrics(dvc_yaml) if p in outputs and p not in own]


class RecordedMetrics(dict[str, float]):
    """The metrics DVC records for a version, by dotted key, and the files they came from."""

    files: tuple[str, ...] = ()


def recorded_metrics(source: Source, lineage: StageLineage | None) -> RecordedMetrics | None:
    """What the metrics files of the stage that produced an artifact say at source's revision;
    None when DVC records none for it (no stage, no metrics files, or none readable)."""
    if lineage is None:
        return None
    folder = posixpath.dirname(lineage.lock_path)
    try:
        dvc_yaml = yaml_data("dvc.yaml", source.read(posixpath.join(folder, "dvc.yaml")))
    except (FileProblem, ReconcilerError):
        return None
    found = RecordedMetrics()
    files = []
    for path in stage_metrics(dvc_yaml, lineage.stage):
        full = posixpath.normpath(posixpath.join(folder, path))
        if escapes(full):
            continue
        try:
            found.update(numbers(data(full, source.read(full))))
        except (FileProblem, ReconcilerError):
            continue
        files.append(full)
    if not files:
        return None
    found.files = tuple(files)
    return found


def recorded_params(lineage: StageLineage | None) -> dict[str, Any]:
    """The params dvc.lock recorded for the stage (file -> key -> value), by dotted key."""
    if lineage is None:
        return {}
    merged: dict[str, Any] = {}
    for values in lineage.params.values():
        if isinstance(values, dict):
            merged.update(flat(values))
    return merged

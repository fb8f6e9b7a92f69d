"""Events: one change to the registry, as diff computes it, apply records it and the audit
commands and plan show it. Plain data, imported without the manifest models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = (
    "environment.created", "environment.updated", "environment.retired",
    "dataset.created", "dataset.updated", "dataset.retired",
    "dataset.version.added", "dataset.version.deprecated", "dataset.version.undeprecated",
    "dataset.version.updated", "dataset.version.removed",
    "model.created", "model.updated", "model.retired",
    "version.added", "version.deprecated", "version.undeprecated", "version.updated",
    "version.removed",
    "lineage.added",
    "stage.assigned", "stage.updated", "stage.removed", "canary.changed",
    "stage.unassigned",  # imported from GTO: an unassignment that changed what served nothing
    "history.rewritten",
    "policy.violated",  # a change landed that validate refuses (pushed past it)
    "render.recorded",  # written with the last chunk (store.render_changes) when a config changes
    "render.removed",  # written so when a config is rendered no more
)


@dataclass(frozen=True)
class Event:
    """One change: what happened (type) to which subject, with its details in payload."""

    type: str
    kind: str                      # Model, Dataset, Environment (or Repository)
    name: str
    version: str | None = None
    environment: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def describe(event: Event, metrics: dict[str, dict[str, dict[str, float]]] | None = None
             ) -> str:
    """An event as one line a reviewer reads (metrics: to show a move's metric deltas)."""
    line = _described(event, metrics)
    imported = event.payload.get("imported")
    return f"{line} [{imported} tag {event.payload.get('tag')}]" if imported else line


def _described(event: Event, metrics: dict[str, dict[str, dict[str, float]]] | None) -> str:
    if event.type.startswith(("stage.", "canary.")):
        return _serving_change(event, metrics)
    payload, version = event.payload, event.version or ""
    if event.type == "version.added":
        numbers = ", ".join(f"{k} {v:g}" for k, v in sorted(payload.get("metrics", {}).items()))
        digest = payload.get("digest", "unpinned")
        size = f", {payload['size']:,} bytes" if isinstance(payload.get("size"), int) else ""
        return f"version {version} added ({digest}{size}{', ' + numbers if numbers else ''})"
    if event.type == "lineage.added":
        how = "derived from" if payload.get("sourceKind") == "Model" else "trained on"
        return f"{version} {how} {payload.get('source')}@{payload.get('sourceVersion')}"
    if event.type == "policy.violated" and "code" in payload:  # any rule validate applies
        return f"landed against {payload.get('code')}: {payload.get('message')}"
    if event.type == "policy.violated":
        return f"violates {payload.get('rule')} for {version}"
    if event.type == "environment.updated":
        return f"environment {event.name}: {', '.join(sorted(payload))} changed"
    if event.type in ("environment.created", "environment.retired"):
        return f"environment {event.name} {event.type.split('.')[1]}"
    if event.type == "version.updated":
        return f"version {version} edited: {', '.join(sorted(payload))} (not allowed)"
    return f"{event.type} {version}".strip()


def _serving_change(event: Event, metrics: dict[str, dict[str, dict[str, float]]] | None
                    ) -> str:
    """stage.assigned, stage.removed, stage.updated, canary.changed as one line."""
    payload = event.payload
    if event.type == "stage.assigned":
        known = (metrics or {}).get(event.name, {})
        return (f"{payload.get('kind', 'promotion')}: {payload.get('from') or '(none)'} -> "
                f"{payload.get('to')}"
                + _deltas(known.get(str(payload.get("from"))), known.get(str(payload.get("to")))))
    if event.type == "stage.removed":
        return f"no longer serves {payload.get('from')}"
    if event.type == "stage.unassigned":
        return "unassigned a version it no longer served"
    if event.type == "canary.changed":
        return f"canary {_canary(payload.get('from'))} -> {_canary(payload.get('to'))}"
    return f"{', '.join(sorted(payload))} changed"


def _deltas(before: dict[str, float] | None, after: dict[str, float] | None) -> str:
    """' (auc 0.91 -> 0.94, +0.03)' for each metric both versions have."""
    if not before or not after:
        return ""
    shared = sorted(before.keys() & after.keys())
    shown = [f"{name} {before[name]:g} -> {after[name]:g}, {after[name] - before[name]:+.4g}"
             for name in shared]
    return f" ({'; '.join(shown)})" if shown else ""


def _canary(state: Any) -> str:
    if not isinstance(state, dict):
        return "(none)" if not state else str(state)
    return f"{state.get('version')} at {state.get('traffic')}%"

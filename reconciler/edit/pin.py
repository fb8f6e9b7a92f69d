"""`pin`: write into each version being added what DVC records for it (digest, and from a
dvc.yaml stage its metrics and params; at a `rev:`, its size), as text edits."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from reconciler.diagnostics import Diagnostic, ReconcilerError, sort_key
from reconciler.edit.text import Edit, apply_edits, json_text, line_after, still_valid
from reconciler.files import write_atomically
from reconciler.gcpause import paused_gc
from reconciler.git.plumbing import has_head
from reconciler.loader import Document
from reconciler.paths import escapes
from reconciler.source import WorkTree
from reconciler.validate import checked_catalog, manifests_to_check

if TYPE_CHECKING:
    from reconciler.catalog import Catalog, Entry
    from reconciler.dvc.records import Output


class PinResult(NamedTuple):
    """Files pin rewrote, and diagnostics for what it could not pin."""

    changed: list[str]
    diagnostics: list[Diagnostic]
    files: int


def pin(root: str, paths: list[str] | None = None) -> PinResult:
    """Write DVC's digest into each version that is being added and has none pinned."""
    from reconciler import catalog as catalog_mod

    only = manifests_to_check(root, paths)
    with paused_gc():
        current = catalog_mod.build(WorkTree(root), only)
    edits: dict[str, list[Edit]] = {}
    for entry in current.versioned():
        if entry.path in current.checked:
            for edit in _pin_edits(current, entry):
                edits.setdefault(entry.path, []).append(edit)
    changed = []
    refused = []
    for path, file_edits in sorted(edits.items()):
        # Through a symlink, edit the file it leads to (inside the repository, or the catalog
        # would have refused to read it), so the link stays a link.
        full = os.path.realpath(os.path.join(current.source.root, path))
        with open(full, encoding="utf-8", newline="") as handle:
            original = handle.read()
        edited = apply_edits(original, file_edits)
        if not still_valid(path, edited):
            refused.append(Diagnostic(path, 1, 1, "YML001",
                                      "pin could not edit this file safely; nothing written",
                                      "add the digest by hand"))
            continue
        write_atomically(full, edited)
        changed.append(path)
    # What is still wrong after pinning, checked exactly as validate checks it (as a change
    # from HEAD): a retrain-only commit that validate accepts, pin accepts too.
    _, remaining = checked_catalog(root, only, None, "HEAD" if has_head(root) else None)
    return PinResult(changed, sorted(set(remaining.diagnostics + refused), key=sort_key),
                     len(current.checked))


def _pin_edits(current: Catalog, entry: Entry[Any]) -> list[Edit]:
    """The edits that pin entry's versions: the newest of each artifact from what DVC records
    now, older ones with `rev:` from what DVC recorded at that revision."""
    from reconciler.catalog import versions

    listed = versions(entry)
    newest = {version.artifact: index for index, version in enumerate(listed)
              if version.rev is None}
    edits = []
    for path, index in newest.items():
        output = current.output(path)
        if listed[index].digest is None and output is not None:
            fields = _recorded_fields(current, entry, index, output)
            edit = digest_edit(entry.doc, index, "versions", output.digest, fields=fields)
            if edit is not None:
                edits.append(edit)
    for index, version in enumerate(listed):  # older versions, from the revision each names
        if version.rev is not None and version.digest is None and not escapes(version.artifact):
            try:
                _, output = current.output_at(version.rev, version.artifact)
            except ReconcilerError:
                continue  # validate says so (ART008)
            if output is not None:
                edit = digest_edit(entry.doc, index, "versions", output.digest,
                                   None if version.size is not None else output.size)
                if edit is not None:
                    edits.append(edit)
    return edits


def _recorded_fields(current: Catalog, entry: Entry[Any], index: int,
                     output: Output) -> dict[str, Any]:
    """What DVC records for a model version that says none of it (a field the version says
    is left as it is)."""
    from reconciler import spec

    if not isinstance(entry.manifest, spec.Model):
        return {}
    node = entry.doc.node_at(("spec", "versions", index))
    keys = {k.value for k, _ in node.value} if isinstance(node, yaml.MappingNode) else set()
    return {name: value for name, value in recorded_fields(current, output).items()
            if name not in keys}


def recorded_fields(current: Catalog, output: Output) -> dict[str, Any]:
    """What DVC records for an artifact that a model version takes: `metrics` from its
    stage's metrics files, `params` from dvc.lock (each only when DVC records some)."""
    from reconciler.dvc import metrics as dvcmetrics

    fields: dict[str, Any] = {}
    metrics = current.recorded_metrics(output)
    if metrics:
        fields["metrics"] = dict(metrics)
    params = dvcmetrics.recorded_params(output.lineage)
    if params:
        fields["params"] = params
    return fields


def digest_edit(doc: Document, version_index: int, section: str, digest: str,
                size: int | None = None, fields: dict[str, Any] | None = None) -> Edit | None:
    """The edit that adds `digest: ...` (and `size: ...` when given, and each of fields, a
    mapping written as JSON, which YAML reads alike) to spec.versions[version_index] of doc."""
    node = doc.node_at(("spec", section, version_index))
    if not isinstance(node, yaml.MappingNode):
        return None
    more = {**({} if size is None else {"size": size}), **(fields or {})}
    if node.flow_style:
        # `{version: "1", artifact: a}`: add before the closing brace, quoted for flow context.
        end = node.end_mark
        added = "".join(f", {key}: {json_text(value)}" for key, value in more.items())
        return Edit(end.line, end.column - 1, f", digest: \"{digest}\"{added}")
    artifact = next(((k, v) for k, v in node.value if k.value == "artifact"), None)
    anchor_key, anchor_value = artifact if artifact else node.value[-1]
    indent = anchor_key.start_mark.column
    added = "".join(" " * indent + f"{key}: {json_text(value)}\n"
                    for key, value in more.items())
    return Edit(line_after(anchor_value), 0, " " * indent + f"digest: {digest}\n" + added)

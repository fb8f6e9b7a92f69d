"""`promote` and `rollback`: what an environment serves, edited where its approvers own it.

A stage is edited where the catalog read it: the Environment's `serves` (what `init` writes
and `migrate` moves to), or, for an environment without approvers still said the earlier way,
the Model's `stages`. A new stage goes into the Environment's `serves`. Only the keys that
change are rewritten: comments, order and the stage's other keys (replicas, resources) stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from reconciler.catalog import model_named
from reconciler.diagnostics import ReconcilerError, printable, some_of
from reconciler.edit.change import Change, file_text, finish, work_tree
from reconciler.edit.text import (
    Edit,
    adding_fields,
    apply_edits,
    flow,
    key,
    line_after,
    replacing,
    scalar,
    source_text,
)

if TYPE_CHECKING:
    from reconciler import spec
    from reconciler.catalog import Catalog, Entry
    from reconciler.loader import Document


def promote(root: str, model: str, version: str, *, to: str, canary: int | None = None,
            commit: bool = False, dry_run: bool = False) -> Change:
    """Serve version of model in environment `to`; with canary, as the canary taking that
    percent of the traffic beside what is served. Promoting the canary's version ends it."""
    current = work_tree(root, model)
    entry = model_named(current, model)
    if version not in {v.version for v in entry.manifest.spec.versions}:
        raise ReconcilerError(f"model '{printable(model)}' has no version "
                              f"'{printable(version)}' (register it first)")
    edited = _serve(root, current, entry, to, version, canary)
    what = (f"canary {model} {version} at {canary}% in {to}" if canary is not None
            else f"promote {model} {version} to {to}")
    return finish(root, current, edited, what, checked=[entry.path], commit=commit,
                  dry_run=dry_run)


def rollback(root: str, model: str, *, env: str, to: str | None = None, commit: bool = False,
             dry_run: bool = False) -> Change:
    """Serve again what env served before (to: a version it served, by default the one before
    the current one on the registry branch's history)."""
    from reconciler import servinghistory
    from reconciler.validate import registry_rev

    current = work_tree(root, model)
    entry = model_named(current, model)
    stage = entry.manifest.spec.stages.get(env)
    if stage is None:
        raise ReconcilerError(f"environment '{printable(env)}' serves no "
                              f"'{printable(model)}': nothing to roll back")
    if to is None:
        rev = registry_rev(root) or "HEAD"
        to = servinghistory.served_before(root, rev, model, env, stage.version)
        if to is None:
            raise ReconcilerError(f"'{printable(env)}' served no other version of "
                                  f"'{printable(model)}' on {rev}'s history: name one with --to")
    edited = _serve(root, current, entry, env, to, None)
    return finish(root, current, edited, f"rollback {model} to {to} in {env}",
                  checked=[entry.path], commit=commit, dry_run=dry_run)


def _serve(root: str, current: Catalog, entry: Entry[spec.Model], env: str, version: str,
           canary: int | None) -> dict[str, str | None]:
    """The edited file that makes env serve version of the model (or, with canary, serve it
    as the canary): the stage edited where it is said, or added to the Environment."""
    environment = current.environments.get(env)
    if environment is None:
        raise ReconcilerError(f"no environment '{printable(env)}' (known: "
                              f"{some_of(current.environments)})")
    stage = entry.manifest.spec.stages.get(env)
    doc: Document
    if env in entry.served_from:
        doc, loc = entry.served_from[env], ("spec", "serves", entry.name)
    elif stage is not None:
        doc, loc = entry.doc, ("spec", "stages", env)
    else:
        if canary is not None:
            raise ReconcilerError(f"'{printable(env)}' serves no '{entry.name}' yet: promote "
                                  "a version first, then add a canary beside it")
        return {environment.path: _added_stage(root, environment.doc, entry.name, version)}
    if stage is not None and _already(stage, version, canary):
        return {}  # nothing to edit: the file stays as it is written, quotes and all
    text = file_text(root, doc.path)
    node = doc.node_at(loc)
    if not isinstance(node, yaml.MappingNode) or stage is None:
        raise ReconcilerError(f"{doc.path}: the stage of '{entry.name}' is not a mapping; "
                              "edit it by hand")
    return {doc.path: apply_edits(text, _stage_edits(text, node, stage, version, canary))}


def _already(stage: spec.Stage, version: str, canary: int | None) -> bool:
    """Whether the stage serves version already as asked (its canary, with that traffic)."""
    if canary is None:
        return stage.version == version and stage.canary is None
    return (stage.canary is not None and stage.canary.version == version
            and stage.canary.traffic == canary)


def _stage_edits(text: str, node: yaml.MappingNode, stage: spec.Stage, version: str,
                 canary: int | None) -> list[Edit]:
    """The edits that make a stage serve version (or give it that canary)."""
    pairs = {k.value: (k, v) for k, v in node.value}
    new_canary = None if canary is None else flow({"version": scalar(version),
                                                   "traffic": str(canary)})
    ends_canary = canary is None and stage.canary is not None and stage.canary.version == version
    if node.flow_style:
        fields = {name: source_text(text, value) for name, (_, value) in pairs.items()}
        if canary is None:
            fields["version"] = scalar(version)
        if new_canary is not None:
            fields["canary"] = new_canary
        elif ends_canary:
            fields.pop("canary", None)
        return [replacing(node, flow(fields))]
    edits = []
    if canary is None:
        edits.append(replacing(pairs["version"][1], scalar(version)))
    if "canary" in pairs and (new_canary is not None or ends_canary):
        canary_key, canary_value = pairs["canary"]
        replacement = (" " * canary_key.start_mark.column + f"canary: {new_canary}\n"
                       if new_canary is not None else "")
        edits.append(Edit(canary_key.start_mark.line, 0, replacement,
                          line_after(canary_value), 0))
    elif new_canary is not None:
        edits.append(adding_fields(node, {"canary": new_canary}))
    return edits


def _added_stage(root: str, doc: Document, model: str, version: str) -> str:
    """The Environment's file with model served at version, in `serves`."""
    text = file_text(root, doc.path)
    serves = doc.node_at(("spec", "serves"))
    stage = flow({"version": scalar(version)})
    if isinstance(serves, yaml.MappingNode):
        return apply_edits(text, [adding_fields(serves, {model: stage})])
    spec_node = doc.node_at(("spec",))
    if (serves is not None or not isinstance(spec_node, yaml.MappingNode)
            or spec_node.flow_style or not spec_node.value):
        raise ReconcilerError(f"{doc.path}: its spec is not a block mapping with a `serves` "
                              f"mapping; add `{key(model)}: {stage}` to `serves` by hand")
    indent = " " * spec_node.value[0][0].start_mark.column
    return apply_edits(text, [Edit(line_after(spec_node), 0,
                                   f"{indent}serves:\n{indent}  {key(model)}: {stage}\n")])

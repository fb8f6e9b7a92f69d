"""`register`, `deprecate` and `retire`: a Model's (or Dataset's) versions and the model itself,
edited in its own file (which its owners own), with what DVC records filled in, never typed.

- register adds a version: its digest from DVC's record of the artifact now; from a dvc.yaml
  stage, its metrics and params too. The version defaults to the next one of the newest
  (semantic versioning: MAJOR.MINOR.PATCH, `--bump patch` by default; a model's first version
  is 0.1.0), the artifact and the parent to the newest version's. A new model gets its own
  file, `manifests/models/<name>.yaml`.
- deprecate marks a version `deprecated: true`: it stays in the record and in the DVC remote,
  and may no longer be promoted (POL004).
- retire deletes the Model's file. apply records `model.retired`; nothing is erased: the
  audit trail, lineage and the versions' bytes stay. An environment that still serves the
  model stops the retirement (REF008): roll it out of every environment first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from reconciler.catalog import model_named
from reconciler.diagnostics import ReconcilerError, printable
from reconciler.edit.change import Change, file_text, finish, work_tree
from reconciler.edit.text import (
    Edit,
    adding_fields,
    apply_edits,
    json_text,
    key,
    line_after,
    replacing,
    scalar,
)
from reconciler.limits import is_dns_label, version_order
from reconciler.paths import MANIFEST_DIR

if TYPE_CHECKING:
    from reconciler import spec
    from reconciler.catalog import Catalog, Entry

BUMPS = ("major", "minor", "patch")
FIRST_VERSION = "0.1.0"
_SEMVER = re.compile(r"(v?)(\d+)\.(\d+)\.(\d+)")


def register(root: str, model: str, *, artifact: str | None = None, version: str | None = None,
             bump: str = "patch", parent: str | None = None,
             trained_on: list[str] | None = None, description: str | None = None,
             framework: str | None = None, commit: bool = False, dry_run: bool = False
             ) -> Change:
    """Add a version of model (a new Model when there is none) pinned to what DVC records for
    its artifact now."""
    current = work_tree(root, model)
    entry = current.models.get(model)
    listed = list(entry.manifest.spec.versions) if entry is not None else []
    new = _next_version(current, "model", model, listed, artifact, version, bump)
    if parent is None and listed:
        parent = max((v for v in listed if v.artifact == new.artifact),
                     key=lambda v: version_order(v.version),
                     default=max(listed, key=lambda v: version_order(v.version))).version
    fields = _version_fields(current, new, parent, trained_on or [], description)
    if entry is None:
        if framework is None:
            raise ReconcilerError(f"'{printable(model)}' is a new model: give its --framework")
        path = _new_file(current, "models", model)
        edited: dict[str, str | None] = {path: _new_manifest("Model", model, fields,
                                                             framework=framework)}
    else:
        edited = {entry.path: _added_version(root, entry, fields)}
    return finish(root, current, edited, f"register {model} {new.version}",
                  checked=sorted(edited), commit=commit, dry_run=dry_run)


def register_dataset(root: str, dataset: str, *, artifact: str | None = None,
                     version: str | None = None, bump: str = "patch",
                     description: str | None = None, commit: bool = False,
                     dry_run: bool = False) -> Change:
    """Add a version of dataset (a new Dataset when there is none) pinned to what DVC records
    for its artifact now."""
    current = work_tree(root)
    entry = current.datasets.get(dataset)
    listed = list(entry.manifest.spec.versions) if entry is not None else []
    new = _next_version(current, "dataset", dataset, listed, artifact, version, bump)
    fields = {"version": scalar(new.version), "artifact": scalar(new.artifact),
              "digest": new.digest}
    if description is not None:
        fields["description"] = scalar(description)
    if entry is None:
        path = _new_file(current, "datasets", dataset)
        edited: dict[str, str | None] = {path: _new_manifest("Dataset", dataset, fields)}
    else:
        edited = {entry.path: _added_version(root, entry, fields)}
    return finish(root, current, edited, f"register dataset {dataset} {new.version}",
                  checked=sorted(edited), commit=commit, dry_run=dry_run)


class _NewVersion(NamedTuple):
    version: str
    artifact: str
    digest: str


def _next_version(current: Catalog, kind: str, name: str,
                  listed: Sequence[spec.ArtifactVersion],
                  artifact: str | None, version: str | None, bump: str) -> _NewVersion:
    """The version to add: its name (the next one by default), its artifact (the newest
    version's by default) and the digest DVC records for it now, refused when it is not new."""
    newest = max(listed, key=lambda v: version_order(v.version), default=None)
    artifact = artifact or (newest.artifact if newest is not None else None)
    if artifact is None:
        raise ReconcilerError(f"'{printable(name)}' is a new {kind}: name its artifact with "
                              "--artifact" + (" (and its --framework)" if kind == "model" else ""))
    version = version or (_bumped(newest.version, bump) if newest is not None else FIRST_VERSION)
    if version in {v.version for v in listed}:
        raise ReconcilerError(f"'{printable(name)}' already has version '{printable(version)}'")
    output = current.output(artifact)
    if output is None:
        raise ReconcilerError(f"DVC records nothing for '{printable(artifact)}': `dvc add` it, "
                              "or run the stage that makes it (`dvc repro`), first")
    same = [v for v in listed if v.digest == output.digest]
    if same:
        raise ReconcilerError(f"these bytes of '{printable(artifact)}' are already version "
                              f"'{same[0].version}' of '{name}': make new ones first")
    return _NewVersion(version, artifact, output.digest)


def _new_file(current: Catalog, folder: str, name: str) -> str:
    """The file a new manifest gets: manifests/<folder>/<name>.yaml, which must not exist;
    the name must be a DNS-1123 label, as every manifest's is (it names the file)."""
    if not is_dns_label(name):
        raise ReconcilerError(f"'{printable(name)}' is not a DNS-1123 label (lower-case "
                              "letters, digits and '-', starting and ending with a letter or "
                              "digit, at most 63 characters)")
    path = f"{MANIFEST_DIR}/{folder}/{name}.yaml"
    if current.source.exists(path):
        raise ReconcilerError(f"{path} exists and holds no '{printable(name)}'")
    return path


def deprecate(root: str, model: str, version: str, *, commit: bool = False,
              dry_run: bool = False) -> Change:
    """Mark a version of model deprecated."""
    current = work_tree(root, model)
    entry = model_named(current, model)
    listed = [v.version for v in entry.manifest.spec.versions]
    if version not in listed:
        raise ReconcilerError(f"model '{printable(model)}' has no version '{printable(version)}'")
    if entry.manifest.spec.versions[listed.index(version)].deprecated:
        raise ReconcilerError(f"{model} {version} is deprecated already")
    node = entry.doc.node_at(("spec", "versions", listed.index(version)))
    if not isinstance(node, yaml.MappingNode):
        raise ReconcilerError(f"{entry.path}: version {version} is not a mapping; edit it by hand")
    text = file_text(root, entry.path)
    pairs = {k.value: v for k, v in node.value}
    if "deprecated" in pairs:  # `deprecated: false` said outright
        edited = apply_edits(text, [replacing(pairs["deprecated"], "true")])
    else:
        edited = apply_edits(text, [adding_fields(node, {"deprecated": "true"})])
    return finish(root, current, {entry.path: edited}, f"deprecate {model} {version}",
                  checked=[entry.path], commit=commit, dry_run=dry_run)


def retire(root: str, model: str, *, commit: bool = False, dry_run: bool = False) -> Change:
    """Retire model: delete its Model file (see the module's docstring for what stays)."""
    current = work_tree(root)
    entry = model_named(current, model)
    others = [e.name for e in [*current.versioned(), *current.environments.values()]
              if e.path == entry.path and e is not entry]
    if others:
        raise ReconcilerError(f"{entry.path} also holds {', '.join(sorted(others))}: move the "
                              f"Model '{model}' to a file of its own first")
    served = [entry.at(("spec", "stages", env), "REF008",
                       f"'{env}' still serves '{model}': retired, it would serve an unknown "
                       "model there", f"roll it out of '{env}' first, then retire it")
              for env in sorted(entry.manifest.spec.stages)]
    if served:
        return Change(f"retire {model}", [entry.path], [], served, {}, False)
    return finish(root, current, {entry.path: None}, f"retire {model}", checked=None,
                  commit=commit, dry_run=dry_run)


def _bumped(newest: str, bump: str) -> str:
    """The next version after newest by semantic versioning's rule for bump (a `v` prefix, as
    GTO writes versions, is kept)."""
    if bump not in BUMPS:
        raise ReconcilerError(f"--bump must be one of {', '.join(BUMPS)}, not {bump!r}")
    found = _SEMVER.match(newest)
    if found is None:
        raise ReconcilerError(f"the newest version '{printable(newest)}' is not "
                              "MAJOR.MINOR.PATCH: name the new one with --version")
    prefix, (major, minor, patch) = found.group(1), (int(n) for n in found.groups()[1:])
    if bump == "major":
        return f"{prefix}{major + 1}.0.0"
    if bump == "minor":
        return f"{prefix}{major}.{minor + 1}.0"
    return f"{prefix}{major}.{minor}.{patch + 1}"


def _version_fields(current: Catalog, new: _NewVersion, parent: str | None,
                    trained_on: list[str], description: str | None) -> dict[str, str]:
    """A new model version's fields as YAML text: what it is, and what DVC records for it."""
    from reconciler.edit.pin import recorded_fields

    fields = {"version": scalar(new.version), "artifact": scalar(new.artifact),
              "digest": new.digest}
    output = current.output(new.artifact)
    if parent is not None:
        fields["parent"] = scalar(parent)
    if trained_on:
        refs = []
        for ref in trained_on:
            name, at, dataset_version = ref.rpartition("@")
            if not at or not name or not dataset_version:
                raise ReconcilerError(f"--trained-on '{printable(ref)}' is not DATASET@VERSION")
            refs.append("{dataset: " + scalar(name) + ", version: "
                        + scalar(dataset_version) + "}")
        fields["trainedOn"] = "[" + ", ".join(refs) + "]"
    if output is not None:
        for name, value in recorded_fields(current, output).items():
            fields[name] = json_text(value, sort_keys=True)
    if description is not None:
        fields["description"] = scalar(description)
    return fields


def _added_version(root: str, entry: Entry[Any], fields: dict[str, str]) -> str:
    """The manifest's file with a version appended to its versions."""
    node = entry.doc.node_at(("spec", "versions"))
    if not isinstance(node, yaml.SequenceNode) or node.flow_style or not node.value:
        raise ReconcilerError(f"{entry.path}: its versions are not a block list; add the "
                              "version by hand")
    text = file_text(root, entry.path)
    dash = node.value[0].start_mark.column - 2  # items are `- key: value`
    lead, inner = " " * max(dash, 0), " " * (max(dash, 0) + 2)
    lines = [f"{lead}- {key(name)}: {value}\n" if index == 0 else f"{inner}{key(name)}: {value}\n"
             for index, (name, value) in enumerate(fields.items())]
    return apply_edits(text, [Edit(line_after(node), 0, "".join(lines))])


def _new_manifest(kind: str, name: str, fields: dict[str, str], *,
                  framework: str | None = None) -> str:
    """A new Model or Dataset manifest with its first version."""
    version = "".join(f"      {key(field)}: {value}\n" for field, value in list(fields.items())[1:])
    framed = f"  framework: {scalar(framework)}\n" if framework is not None else ""
    return (f"apiVersion: reconciler/v1\nkind: {kind}\nmetadata:\n  name: {key(name)}\n"
            f"spec:\n{framed}  versions:\n    - version: {fields['version']}\n{version}")

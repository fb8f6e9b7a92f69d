"""Move every Model's `stages` into its Environments' `serves`, as text edits.

The earlier layout said what each environment serves in the Model's file, which the
environment's approvers do not own (LAY001). This moves each stage, its text as written
(comments inside it included), under `serves:` of the Environment's file, and removes `stages`
from the Model. The result is checked before anything is written: every model must be served
exactly as before, so apply and the audit see no change at the commit that moves the files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import yaml

from reconciler import catalog as catalog_mod
from reconciler import loader, serving, spec
from reconciler.catalog import Catalog, Entry
from reconciler.diagnostics import Diagnostic, sort_key
from reconciler.edit.text import line_after
from reconciler.files import write_all
from reconciler.gcpause import paused_gc
from reconciler.loader import Document


class MigrateResult(NamedTuple):
    """What migrate moved: (model, environment) of each stage, the files it rewrote, or the
    diagnostics that stopped it (then nothing was written)."""

    moved: list[tuple[str, str]]
    changed: list[str]
    diagnostics: list[Diagnostic]


def migrate(root: str, *, dry_run: bool = False) -> MigrateResult:
    """Move every Model's stages into its Environments' `serves`, writing every file or none."""
    with paused_gc():
        moved = plan_move(catalog_of(root))
    if isinstance(moved, list):
        return MigrateResult([], [], sorted(moved, key=sort_key))
    if not dry_run:
        write_all([(os.path.join(root, path), text) for path, text in sorted(moved.files.items())])
    return MigrateResult(moved.stages, sorted(moved.files), [])


@dataclass
class Moved:
    """What migrate changes: the new text of each file, and the stages it moved."""

    files: dict[str, str] = field(default_factory=dict)  # path -> new text
    stages: list[tuple[str, str]] = field(default_factory=list)  # (model, environment)


class Refused(Exception):
    """migrate cannot move the stages safely: the diagnostic says where and why."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def plan_move(found: Catalog) -> Moved | list[Diagnostic]:
    """The edits that move every stage a Model's file says into its Environment's file, or
    why they cannot be made (nothing is to be written then)."""
    errors = [d for d in found.diagnostics if d.is_error]
    if errors:
        return errors
    try:
        return _move(found)
    except Refused as refused:
        return [refused.diagnostic]


def _move(found: Catalog) -> Moved:
    texts: dict[str, list[str]] = {}
    removals: dict[str, list[tuple[int, int]]] = {}  # path -> [start, end) lines to drop
    additions: dict[str, list[str]] = {}  # environment name -> `model: stage` blocks
    moved = Moved()
    for name, entry in sorted(found.models.items()):
        node = entry.doc.node_at(("spec", "stages"))
        if node is None:
            continue
        _lines(found, entry.path, texts)
        _require_block(entry.doc, ("spec",))
        removals.setdefault(entry.path, []).append(_key_lines(entry.doc, ("spec", "stages")))
        assert isinstance(node, yaml.MappingNode)
        for key, value in node.value:
            env_name = str(key.value)
            if env_name not in found.environments:
                raise Refused(entry.at(("spec", "stages", env_name), "REF004",
                                       f"unknown environment '{env_name}'", key=True))
            additions.setdefault(env_name, []).append(
                _entry_text(entry.path, texts[entry.path], name, value))
            moved.stages.append((name, env_name))
    edits: dict[str, list[tuple[int, str]]] = {}  # path -> [(line, text to insert)]
    for env_name, blocks in sorted(additions.items()):
        env = found.environments[env_name]
        _lines(found, env.path, texts)
        edits.setdefault(env.path, []).append(_serves_insertion(env, blocks))
    for path in sorted(texts):
        moved.files[path] = _edited(texts[path], removals.get(path, []), edits.get(path, []))
    _check_same_serving(found, moved)
    return moved


def _lines(found: Catalog, path: str, texts: dict[str, list[str]]) -> None:
    if path not in texts:
        texts[path] = found.source.read(path).decode("utf-8").splitlines(keepends=True)
        if texts[path] and not texts[path][-1].endswith("\n"):
            texts[path][-1] += "\n"


def _require_block(doc: Document, loc: loader.Loc) -> None:
    """Text edits by line need the mapping at loc in block style."""
    node = doc.node_at(loc)
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        line, col = doc.position(loc)
        raise Refused(Diagnostic(
            doc.path, line, col, "LAY004", f"{'.'.join(map(str, loc))} is written in flow "
            "style ({...}): migrate edits block style only",
            "write it one key per line, then run migrate again"))


def _key_lines(doc: Document, loc: loader.Loc) -> tuple[int, int]:
    """[first, after last) lines of the key at loc and its value."""
    parent = doc.node_at(loc[:-1])
    assert isinstance(parent, yaml.MappingNode)
    key, value = next((k, v) for k, v in parent.value if k.value == loc[-1])
    return key.start_mark.line, line_after(value)


def _entry_text(path: str, lines: list[str], name: str, value: yaml.Node) -> str:
    """`name: <stage>` as the stage was written, its lines unindented (re-indented later)."""
    if not isinstance(value, yaml.MappingNode) or value.flow_style:
        start, end = value.start_mark, value.end_mark
        if start.line != end.line:
            raise Refused(Diagnostic(path, start.line + 1, start.column + 1, "LAY004",
                                     "a stage in flow style over several lines",
                                     "write it on one line or in block style"))
        return f"{name}: {lines[start.line][start.column:end.column]}\n"
    block = lines[value.start_mark.line:line_after(value)]
    indent = value.start_mark.column
    body = "".join(line[indent:] if line[:indent].strip() == "" else line.lstrip()
                   for line in block)
    return f"{name}:\n" + "".join(f"  {line}" if line.strip() else line
                                  for line in body.splitlines(keepends=True))


def _serves_insertion(env: Entry[spec.Environment], blocks: list[str]) -> tuple[int, str]:
    """(line, text): the blocks added to the Environment's `serves` (made when absent)."""
    _require_block(env.doc, ("spec",))
    spec_node = env.doc.node_at(("spec",))
    assert isinstance(spec_node, yaml.MappingNode)
    indent = spec_node.value[0][0].start_mark.column
    serves = env.doc.node_at(("spec", "serves"))
    if serves is None:
        header, inner, line = " " * indent + "serves:\n", indent + 2, line_after(spec_node)
    else:
        _require_block(env.doc, ("spec", "serves"))
        assert isinstance(serves, yaml.MappingNode)
        header, inner = "", serves.value[0][0].start_mark.column
        line = line_after(serves)
    text = "".join(" " * inner + row if row.strip() else row
                   for block in blocks for row in block.splitlines(keepends=True))
    return line, header + text


def _edited(lines: list[str], removals: list[tuple[int, int]],
            insertions: list[tuple[int, str]]) -> str:
    """lines with the line ranges removed and the texts inserted (positions are original)."""
    out = []
    dropped = {n for start, end in removals for n in range(start, end)}
    inserted = dict(insertions)
    for number in range(len(lines) + 1):
        if number in inserted:
            out.append(inserted[number])
        if number < len(lines) and number not in dropped:
            out.append(lines[number])
    return "".join(out)


def _check_same_serving(found: Catalog, moved: Moved) -> None:
    """Every model is served as before, read from the edited files; else nothing is written."""
    # Unedited models come folded already: folding them again changes nothing.
    models = {name: e.manifest for name, e in found.models.items()}
    environments = {name: e.manifest for name, e in found.environments.items()}
    edited: set[str] = set()
    for path, text in moved.files.items():
        loaded = loader.load(path, text.encode("utf-8"))
        parsed = [spec.parse(doc.data) for doc in loaded.documents]
        if loaded.diagnostics or any(isinstance(p, list) for p in parsed):
            raise Refused(Diagnostic(path, 1, 1, "LAY004", "migrate could not edit this file "
                                     "safely; nothing written", "move its stages by hand"))
        for manifest in parsed:
            if isinstance(manifest, spec.Model):
                models[manifest.metadata.name] = manifest
                edited.add(manifest.metadata.name)
            elif isinstance(manifest, spec.Environment):
                environments[manifest.metadata.name] = manifest
    after = serving.fold(models, environments)
    for name, entry in found.models.items():
        left = name in edited and models[name].spec.stages
        if after[name].spec.stages != entry.manifest.spec.stages or left:
            raise Refused(Diagnostic(entry.path, 1, 1, "LAY004", "migrate could not move the "
                                     f"stages of '{name}' exactly; nothing written",
                                     "move them by hand"))


def catalog_of(root: str) -> Catalog:
    """The work tree's catalog, as migrate reads it."""
    from reconciler.source import WorkTree

    return catalog_mod.build(WorkTree(root))

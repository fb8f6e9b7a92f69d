"""Write missing digests into manifests as text edits, so comments and layout stay as they were."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import yaml

from reconciler import loader
from reconciler.loader import Document


class Edit(NamedTuple):
    """Insert text at a 0-based (line, col) of a file."""

    line: int
    col: int
    text: str


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
        added = "".join(f", {key}: {json.dumps(value)}" for key, value in more.items())
        return Edit(end.line, end.column - 1, f", digest: \"{digest}\"{added}")
    artifact = next(((k, v) for k, v in node.value if k.value == "artifact"), None)
    anchor_key, anchor_value = artifact if artifact else node.value[-1]
    indent = anchor_key.start_mark.column
    end = anchor_value.end_mark
    # A block value ends at the start of the next line; the insertion goes after its last line.
    ends_at_line_start = end.column == 0 and end.line > anchor_key.start_mark.line
    last_line = end.line - 1 if ends_at_line_start else end.line
    added = "".join(" " * indent + f"{key}: {json.dumps(value)}\n" for key, value in more.items())
    return Edit(last_line + 1, 0, " " * indent + f"digest: {digest}\n" + added)


def apply_edits(text: str, edits: list[Edit]) -> str:
    """text with every edit applied (bottom-up, so earlier positions stay valid)."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    for edit in sorted(edits, reverse=True):
        insert = edit.text.replace("\n", newline)
        if edit.col == 0 and edit.line >= len(lines):
            lines.append(insert)
        elif edit.col == 0:
            lines.insert(edit.line, insert)
        else:
            line = lines[edit.line]
            lines[edit.line] = line[:edit.col] + insert + line[edit.col:]
    return "".join(lines)


def still_valid(path: str, text: str) -> bool:
    """Whether edited text still loads cleanly (a guard before anything is written)."""
    return not loader.load(path, text.encode("utf-8")).diagnostics

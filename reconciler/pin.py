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
    added = "".join(" " * indent + f"{key}: {json.dumps(value)}\n" for key, value in more.items())
    return Edit(line_after(anchor_value), 0, " " * indent + f"digest: {digest}\n" + added)


def line_after(node: yaml.Node) -> int:
    """The 0-based line after node's last line, where an edit inserts after it. A block
    value ends at the start of the next line, and a block collection where the next token
    starts (maybe the next key's line): its last value's end is what counts."""
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style \
            and node.value:
        last = node.value[-1]
        return line_after(last[1] if isinstance(last, tuple) else last)
    end = node.end_mark
    return end.line if end.column == 0 and end.line > node.start_mark.line else end.line + 1


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

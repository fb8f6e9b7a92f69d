"""Manifests changed as text: insertions at a position, applied bottom-up, and the guard that
the result still loads. Comments, key order and layout stay as the author wrote them, which a
YAML round trip would lose (pin, migrate and the registry commands all edit this way).
"""

from __future__ import annotations

from typing import NamedTuple

import yaml

from reconciler import loader


class Edit(NamedTuple):
    """Insert text at a 0-based (line, col) of a file."""

    line: int
    col: int
    text: str


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

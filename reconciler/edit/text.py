"""Manifests changed as text: insertions and replacements at positions, applied bottom-up, and
the guard that the result still loads. Comments, key order and layout stay as the author wrote
them, which a YAML round trip would lose (pin, migrate and the registry commands edit this way).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import yaml

from reconciler import loader
from reconciler.diagnostics import ReconcilerError, printable


class Edit(NamedTuple):
    """Insert text at a 0-based (line, col) of a file; with an end, replace what lies from
    (line, col) up to (end_line, end_col) with it (text "" deletes)."""

    line: int
    col: int
    text: str
    end_line: int = -1
    end_col: int = -1


def replacing(node: yaml.Node, text: str) -> Edit:
    """The edit that puts text where node is (a scalar, or a flow collection)."""
    start, end = node.start_mark, node.end_mark
    return Edit(start.line, start.column, text, end.line, end.column)


def deleting_lines(first: int, after_last: int) -> Edit:
    """The edit that removes lines first..after_last-1 (0-based) whole."""
    return Edit(first, 0, "", after_last, 0)


def scalar(value: str | int | float | bool) -> str:
    """A value as a YAML scalar that reads back as itself: strings double-quoted (a version
    "1.10" stays a string), numbers and booleans plain (see json_text)."""
    return json_text(value)


def json_text(value: Any, *, sort_keys: bool = False) -> str:
    """A JSON value (string, number, boolean, list or mapping) as YAML text that reads back as
    itself: JSON's own, which YAML reads alike, with every character that is not printable
    written as a YAML escape (written raw, YAML folds a NEL into a space and refuses DEL or a
    C1 control). A string holding a lone surrogate (bytes that were not UTF-8, as Python
    decodes a command line's) is no text any file can hold: refused."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=sort_keys)
    if any("\ud800" <= char <= "\udfff" for char in text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ReconcilerError(f"{printable(shown)} is not UTF-8 text")
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    """char as a YAML double-quoted escape."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


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
        if edit.end_line >= 0:
            tail = lines[edit.end_line][edit.end_col:] if edit.end_line < len(lines) else ""
            lines[edit.line:edit.end_line + 1] = [lines[edit.line][:edit.col] + insert + tail]
        elif edit.col == 0 and edit.line >= len(lines):
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


def key(name: str) -> str:
    """A mapping key as YAML text that reads back as name: plain when it is a plain string
    (`churn:`), double-quoted otherwise (`"null":`, `"1.0":`)."""
    try:
        plain = yaml.safe_load(f"{name}: 0")
    except yaml.YAMLError:
        plain = None
    return name if isinstance(plain, dict) and list(plain) == [name] else scalar(name)


def flow(fields: dict[str, str]) -> str:
    """A flow mapping of keys and values already written as YAML text."""
    return "{" + ", ".join(f"{key(k)}: {v}" for k, v in fields.items()) + "}"


def source_text(text: str, node: yaml.Node) -> str:
    """The text of node as the file writes it (a value kept as it was when a mapping is
    written again)."""
    lines = text.splitlines(keepends=True)
    start, end = node.start_mark, node.end_mark
    if start.line == end.line:
        return lines[start.line][start.column:end.column]
    return "".join([lines[start.line][start.column:], *lines[start.line + 1:end.line],
                    lines[end.line][:end.column] if end.line < len(lines) else ""]).rstrip()


def adding_fields(node: yaml.MappingNode, fields: dict[str, str]) -> Edit:
    """The edit that adds fields (values already YAML text) to a mapping: a line each after its
    last entry (block), or before its closing brace (flow)."""
    if node.flow_style:
        end = node.end_mark
        lead = ", " if node.value else ""
        return Edit(end.line, end.column - 1,
                    lead + ", ".join(f"{key(k)}: {v}" for k, v in fields.items()))
    indent = " " * node.value[0][0].start_mark.column
    return Edit(line_after(node), 0, "".join(f"{indent}{key(k)}: {v}\n"
                                            for k, v in fields.items()))

"""Strict YAML: bytes -> plain data plus the node tree that locates every value.

PyYAML's C parser builds the node tree; the conversion to plain data is ours, so that everything
YAML 1.1 makes ambiguous (yes/no booleans, octal and base-60 numbers, duplicate keys, aliases,
custom tags) is rejected with a line and column instead of being silently reinterpreted.
"""

from __future__ import annotations

import re
import sys
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic
from reconciler.limits import MAX_FILE_BYTES

# Manifests nest about 8 deep. The bound is also what every database stores: MariaDB refuses
# JSON nested over 32 levels, and events wrap params and values (which start 3 to 5 levels down)
# in at most 3 more, so 24 keeps every payload under 32, checked here once for all.
MAX_DEPTH = 24
# PyYAML's C composer recurses once per level and overflows the C stack somewhere past 20,000
# levels. With at most this many brackets and dashes (and block indentation bounded by the file
# size limit to about 1,400 levels), composing is safe and the depth is checked on the nodes.
SAFE_OPENERS = 1000

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_YAML12_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
                 "FALSE": False}
_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_HEX_INT = re.compile(r"[-+]?0x[0-9a-fA-F]+")
# YAML 1.2's core schema float: YAML 1.1 also wants a dot, so PyYAML reads 1e-5 as a string.
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")
_FLOAT_SPECIAL = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"),
                  ".nan": float("nan")}


_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers


class _Loader(yaml.CSafeLoader):
    """PyYAML's C loader with SafeLoader's tag resolution (plus YAML 1.2's 1e-5 floats) in
    fewer Python calls.

    The C composer calls back into Python for every node: SafeLoader registers no path
    resolvers, so descending/ascending is a no-op, and resolve() is PyYAML's own algorithm
    (first-character table of implicit resolvers) without the generic machinery.
    """

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """No path resolvers: nothing to track."""
        return None

    def ascend_resolver(self) -> None:
        """No path resolvers: nothing to track."""
        return None

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        """The tag of a node, as SafeLoader would resolve it."""
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR
            # Users write metrics so (loss: 1e-5): a number, as YAML 1.2 says.
            return _plain_tag(value, yaml12_floats=True)
        return _SEQ if kind is yaml.SequenceNode else _MAP


def _plain_tag(text: str, *, yaml12_floats: bool = False) -> str:
    """The tag SafeLoader gives an unquoted scalar: the first implicit resolver that matches
    (with yaml12_floats, 1e-5 and the like, which YAML 1.1 leaves strings, are floats)."""
    resolvers = _IMPLICIT.get(text[0] if text else "")
    if resolvers is None:  # most plain scalars are words no resolver starts with
        return _STR
    for tag, regexp in resolvers:
        if regexp.match(text):
            return tag  # type: ignore[no-any-return]
    # Every float starts with a digit, '.', '+' or '-', all of which have resolvers.
    return _FLOAT if yaml12_floats and _YAML12_FLOAT.fullmatch(text) else _STR


def plain_scalar(text: str) -> str | int | None:
    """What an unquoted scalar means to SafeLoader when it is a string or a decimal integer
    (the same in YAML 1.1 and 1.2); None when it is anything else: a float, a date, null..."""
    tag = _plain_tag(text)
    if tag == _STR:
        return text
    # Longer digit strings are left to the caller's fallback: Python will not read them.
    readable = len(text) <= sys.get_int_max_str_digits()
    return int(text) if tag == _INT and readable and _DECIMAL_INT.fullmatch(text) else None


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file: its data and the nodes that locate it."""

    path: str
    index: int
    data: Any
    node: yaml.Node

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at loc, or of its key when key=True.

        Walks as deep as loc exists, so a missing field points at the mapping that lacks it.
        """
        node = self.node
        for depth, step in enumerate(loc):
            pair = _child(node, step)
            if pair is None:
                break
            node = pair[0] if key and depth == len(loc) - 1 else pair[1]
        return node.start_mark.line + 1, node.start_mark.column + 1

    def node_at(self, loc: Loc) -> yaml.Node | None:
        """The node at loc, or None when loc does not exist in this document."""
        node = self.node
        for step in loc:
            pair = _child(node, step)
            if pair is None:
                return None
            node = pair[1]
        return node


def _child(node: yaml.Node, step: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of a mapping entry, or (item, item) of a sequence item."""
    if isinstance(node, yaml.MappingNode):
        return next(((k, v) for k, v in node.value if k.value == step), None)
    in_range = isinstance(step, int) and 0 <= step < len(node.value)
    if isinstance(node, yaml.SequenceNode) and in_range:
        item: yaml.Node = node.value[step]
        return item, item
    return None


@dataclass(frozen=True)
class Loaded:
    """What loading one file gives: its documents, or the reason it has none."""

    documents: tuple[Document, ...]
    diagnostics: tuple[Diagnostic, ...]


class _Reject(Exception):
    """Stops conversion at the first construct this loader refuses."""

    def __init__(self, node: yaml.Node | yaml.Mark, code: str, message: str, hint: str = ""):
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        super().__init__(message)
        self.line = mark.line + 1
        self.col = mark.column + 1
        self.code = code
        self.message = message
        self.hint = hint


def load(path: str, raw: bytes) -> Loaded:
    """Parse a manifest file strictly; any problem is a diagnostic, never an exception."""
    try:
        _check_bytes(raw)
        if b"&" in raw:  # no '&' means no anchor, and an alias needs an anchor
            _reject_anchors(raw)
        if _openers(raw) > SAFE_OPENERS:
            deep = too_deep(raw)
            if deep is not None:
                raise _too_deep(deep)
        documents = tuple(
            Document(path, index, _convert(node, 1), node)
            for index, node in enumerate(yaml.compose_all(raw, Loader=_Loader))
            if node is not None
        )
    except _Reject as reject:
        return Loaded((), (Diagnostic(path, reject.line, reject.col, reject.code, reject.message,
                                      reject.hint),))
    except yaml.MarkedYAMLError as error:
        if _refused_nesting(error):  # libyaml's own guard (1,000 levels) beat ours to it
            refused = _too_deep(_nesting_mark(raw, error))
            return Loaded((), (Diagnostic(path, refused.line, refused.col, refused.code,
                                          refused.message, refused.hint),))
        return Loaded((), (_syntax_diagnostic(path, raw, error),))
    except yaml.YAMLError as error:
        line, col = _reader_position(raw, error)
        return Loaded((), (Diagnostic(path, line, col, "YML001", _one_line(str(error))),))
    return Loaded(documents, ())


def _check_bytes(raw: bytes) -> None:
    if len(raw) > MAX_FILE_BYTES:
        raise _Reject(yaml.Mark("", 0, 0, 0, "", 0), "FIL002",
                      f"file is {len(raw)} bytes; manifests are limited to {MAX_FILE_BYTES}",
                      "split it into several manifests")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _Reject(_mark_at(raw, nul), "FIL003", "binary content (NUL byte)",
                      "manifests are UTF-8 YAML text")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Reject(_mark_at(raw, error.start), "FIL003",
                      f"not valid UTF-8 (byte 0x{raw[error.start]:02x})",
                      "save the file as UTF-8") from None


def _mark_at(raw: bytes, offset: int) -> yaml.Mark:
    line = raw.count(b"\n", 0, offset)
    col = offset - (raw.rfind(b"\n", 0, offset) + 1)
    return yaml.Mark("", offset, line, col, "", 0)


def _reject_anchors(raw: bytes) -> None:
    # Events, not nodes: an alias bomb is rejected at its first anchor, before anything expands.
    for event in yaml.parse(raw, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            mark = typing.cast(yaml.Mark, event.start_mark)
            raise _Reject(mark, "YML004", "anchors and aliases are not allowed",
                          "write the value out in full; manifests are reviewed as plain text")


MAX_EXPANDED = 100_000  # values a YAML text read from history may hold once aliases expand


def expands_past(raw: bytes, limit: int = MAX_EXPANDED) -> bool:
    """Whether YAML text holds more than limit values once its aliases are expanded (an alias
    bomb: a few hundred bytes that expand to billions). The node graph is composed without
    expanding anything (an alias shares its anchor's node) and counted up to the limit; call
    it after too_deep. Text without an anchor has no alias, and is not composed at all."""
    if b"&" not in raw:
        return False
    try:
        root = yaml.compose(raw, Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError):
        return False  # the caller's own parse reports it
    pending, seen = [root] if root is not None else [], 0
    while pending:
        node = pending.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            pending.extend(item for pair in node.value for item in pair)
    return False


def _openers(raw: bytes) -> int:
    return raw.count(b"[") + raw.count(b"{") + raw.count(b"- ")


def _too_deep(where: yaml.Node | yaml.Mark) -> _Reject:
    return _Reject(where, "YML009", f"nested deeper than {MAX_DEPTH} levels",
                   "manifests are shallow; flatten this structure")


def too_deep(raw: bytes) -> yaml.Mark | None:
    """Where YAML text nests deeper than MAX_DEPTH (None: it does not). Call before composing
    text that may nest very deeply: PyYAML's C composer recurses and overflows the stack."""
    openers = _openers(raw)
    if openers <= MAX_DEPTH and b"\n" + b" " * (2 * MAX_DEPTH) not in raw:
        return None  # too few brackets and dashes, too shallow indentation, to nest deeply
    try:
        return _deepest_event(raw)
    except yaml.MarkedYAMLError as error:
        if not _refused_nesting(error) or error.problem_mark is None:
            raise
        # Newer libyaml refuses 1,000 levels while its scanner looks ahead, before the parser
        # has emitted the events of level MAX_DEPTH + 1: scan only the text before the refusal.
        try:
            return _deepest_event(raw[:error.problem_mark.index]) or error.problem_mark
        except yaml.YAMLError:
            return error.problem_mark


def _deepest_event(raw: bytes) -> yaml.Mark | None:
    # The event stream is flat (libyaml's parser does not recurse), so it can measure depth.
    depth = 0
    for event in yaml.parse(raw, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return typing.cast(yaml.Mark, event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _nesting_mark(raw: bytes, error: yaml.MarkedYAMLError) -> yaml.Mark:
    """Where text that libyaml refused for its nesting first goes deeper than MAX_DEPTH."""
    fallback = error.problem_mark or yaml.Mark("", 0, 0, 0, "", 0)
    try:
        return too_deep(raw) or fallback
    except yaml.YAMLError:
        return fallback


def _refused_nesting(error: yaml.MarkedYAMLError) -> bool:
    """Whether libyaml itself refused the text for nesting too deeply (PyYAML 6.0.2 and later
    bundle a libyaml that stops at 1,000 levels)."""
    return "maximum nesting depth" in (error.problem or "")


def _convert(node: yaml.Node, depth: int) -> Any:
    """Plain data of node, a collection nested depth levels deep (the document's is 1)."""
    # One function, one pass over every node of every file: the hottest loop of validate and
    # replay (a third of a backfill's parsing), so its checks stay inline rather than split.
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if depth > MAX_DEPTH:
        raise _too_deep(node)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            raise _unsupported_tag(node)
        return [_convert(item, depth + 1) for item in node.value]
    if node.tag != _MAP:
        raise _unsupported_tag(node)
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            raise _Reject(key_node, "YML008", "merge keys (<<) are not allowed",
                          "write the keys out in full")
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            raise _Reject(key_node, "YML007", "mapping keys must be strings",
                          "quote the key")
        key = key_node.value
        if "\x00" in key:
            raise _nul(key_node)
        if key in mapping:
            raise _Reject(key_node, "YML002", f"duplicate key '{key}'",
                          "each key may appear once per mapping; YAML would keep only the last")
        mapping[key] = _convert(value_node, depth + 1)
    return mapping


def _scalar(node: yaml.ScalarNode) -> Any:
    # Every scalar of every file goes through here: one branch per YAML tag, kept in one
    # function (a call per scalar more would cost ~5% of parsing).
    tag, text = node.tag, node.value
    if "\x00" in text:
        raise _nul(node)
    if tag in (_STR, _TIMESTAMP):
        # Dates stay text, as in YAML 1.2 and JSON: the manifest's meaning is what it says.
        return text
    if tag == _NULL:
        return None
    if tag == _BOOL:
        if text in _YAML12_BOOLS:
            return _YAML12_BOOLS[text]
        raise _Reject(node, "YML003", f"'{text}' is a YAML 1.1 boolean",
                      f"write true or false, or quote it: \"{text}\"")
    if tag == _INT:
        if _DECIMAL_INT.fullmatch(text):
            return _int64(node, text, 10)
        if _HEX_INT.fullmatch(text):
            return _int64(node, text, 16)
        raise _Reject(node, "YML006", f"'{text}' is an ambiguous YAML 1.1 number",
                      f"quote it (\"{text}\") or write a plain decimal number")
    if tag == _FLOAT:
        if text.lower() in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[text.lower()]
        if ":" in text or "_" in text:
            raise _Reject(node, "YML006", f"'{text}' is an ambiguous YAML 1.1 number",
                          f"quote it (\"{text}\") or write a plain decimal number")
        return float(text)
    raise _unsupported_tag(node)


def _int64(node: yaml.Node, text: str, base: int) -> int:
    """An integer every database and JSON reader stores exactly: 64 bits, signed."""
    # Checked on the length first: Python refuses to convert over 4,300 digits at all.
    value = int(text, base) if len(text) <= 24 else None
    if value is None or not -(2**63) <= value < 2**63:
        shown = text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
        raise _Reject(node, "YML011", f"the integer {shown} does not fit in 64 bits",
                      "no database stores it exactly; quote it if it is an identifier")
    return value


def _nul(node: yaml.Node) -> _Reject:
    return _Reject(node, "YML010", "a NUL character in a value",
                   "remove it: no database stores it, and no manifest needs it")


def _unsupported_tag(node: yaml.Node) -> _Reject:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return _Reject(node, "YML005", f"unsupported YAML tag '{tag}'",
                   "manifests use plain YAML: strings, numbers, booleans, lists and mappings")


def _syntax_diagnostic(path: str, raw: bytes, error: yaml.MarkedYAMLError) -> Diagnostic:
    mark = error.problem_mark or error.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = " ".join(part for part in (error.context, error.problem) if part)
    lines = raw.split(b"\n")
    at_tab = mark is not None and mark.line < len(lines) and b"\t" in lines[mark.line]
    hint = "indent with spaces; YAML does not allow tabs there" if at_tab else ""
    return Diagnostic(path, line, col, "YML001", _one_line(message or str(error)), hint)


def _reader_position(raw: bytes, error: yaml.YAMLError) -> tuple[int, int]:
    position = getattr(error, "position", None)
    if isinstance(position, int):
        text = raw.decode("utf-8", errors="replace")[:position]
        return text.count("\n") + 1, position - (text.rfind("\n") + 1) + 1
    return 1, 1


def _one_line(text: str) -> str:
    return " ".join(text.split())

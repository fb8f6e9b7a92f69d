"""Values as YAML that cannot be anything but themselves: the quoting filter of `render`.

Strings become double-quoted scalars with every character that YAML could read as structure,
a line break or a non-printable escaped, so no manifest value can inject keys, documents, tags,
anchors or template code into a rendered config. Lists and mappings become flow collections of
quoted values.
"""

from __future__ import annotations

import math
from typing import Any

# YAML's printable set, minus the characters that YAML 1.1 folds as line breaks.
_SAFE_RANGES = ((0x20, 0x7E), (0xA0, 0x2027), (0x202A, 0xD7FF), (0xE000, 0xFFFD),
                (0x10000, 0x10FFFF))


def _is_safe(code: int) -> bool:
    return any(low <= code <= high for low, high in _SAFE_RANGES)


def _escape(char: str) -> str:
    code = ord(char)
    if char == '"':
        return '\\"'
    if char == "\\":
        return "\\\\"
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote_string(text: str) -> str:
    """A double-quoted YAML scalar that reads back as exactly text."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(c if _is_safe(ord(c)) and c not in '"\\' else _escape(c)
                         for c in text) + '"'


def quote(value: Any) -> str:
    """Any plain value (string, number, boolean, null, list, mapping) as safe YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # YAML 1.1 (PyYAML, most Kubernetes tooling) reads a float only with a dot: 1e-05 would
        # come back a string. repr's exponent always has its sign, as YAML 1.1 also requires.
        return text.replace("e", ".0e") if "e" in text and "." not in text else text
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote_string(str(k))}: {quote(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(quote(v) for v in value) + "]"
    raise TypeError(f"cannot render a {type(value).__name__} into YAML")

"""JSON for machines: every output is strict JSON (RFC 8259), whatever a pull request holds."""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any, **options: Any) -> str:
    """json.dumps with non-finite floats written as the strings "NaN", "Infinity" and
    "-Infinity": Python would print bare NaN, which no strict parser reads (a dvc.lock param
    or a GTO metric can hold one)."""
    return json.dumps(finite(value), allow_nan=False, **options)


def finite(value: Any) -> Any:
    """value with every non-finite float replaced by its name as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value

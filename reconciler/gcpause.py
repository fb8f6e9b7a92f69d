"""Pausing Python's cyclic garbage collector around work that allocates many lasting objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (nested uses are fine)."""
    # Loading keeps every YAML node alive for positions; with the cyclic collector running, each
    # collection rescans them all and loading gets several times slower (bench/validate.py).
    # Nodes and plain data hold no cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

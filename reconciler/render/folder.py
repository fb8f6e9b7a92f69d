"""The output folder of `render` (deploy/ by default): what is stale, and writing all or nothing.

deploy/ and its index are committed, so a pull request controls them: every path taken from the
index must be a file this tool writes (`<environment>/<model>.yaml`), nothing is read, written
or removed through a symlink or a special file, and a write either lands whole or not at all.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Sequence
from typing import Protocol

from reconciler.diagnostics import Diagnostic, ReconcilerError, printable
from reconciler.files import write_all
from reconciler.limits import DNS_LABEL

INDEX = ".reconciler-index.json"
# What render writes: <environment>/<model>.yaml, both DNS-1123 labels (rules check the names).
_OUTPUT_PATH = re.compile(rf"{DNS_LABEL.pattern}/{DNS_LABEL.pattern}\.yaml")


class RenderedConfig(Protocol):
    """One rendered file: its path relative to the output folder, its text and sha256."""

    @property
    def path(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def digest(self) -> str: ...


class Unsafe(Exception):
    """The output folder holds something render must not follow (reported, exit 1)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class OutputFolder:
    """What writing a render would change in the output folder."""

    def __init__(self, root: str, out: str, rendered: Sequence[RenderedConfig],
                 only_env: str | None):
        self.out = os.path.join(root, out)
        self.rendered = sorted(rendered, key=lambda r: r.path)
        _check_folder(root, self.out)
        previous = _read_index(self.out)
        keep = {p: d for p, d in previous.items()
                if only_env is not None and not p.startswith(f"{only_env}/")}
        self.index = {**keep, **{r.path: r.digest for r in self.rendered}}
        self.stale = sorted(p for p in previous if p not in self.index)

    def changes(self) -> list[str]:
        """Unified diffs between the output folder and this render (empty: up to date)."""
        diffs = []
        for item in self.rendered:
            current = self._read(item.path)
            if current != item.text:
                diffs.append(unified_diff(current, item.text, item.path))
        for path in self.stale:
            current = self._read(path)
            if current is not None:
                diffs.append(unified_diff(current, None, path))
        if self._index_changed():
            diffs.append(f"--- a/{INDEX}\n+++ b/{INDEX}\n(index out of date)\n")
        return diffs

    def write(self) -> list[str]:
        """Write changed files, remove stale ones this tool wrote; return the paths touched.
        Everything is staged first: on any failure (a full disk) the folder is as it was."""
        changed = [item for item in self.rendered if self._read(item.path) != item.text]
        files = [(os.path.join(self.out, item.path), item.text) for item in changed]
        if self._index_changed():
            files.append((os.path.join(self.out, INDEX), _index_text(self.index)))
        try:
            write_all(files)
        except OSError as error:
            raise ReconcilerError(f"cannot write the render into {self.out}: "
                                  f"{error.strerror or error}; nothing in it was changed"
                                  ) from None
        removed = []
        for path in self.stale:
            if self._read(path) is not None:
                os.unlink(os.path.join(self.out, path))
                removed.append(path)
        return sorted([item.path for item in changed] + removed)

    def _index_changed(self) -> bool:
        # A repository that serves nothing needs no output folder, nor an index in it.
        current = _read_file(self.out, INDEX)
        return current != _index_text(self.index) and (current is not None or bool(self.index))

    def _read(self, path: str) -> str | None:
        return _read_file(self.out, path)


def _check_folder(root: str, out: str) -> None:
    """Refuse an output folder that is, or lies under, a symlink inside the repository."""
    inside = os.path.relpath(out, root)
    folder = root
    for part in [] if inside.startswith("..") else inside.split(os.sep):
        folder = os.path.join(folder, part)
        if os.path.islink(folder):
            raise Unsafe(folder, "is a symlink; render writes only into real folders of the "
                                 "repository")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ReconcilerError(f"{out}: not a folder; render writes its configs into one")


def _read_file(out: str, path: str) -> str | None:
    """The text of out/path, None when there is none; never through a link or a special file."""
    full = out
    for part in path.split("/"):
        full = os.path.join(full, part)
        try:
            mode = os.lstat(full).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            raise Unsafe(full, "is a symlink; render never reads or writes through one")
        if full != os.path.join(out, path) and not stat.S_ISDIR(mode):
            raise Unsafe(full, "is not a folder")
    if not stat.S_ISREG(mode):
        raise Unsafe(full, "is not a regular file (a FIFO, socket or device)")
    with open(full, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()


def _read_index(out: str) -> dict[str, str]:
    """The files the last render wrote, each checked to be one render writes."""
    text = _read_file(out, INDEX)
    if not text:
        return {}
    try:
        files = json.loads(text).get("files", {})
    except (json.JSONDecodeError, AttributeError):
        return {}
    except RecursionError:  # nested past Python's limit: no index render wrote
        raise Unsafe(os.path.join(out, INDEX), "is nested too deeply to be an index render "
                     "writes") from None
    if not isinstance(files, dict):
        return {}
    for path in files:
        if not isinstance(path, str) or not _OUTPUT_PATH.fullmatch(path):
            raise Unsafe(os.path.join(out, INDEX),
                         f"entry {printable(json.dumps(path))} is not a file render writes "
                         "(<environment>/<model>.yaml inside the output folder)")
    return {k: str(v) for k, v in files.items()}


def _index_text(index: dict[str, str]) -> str:
    return json.dumps({"format_version": 1, "generator": "reconciler",
                       "files": dict(sorted(index.items()))}, indent=2) + "\n"


def unified_diff(current: str | None, new: str | None, path: str) -> str:
    """A unified diff, every line escaped (committed output must not inject into a CI log)."""
    lines = difflib.unified_diff(
        (current or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
        f"a/{path}" if current is not None else "/dev/null",
        f"b/{path}" if new is not None else "/dev/null")
    return "".join(printable(line.rstrip("\n")) + "\n" for line in lines)


def unsafe_diagnostic(root: str, unsafe: Unsafe) -> Diagnostic:
    """An Unsafe as the diagnostic that reports it (where, relative to the repository)."""
    where = os.path.relpath(unsafe.path, root) if unsafe.path.startswith(root) else unsafe.path
    return Diagnostic(where.replace(os.sep, "/"), 1, 1, "RND004", unsafe.message,
                      "remove it from the output folder; render writes only the files it owns")

"""Which repository paths the registry reads, and which no path from a pull request may be.

Pure string rules (find_root alone looks at the file system), shared by every reader: the work
tree, git objects, the history walker and the DVC adapter judge a path the same way.
"""

from __future__ import annotations

import os
import posixpath

from reconciler.diagnostics import ReconcilerError

MANIFEST_DIR = "manifests"


MANIFEST_SUFFIXES = (".yaml", ".yml")


def find_root(start: str) -> str:
    """The top of the git work tree containing start (like `git rev-parse --show-toplevel`)."""
    current = os.path.abspath(start)
    if not os.path.isdir(current):
        raise ReconcilerError(f"{start}: no such directory")
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            raise ReconcilerError(f"{start}: not inside a git repository (run `git init` first)")
        current = parent


def is_manifest_path(path: str) -> bool:
    """Whether a repository-relative path names a manifest file."""
    return path.startswith(MANIFEST_DIR + "/") and path.endswith(MANIFEST_SUFFIXES)


def is_dvc_file(path: str) -> bool:
    """Whether a path is a DVC pointer file or a dvc.lock."""
    return path.endswith(".dvc") or posixpath.basename(path) == "dvc.lock"


def is_registry_file(path: str) -> bool:
    """Whether reconciler reads this path: a manifest or a DVC file."""
    return is_manifest_path(path) or is_dvc_file(path)


def unreadable_name(path: str) -> bool:
    """Whether a path is not plain UTF-8 text (undecodable bytes, shown escaped) or holds a
    backslash: such a file is refused wherever it is met, so every reader agrees."""
    return "\\" in path or any("\udc80" <= char <= "\udcff" for char in path)


def escapes(path: str) -> bool:
    """Whether a repository-relative path is absolute or climbs out with '..'."""
    return path.startswith("/") or "\\" in path or ".." in path.split("/")


def repo_path(root: str, user_path: str) -> str:
    """A path as the user typed it (relative to the current directory) made repository-relative."""
    absolute = os.path.abspath(user_path)
    real_root = os.path.realpath(root)
    for base in (root, real_root):
        relative = os.path.relpath(absolute, base)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return user_path.replace(os.sep, "/")


def plain_path(path: str) -> bool:
    """A repository path read_at can ask git for: inside the repository, no control
    characters (a request is one line)."""
    return bool(path) and not escapes(path) and not any(ord(c) < 32 for c in path)

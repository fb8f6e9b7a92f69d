"""Read a repository's files: from the working tree, or at a revision straight from git objects.

This is the only module that talks to git. GitPython is imported only when a revision is read,
so validating the working tree (the pre-commit path) starts fast.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from typing import TYPE_CHECKING, Protocol

from reconciler.diagnostics import ReconcilerError
from reconciler.loader import MAX_FILE_BYTES

if TYPE_CHECKING:
    import git

MANIFEST_DIR = "manifests"
MANIFEST_SUFFIXES = (".yaml", ".yml")
_SYMLINK_MODE = 0o120000
_MAX_SYMLINK_HOPS = 8


class FileProblem(Exception):
    """A file that cannot be read as a manifest (code, message, hint), reported at line 1."""

    def __init__(self, code: str, message: str, hint: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


class Source(Protocol):
    """A read-only view of the repository's files, at the working tree or at one commit."""

    root: str
    rev: str | None

    def manifest_paths(self) -> list[str]:
        """Repository-relative paths of every manifest file, sorted."""
        ...

    def dvc_paths(self) -> list[str]:
        """Repository-relative paths of every .dvc file and dvc.lock, sorted."""
        ...

    def exists(self, path: str) -> bool:
        """Whether a regular file (or symlink) exists at path."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of the file at path; raises FileProblem for what must not be read."""
        ...


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


def escapes(path: str) -> bool:
    """Whether a repository-relative path is absolute or climbs out with '..'."""
    return path.startswith("/") or "\\" in path or ".." in path.split("/")


class WorkTree:
    """The files as they are on disk (what pre-commit sees)."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        self.rev: str | None = None
        self._real_dirs: dict[str, str] = {}

    def manifest_paths(self) -> list[str]:
        """Repository-relative paths of every manifest file, sorted."""
        found: list[str] = []
        for folder, dirs, files in os.walk(os.path.join(self.root, MANIFEST_DIR)):
            dirs.sort()
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            found.extend(f"{rel}/{name}" for name in files if name.endswith(MANIFEST_SUFFIXES))
        return sorted(found)

    def dvc_paths(self) -> list[str]:
        """Repository-relative paths of every .dvc file and dvc.lock, sorted."""
        # git knows which files are ignored: DVC-tracked data folders can be huge, never walk them.
        result = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             "*.dvc", "dvc.lock", "*/dvc.lock"],
            cwd=self.root, capture_output=True, check=False)
        if result.returncode != 0:
            raise ReconcilerError(f"git ls-files failed: {result.stderr.decode().strip()}")
        paths = {p for p in result.stdout.decode().split("\0") if p and is_dvc_file(p)}
        return sorted(p for p in paths if os.path.isfile(os.path.join(self.root, p)))

    def exists(self, path: str) -> bool:
        """Whether a file exists at path."""
        return not escapes(path) and os.path.isfile(os.path.join(self.root, path))

    def read(self, path: str) -> bytes:
        """The bytes at path, refusing symlinks that leave the repository and oversized files."""
        folder, name = os.path.split(os.path.join(self.root, path))
        real_folder = self._real_dirs.get(folder)
        if real_folder is None:
            real_folder = self._real_dirs[folder] = os.path.realpath(folder)
        real = os.path.join(real_folder, name)
        if os.path.islink(real):
            real = os.path.realpath(real)
        if os.path.commonpath([real, self.root]) != self.root:
            raise FileProblem("FIL001", f"symlink leads outside the repository ({real})",
                              "keep manifests inside the repository")
        try:
            size = os.stat(real).st_size
            if size > MAX_FILE_BYTES:
                raise FileProblem("FIL002", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}",
                                  "split it into several manifests")
            with open(real, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise FileProblem("FIL004", f"cannot read file: {error.strerror}") from None


class GitRevision:
    """The files of one commit, read from git objects without touching the working tree."""

    def __init__(self, root: str, rev: str):
        import git  # deferred: only revision reads pay for GitPython

        self.root = os.path.realpath(root)
        try:
            self._repo = git.Repo(self.root)
            commit = self._repo.commit(rev)
        except (git.BadName, ValueError, git.GitCommandError) as error:
            raise ReconcilerError(f"unknown revision '{rev}': {error}") from None
        except git.InvalidGitRepositoryError:
            raise ReconcilerError(f"{root}: not a git repository") from None
        self.rev: str | None = commit.hexsha
        self._entries: dict[str, tuple[int, git.Blob]] = {
            str(item.path): (item.mode, item)
            for item in commit.tree.traverse()
            if isinstance(item, git.Blob)
        }

    def manifest_paths(self) -> list[str]:
        """Repository-relative paths of every manifest file, sorted."""
        return sorted(p for p in self._entries if is_manifest_path(p))

    def dvc_paths(self) -> list[str]:
        """Repository-relative paths of every .dvc file and dvc.lock, sorted."""
        return sorted(p for p in self._entries if is_dvc_file(p))

    def exists(self, path: str) -> bool:
        """Whether the commit holds a file at path."""
        return path in self._entries

    def read(self, path: str) -> bytes:
        """The blob at path, following symlinks that stay inside the repository."""
        for _ in range(_MAX_SYMLINK_HOPS):
            entry = self._entries.get(path)
            if entry is None:
                raise FileProblem("FIL004", f"no file '{path}' at {self.rev}")
            mode, blob = entry
            if blob.size > MAX_FILE_BYTES:
                raise FileProblem("FIL002", f"file is {blob.size} bytes; the limit is "
                                  f"{MAX_FILE_BYTES}", "split it into several manifests")
            data: bytes = blob.data_stream.read()
            if mode != _SYMLINK_MODE:
                return data
            target = data.decode("utf-8", errors="replace")
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if escapes(path) or target.startswith("/"):
                raise FileProblem("FIL001", f"symlink leads outside the repository ({target})",
                                  "keep manifests inside the repository")
        raise FileProblem("FIL001", "too many levels of symlinks")


def open_source(root: str, rev: str | None) -> Source:
    """The working tree of root, or root's commit rev when given."""
    return WorkTree(root) if rev is None else GitRevision(root, rev)


def repo_path(root: str, user_path: str) -> str:
    """A path as the user typed it (relative to the current directory) made repository-relative."""
    absolute = os.path.abspath(user_path)
    real_root = os.path.realpath(root)
    for base in (root, real_root):
        relative = os.path.relpath(absolute, base)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return user_path.replace(os.sep, "/")

"""Read a repository's files: from the working tree, or at a revision straight from git objects.

A revision's files are read from git objects (git/plumbing.py runs git): no checkout, and
what a pull request commits is read exactly as committed (a symlink stays a link).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from typing import Protocol

from reconciler.git.objects import (
    SYMLINK_MODE,
)
from reconciler.git.plumbing import (
    is_tracked,
    ls_tree,
    read_blobs,
    resolve_commit,
    work_tree_files,
)
from reconciler.limits import MAX_FILE_BYTES
from reconciler.paths import (
    MANIFEST_DIR,
    MANIFEST_SUFFIXES,
    escapes,
    is_dvc_file,
    is_manifest_path,
    is_registry_file,
    unreadable_name,
)


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
        """Whether a file (of any type, a symlink too) exists at path."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of the file at path; raises FileProblem for what must not be read."""
        ...

    def committed_digest(self, path: str) -> tuple[str, int] | None:
        """(md5 hex, size) of a regular file git tracks at path, of any size; else None."""
        ...


def _bad_name() -> FileProblem:
    return FileProblem("FIL003", "the file name is not valid UTF-8 or holds a backslash",
                       "rename it: manifest and DVC file names are plain UTF-8")


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
            # A nested repository (a submodule's checkout) is no part of this one: git, and so
            # apply and plan, never see its files, so neither do validate and render.
            dirs[:] = sorted(name for name in dirs
                             if not os.path.lexists(os.path.join(folder, name, ".git")))
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            found.extend(f"{rel}/{name}" for name in files if name.endswith(MANIFEST_SUFFIXES))
            # A link to a folder named like a manifest is listed (and refused) as git lists it.
            found.extend(f"{rel}/{name}" for name in dirs if name.endswith(MANIFEST_SUFFIXES)
                         and os.path.islink(os.path.join(folder, name)))
        return sorted(found)

    def dvc_paths(self) -> list[str]:
        """Repository-relative paths of every .dvc file and dvc.lock, sorted."""
        # git knows which files are ignored: DVC-tracked data folders can be huge, never walk them.
        listed = work_tree_files(self.root, "*.dvc", "dvc.lock", "*/dvc.lock")
        paths = {p for p in listed if is_dvc_file(p)}
        return sorted(p for p in paths if os.path.isfile(os.path.join(self.root, p)))

    def exists(self, path: str) -> bool:
        """Whether something that is not a folder is at path (read says if it may be read)."""
        full = os.path.join(self.root, path)
        return not escapes(path) and os.path.lexists(full) and not os.path.isdir(full)

    def read(self, path: str) -> bytes:
        """The bytes of the regular file at path: never through a symlink (git replays a link
        as its own text, so apply could not audit what it leads to), never a FIFO or device."""
        if unreadable_name(path):  # before escapes(), which a backslash also trips
            raise _bad_name()
        if escapes(path):
            raise FileProblem("FIL004", "path leaves the repository")
        full = os.path.join(self.root, path)
        folder = os.path.dirname(full)
        real_folder = self._real_dirs.get(folder)
        if real_folder is None:
            real_folder = self._real_dirs[folder] = os.path.realpath(folder)
        if real_folder != folder:
            raise _symlink(f"a folder of {path} is a symlink")
        try:
            # O_NOFOLLOW: a link is refused, not followed; O_NONBLOCK: a FIFO cannot block.
            handle = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _symlink(f"{path} is a symlink") from None
            raise FileProblem("FIL004", f"cannot read file: {error.strerror}") from None
        with os.fdopen(handle, "rb") as opened:
            status = os.fstat(opened.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise FileProblem("FIL005", "not a regular file (a FIFO, socket or device)",
                                  "manifests and DVC files are plain files committed to git")
            if status.st_size > MAX_FILE_BYTES:
                raise FileProblem("FIL002", f"file is {status.st_size} bytes; the limit is "
                                  f"{MAX_FILE_BYTES}", "split it into several manifests")
            return opened.read()

    def committed_digest(self, path: str) -> tuple[str, int] | None:
        """(md5 hex, size) of a regular file git tracks at path, of any size; else None."""
        return _md5_of_tracked(self.root, path)


def _md5_of_tracked(root: str, path: str) -> tuple[str, int] | None:
    """(md5, size) of a regular file in the work tree that git tracks (never a link)."""
    if unreadable_name(path) or escapes(path) or not path:
        return None
    if not is_tracked(root, path):
        return None
    real_root = os.path.realpath(root)
    full = os.path.join(real_root, path)
    if os.path.realpath(os.path.dirname(full)) != os.path.dirname(full):
        return None  # a folder on the way is a link
    try:
        handle = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    with os.fdopen(handle, "rb") as opened:
        if not stat.S_ISREG(os.fstat(opened.fileno()).st_mode):
            return None
        size = 0
        for block in iter(lambda: opened.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _symlink(message: str) -> FileProblem:
    return FileProblem("FIL001", f"symlink: {message}",
                       "commit the file itself: a manifest or DVC file must be a regular file")


class GitRevision:
    """The files of one commit, read from git objects without touching the working tree."""

    def __init__(self, root: str, rev: str, only: list[str] | None = None):
        self.root = os.path.realpath(root)
        self.rev: str | None = resolve_commit(self.root, rev)
        # The files the first read fetches with it (None: every one).
        self._only = None if only is None else set(only)
        self._prefetched = False
        # path -> (mode, blob sha, size): one ls-tree for the whole commit.
        self._entries = {entry.path: (entry.mode, entry.blob, entry.size)
                         for entry in ls_tree(self.root, self.rev)}
        self._blobs: dict[str, bytes] = {}

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
        """The blob at path; a symlink is refused (see WorkTree.read)."""
        entry = self._entries.get(path)
        if entry is None:
            raise FileProblem("FIL004", f"no file '{path}' at {self.rev}")
        mode, blob, size = entry
        if unreadable_name(path):
            raise _bad_name()
        if mode == SYMLINK_MODE:
            raise _symlink(f"{path} is a symlink")
        if size > MAX_FILE_BYTES:
            raise FileProblem("FIL002", f"file is {size} bytes; the limit is "
                              f"{MAX_FILE_BYTES}", "split it into several manifests")
        return self._blob(blob)

    def committed_digest(self, path: str) -> tuple[str, int] | None:
        """(md5 hex, size) of the regular file at path in this commit, of any size."""
        entry = self._entries.get(path)
        if entry is None or entry[0] not in (0o100644, 0o100755) or unreadable_name(path):
            return None
        raw = read_blobs(self.root, [entry[1]])[entry[1]]
        return hashlib.md5(raw, usedforsecurity=False).hexdigest(), len(raw)

    def prefetch(self, paths: list[str] | None) -> None:
        """Fetch the blobs of paths (None: of every manifest and DVC file) now, in one round
        trip; later reads fetch what is missing one by one."""
        self._only, self._prefetched = None if paths is None else set(paths), False
        wanted = [p for p in self._entries if is_registry_file(p)] if paths is None else paths
        if wanted:
            self._blob(self._entries[wanted[0]][1])

    def _blob(self, blob: str) -> bytes:
        if blob not in self._blobs:
            # First read: fetch every small manifest and DVC file (or those of only) in one
            # round trip; later, only what is missing (.dvc/config, say).
            wanted = [] if self._prefetched else [
                b for p, (_, b, size) in self._entries.items()
                if size <= MAX_FILE_BYTES and is_registry_file(p)
                and (self._only is None or p in self._only)]
            self._prefetched = True
            self._blobs.update(read_blobs(self.root, [*wanted, blob]))
        return self._blobs[blob]


class FilesAt:
    """The registry files of one commit as apply's replay holds them in memory (it read them
    from git once), anything else read from git at that commit when asked: a Source for
    checking each replayed commit as validate checks a change."""

    def __init__(self, root: str, rev: str, files: dict[str, bytes],
                 manifests: list[str] | None = None):
        self.root = root  # as GitHistory holds it: resolved once, not at every commit
        self.rev: str | None = rev
        self._files = files
        self._commit: GitRevision | None = None
        self._manifests = manifests  # the sorted manifest paths of files, when known

    def manifest_paths(self) -> list[str]:
        """Repository-relative paths of every manifest file, sorted."""
        if self._manifests is None:
            self._manifests = sorted(p for p in self._files if is_manifest_path(p))
        return self._manifests

    def dvc_paths(self) -> list[str]:
        """Repository-relative paths of every .dvc file and dvc.lock, sorted."""
        return sorted(p for p in self._files if is_dvc_file(p))

    def prefetch(self, paths: list[str] | None) -> None:
        """Nothing to fetch: the registry files are in memory already (see GitRevision)."""

    def exists(self, path: str) -> bool:
        """Whether the commit holds a file at path (a registry file the replay refused, a
        link say, counts as absent: the replay records it as skipped)."""
        if path in self._files:
            return True
        return not is_registry_file(path) and self._git().exists(path)

    def read(self, path: str) -> bytes:
        """The bytes of the file at path."""
        if path in self._files:
            return self._files[path]
        if is_registry_file(path):
            raise FileProblem("FIL004", f"no file '{path}' at {self.rev}")
        return self._git().read(path)

    def committed_digest(self, path: str) -> tuple[str, int] | None:
        """(md5 hex, size) of the regular file at path in this commit, of any size."""
        return self._git().committed_digest(path)

    def _git(self) -> GitRevision:
        if self._commit is None:
            assert self.rev is not None, "a commit"
            self._commit = GitRevision(self.root, self.rev, only=[])
        return self._commit


def open_source(root: str, rev: str | None, only: list[str] | None = None) -> Source:
    """The working tree of root, or root's commit rev when given (only: the files that will
    be read from it, when that is known to be few)."""
    return WorkTree(root) if rev is None else GitRevision(root, rev, only)

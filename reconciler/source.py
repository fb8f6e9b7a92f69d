"""Read a repository's files: from the working tree, or at a revision straight from git objects.

This is the only module that talks to git. GitPython is imported only when a revision is read,
so validating the working tree (the pre-commit path) starts fast.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

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


class CommitInfo(NamedTuple):
    """A commit as the audit trail records it; times are naive UTC."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str


class Change(NamedTuple):
    """One file a commit changed: its new blob, or None when it was deleted."""

    path: str
    blob: str | None


_TRACKED = ["manifests/", "*.dvc", "dvc.lock", "*/dvc.lock"]
_LOG_FORMAT = "%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%cn%x1f%ce%x1f%ct%x1f%B%x1f"
_NULL_SHA = "0" * 40


class GitHistory:
    """Walks first-parent history and reads blobs: what `apply` needs from git."""

    def __init__(self, root: str):
        import git  # deferred: validate of the work tree never needs it

        self.root = os.path.realpath(root)
        try:
            self._repo = git.Repo(self.root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise ReconcilerError(f"{root}: not a git repository") from None
        self._git = self._repo.git
        self._errors = (git.GitCommandError, git.BadName, ValueError)

    def close(self) -> None:
        """Stop git helper processes."""
        self._repo.close()

    def resolve(self, rev: str) -> str:
        """The commit sha a revision names."""
        try:
            return str(self._repo.commit(rev).hexsha)
        except self._errors:
            raise ReconcilerError(f"unknown revision '{rev}'") from None

    def has_commit(self, sha: str) -> bool:
        """Whether the object database holds that commit."""
        try:
            self._git.cat_file("-e", f"{sha}^{{commit}}")
            return True
        except self._errors:
            return False

    def is_shallow(self) -> bool:
        """Whether this is a shallow clone (history cut off)."""
        return str(self._git.rev_parse("--is-shallow-repository")).strip() == "true"

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ancestor is reachable from descendant."""
        try:
            self._git.merge_base("--is-ancestor", ancestor, descendant)
            return True
        except self._errors:
            return False

    def merge_base(self, first: str, second: str) -> str | None:
        """The best common ancestor, or None when histories are unrelated."""
        try:
            return str(self._git.merge_base(first, second)).strip() or None
        except self._errors:
            return None

    def commit_info(self, sha: str) -> CommitInfo:
        """Author, committer, times and message of one commit."""
        output = self._git.log("-1", f"--format={_LOG_FORMAT}", sha)
        return _parse_header(output.lstrip("\x1e").split("\x1f"))

    def first_parent_changes(self, since: str | None,
                             until: str) -> Iterator[tuple[CommitInfo, list[Change]]]:
        """Each first-parent commit after since up to until that touched manifests or DVC
        files, oldest first, with the files it changed (against its first parent)."""
        span = f"{since}..{until}" if since else until
        output = self._git.log("--first-parent", "--reverse", "--diff-merges=first-parent",
                               "--raw", "--no-renames", "--no-abbrev", "-z",
                               f"--format={_LOG_FORMAT}", span, "--", *_TRACKED,
                               stdout_as_string=False)
        text = output.decode("utf-8", errors="replace")
        for record in text.split("\x1e")[1:]:
            fields = record.split("\x1f", 9)
            info = _parse_header(fields)
            yield info, _parse_raw(fields[9])

    def files_at(self, sha: str) -> list[Change]:
        """Every manifest and DVC file at a commit (the full state to start from)."""
        # ls-tree takes path prefixes, not globs: list everything, keep what apply reads.
        output = self._git.ls_tree("-r", "-z", "--full-tree", sha, stdout_as_string=False)
        changes = []
        for entry in output.decode("utf-8", errors="replace").split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                _mode, kind, blob = meta.split()
                if kind == "blob" and (is_manifest_path(path) or is_dvc_file(path)):
                    changes.append(Change(path, blob))
        return changes

    def read_blobs(self, blobs: list[str]) -> dict[str, bytes]:
        """Many blobs in one `git cat-file --batch` round trip (a backfill reads thousands)."""
        wanted = sorted(set(blobs))
        if not wanted:
            return {}
        done = subprocess.run(["git", "cat-file", "--batch"], cwd=self.root, check=False,
                              input="\n".join(wanted).encode() + b"\n", capture_output=True)
        if done.returncode != 0:
            raise ReconcilerError(f"git cat-file failed: {done.stderr.decode().strip()}")
        found, out, position = {}, done.stdout, 0
        for _ in wanted:
            end = out.index(b"\n", position)
            sha, kind, size = out[position:end].decode().split()
            if kind != "blob":
                raise ReconcilerError(f"git object {sha} is a {kind}, not a blob")
            found[sha] = out[end + 1:end + 1 + int(size)]
            position = end + 1 + int(size) + 1
        return found


def _parse_header(fields: list[str]) -> CommitInfo:
    return CommitInfo(
        sha=fields[0], parents=tuple(fields[1].split()),
        author_name=fields[2], author_email=fields[3], authored_at=_utc(fields[4]),
        committer_name=fields[5], committer_email=fields[6], committed_at=_utc(fields[7]),
        message=fields[8].strip())


def _utc(epoch: str) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC).replace(tzinfo=None)


def _parse_raw(section: str) -> list[Change]:
    tokens = section.split("\0")
    changes = []
    for index, token in enumerate(tokens):
        token = token.strip()
        if token.startswith(":") and index + 1 < len(tokens):
            _old_mode, _new_mode, _old, new, status = token[1:].split()
            changes.append(Change(tokens[index + 1], None if status == "D" or new == _NULL_SHA
                                  else new))
    return changes

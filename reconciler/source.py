"""Read a repository's files: from the working tree, or at a revision straight from git objects.

This is the only module that talks to git, through the git command line: a handful of
processes per run (ls-tree, log, one `cat-file --batch` for many blobs), no library to import.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import stat
import subprocess
from collections.abc import Iterator
from datetime import datetime
from typing import IO, NamedTuple, Protocol

from reconciler.diagnostics import ReconcilerError
from reconciler.git.objects import (
    NULL_SHA,
    SYMLINK_MODE,
    Change,
    CommitInfo,
    decode_path,
    log_changes,
    parse_commit,
    utc_time,
)

MANIFEST_DIR = "manifests"
# Bigger files are refused before they are read (FIL002): no manifest or registry file is
# anywhere near, and a hostile one cannot make a run parse gigabytes.
MAX_FILE_BYTES = 1024 * 1024
MANIFEST_SUFFIXES = (".yaml", ".yml")


# Every git command this tool runs: objects as they are, never as `git replace` refs swap them
# (a replacement would put another commit's author under the original sha in the audit trail).
GIT = ("git", "--no-replace-objects")


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


def _bad_name() -> FileProblem:
    return FileProblem("FIL003", "the file name is not valid UTF-8 or holds a backslash",
                       "rename it: manifest and DVC file names are plain UTF-8")


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
        result = subprocess.run(
            [*GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             "*.dvc", "dvc.lock", "*/dvc.lock"],
            cwd=self.root, capture_output=True, check=False)
        if result.returncode != 0:
            raise ReconcilerError(f"git ls-files failed: {result.stderr.decode().strip()}")
        paths = {p for p in nul_separated(result.stdout) if is_dvc_file(p)}
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
    listed = subprocess.run([*GIT, "-C", root, "ls-files", "--error-unmatch", "--",
                             f":(literal){path}"], capture_output=True, check=False)
    if listed.returncode != 0:
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


def repo_path(root: str, user_path: str) -> str:
    """A path as the user typed it (relative to the current directory) made repository-relative."""
    absolute = os.path.abspath(user_path)
    real_root = os.path.realpath(root)
    for base in (root, real_root):
        relative = os.path.relpath(absolute, base)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return user_path.replace(os.sep, "/")


def run_git(root: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> bytes:
    """stdout of `git -C root args...`; a failure is a ReconcilerError with git's message."""
    done = subprocess.run([*GIT, "-C", root, *args], capture_output=True, check=False)
    if done.returncode not in ok_codes:
        raise git_failure(args[0], done.stderr)
    return done.stdout


def git_failure(command: str, stderr: bytes) -> ReconcilerError:
    """The error for a failed git command: its name and the last line git printed."""
    message = stderr.decode("utf-8", errors="replace").strip().splitlines()
    return ReconcilerError(f"git {command} failed: {message[-1] if message else ''}")


def _span(since: str | None, until: str) -> str:
    """A revision range for rev-list and log: after since (exclusive) up to until."""
    return f"{since}..{until}" if since else until


def changed_paths(root: str, base: str, head: str | None) -> list[str]:
    """The paths that differ between base and head (None: the work tree, staged or not)."""
    args = ["diff", "--name-only", "-z", "--no-renames", base] + ([head] if head else [])
    return nul_separated(run_git(root, *args))


def staged_deletions(root: str) -> list[str]:
    """The manifests and DVC files the staged change deletes (what pre-commit never passes)."""
    if not has_head(root):
        return []
    output = run_git(root, "diff", "--cached", "--name-only", "-z", "--no-renames",
                     "--diff-filter=D", "HEAD")
    return [path for path in nul_separated(output) if is_registry_file(path)]


def has_head(root: str) -> bool:
    """Whether the repository has a commit checked out (a new one has none yet)."""
    return subprocess.run([*GIT, "-C", root, "rev-parse", "--verify", "--quiet", "HEAD"],
                          capture_output=True, check=False).returncode == 0


def resolve_commit(root: str, rev: str) -> str:
    """The commit sha a revision names (a ReconcilerError when it names none)."""
    done = subprocess.run([*GIT, "-C", root, "rev-parse", "--verify", "--quiet",
                           "--end-of-options", f"{rev}^{{commit}}"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        if subprocess.run([*GIT, "-C", root, "rev-parse", "--git-dir"], capture_output=True,
                          check=False).returncode != 0:
            raise ReconcilerError(f"{root}: not a git repository")
        raise ReconcilerError(f"unknown revision '{rev}'")
    return done.stdout.decode().strip()


# Where the registry's history is, in order of preference: the remote's default branch, then
# the usual names of the default branch, on the remote and here.
REGISTRY_BRANCHES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")
_BRANCH_REFS = {"origin/HEAD": "refs/remotes/origin/HEAD",
                "origin/main": "refs/remotes/origin/main",
                "origin/master": "refs/remotes/origin/master",
                "main": "refs/heads/main", "master": "refs/heads/master"}


def registry_branch(root: str) -> str:
    """The branch whose first-parent history is the registry (what apply records, what plan
    compares with): the first of REGISTRY_BRANCHES that exists, asked of git in one call
    (every apply asks: one rev-parse per candidate, and another per missing one, cost more)."""
    listed = run_git(root, "for-each-ref", "--format=%(refname)",
                     *(_BRANCH_REFS[name] for name in REGISTRY_BRANCHES))
    existing = set(listed.decode("utf-8", "replace").split())
    for candidate in REGISTRY_BRANCHES:
        if _BRANCH_REFS[candidate] in existing:
            return candidate
    raise ReconcilerError(
        f"cannot tell the registry branch: none of {', '.join(REGISTRY_BRANCHES)} exists here; "
        "name it with --registry-branch (apply) or --base (plan)")


def read_blobs(root: str, blobs: list[str]) -> dict[str, bytes]:
    """Many blobs in one `git cat-file --batch` round trip."""
    return {sha: raw for sha, (_, raw) in read_objects(root, blobs, {"blob"}).items()}


def read_objects(root: str, shas: list[str], kinds: set[str]) -> dict[str, tuple[str, bytes]]:
    """Many objects (kind, bytes) in one `git cat-file --batch` round trip, each of one of
    kinds. Each comes framed by its length, so no content can pass for the next header."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    done = subprocess.run([*GIT, "-C", root, "cat-file", "--batch"], check=False,
                          input="\n".join(wanted).encode() + b"\n", capture_output=True)
    if done.returncode != 0:
        raise git_failure("cat-file", done.stderr)
    found, out, position = {}, done.stdout, 0
    for _ in wanted:
        end = out.index(b"\n", position)
        header = out[position:end].decode("ascii", errors="replace").split()
        if len(header) != 3 or header[1] not in kinds:
            raise ReconcilerError(f"git object {header[0]} is not a readable "
                                  f"{' or '.join(sorted(kinds))}")
        size = int(header[2])
        found[header[0]] = (header[1], out[end + 1:end + 1 + size])
        position = end + 1 + size + 1
    return found


def plain_path(path: str) -> bool:
    """A repository path read_at can ask git for: inside the repository, no control
    characters (a request is one line)."""
    return bool(path) and not escapes(path) and not any(ord(c) < 32 for c in path)


def read_at(root: str, wanted: list[tuple[str, str]],
            limit: int | None = None) -> dict[tuple[str, str], bytes]:
    """The blobs of (commit, path) pairs in one `git cat-file --batch` round trip; a pair
    whose path is missing at that commit, or is not a file, is left out, and so is one whose
    blob is larger than limit (its size is asked first: never read whole to be refused). Paths
    must be plain repository paths (no control characters: each request is one line)."""
    requests = sorted(set(wanted))
    if any(not plain_path(path) or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit)
           for commit, path in requests):
        raise ValueError("read_at takes a commit sha and a plain repository path")
    if limit is not None and requests:
        sizes = _blob_sizes(root, requests)
        requests = [request for request in requests if 0 <= sizes.get(request, -1) <= limit]
    if not requests:
        return {}
    done = subprocess.run([*GIT, "-C", root, "cat-file", "--batch"], check=False,
                          input=_object_names(requests), capture_output=True)
    if done.returncode != 0:
        raise git_failure("cat-file", done.stderr)
    found, out, position = {}, done.stdout, 0
    for request in requests:
        end = out.index(b"\n", position)
        line = out[position:end]
        if line.endswith((b" missing", b" ambiguous")):  # nothing follows such a line
            position = end + 1
            continue
        _, kind, size = line.split(b" ")
        if kind == b"blob":
            found[request] = out[end + 1:end + 1 + int(size)]
        position = end + 1 + int(size) + 1
    return found


def _object_names(requests: list[tuple[str, str]]) -> bytes:
    """`commit:path` lines, as `git cat-file --batch(-check)` reads them."""
    return b"".join(f"{commit}:{path}\n".encode() for commit, path in requests)


def _blob_sizes(root: str, requests: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The size of each (commit, path) that is a blob (`git cat-file --batch-check`)."""
    done = subprocess.run([*GIT, "-C", root, "cat-file", "--batch-check"], check=False,
                          input=_object_names(requests), capture_output=True)
    if done.returncode != 0:
        raise git_failure("cat-file", done.stderr)
    sizes = {}
    for request, line in zip(requests, done.stdout.split(b"\n"), strict=False):
        fields = line.split(b" ")
        if len(fields) == 3 and fields[1] == b"blob":
            sizes[request] = int(fields[2])
    return sizes


class TreeEntry(NamedTuple):
    """One file of a commit's tree (`git ls-tree -r -l`)."""

    path: str
    mode: int
    blob: str
    size: int


def ls_tree(root: str, sha: str) -> Iterator[TreeEntry]:
    """Every file (blob) of a commit, sizes included; gitlinks and trees are left out."""
    listing = run_git(root, "ls-tree", "-r", "-z", "-l", "--full-tree", sha)
    for entry in listing.split(b"\0"):  # partitioned first: only the path part is decoded
        if entry:
            meta, _, path = entry.partition(b"\t")
            mode, kind, blob, size = meta.decode("ascii").split()
            if kind == "blob":
                yield TreeEntry(decode_path(path), int(mode, 8), blob,
                                int(size) if size != "-" else 0)


class GitHistory:
    """Walks first-parent history and reads blobs: what `apply` needs from git."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)
        run_git(self.root, "rev-parse", "--git-dir")  # fails clearly outside a repository

    def resolve(self, rev: str) -> str:
        """The commit sha a revision names."""
        return resolve_commit(self.root, rev)

    def has_commit(self, sha: str) -> bool:
        """Whether the object database holds that commit."""
        return subprocess.run([*GIT, "-C", self.root, "cat-file", "-e", f"{sha}^{{commit}}"],
                              capture_output=True, check=False).returncode == 0

    def is_shallow(self) -> bool:
        """Whether this is a shallow clone (history cut off)."""
        return run_git(self.root, "rev-parse", "--is-shallow-repository").strip() == b"true"

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ancestor is reachable from descendant."""
        return subprocess.run([*GIT, "-C", self.root, "merge-base", "--is-ancestor", ancestor,
                               descendant], capture_output=True, check=False).returncode == 0

    def root_commit(self, at: str) -> str | None:
        """The first-parent root of at's history (what every clone of the repository shares);
        None when a shallow boundary hides it."""
        roots = run_git(self.root, "rev-list", "--first-parent", "--max-parents=0",
                        "--end-of-options", at).split()
        if not roots:
            return None
        found = roots[-1].decode()
        if self.is_shallow():
            where = run_git(self.root, "rev-parse", "--git-path", "shallow").decode().strip()
            try:
                with open(os.path.join(self.root, where), encoding="ascii") as handle:
                    if found in handle.read().split():
                        return None  # a commit whose parents were cut off, not a root
            except (OSError, ValueError):
                return None
        return found

    def landing_floors(self, since: str | None, until: str) -> dict[str, datetime]:
        """For each first-parent commit after since up to until, the latest committer time of
        the first-parent commits before it: a change lands no earlier than what landed before
        it, whatever time its commit claims (a function of git alone, so a rebuild agrees)."""
        floors: dict[str, datetime] = {}
        latest: datetime | None = None
        recording = since is None
        for line in run_git(self.root, "log", "--first-parent", "--reverse", "--format=%H %ct",
                            "--end-of-options", until).splitlines():
            sha, _, epoch = line.decode("ascii", "replace").partition(" ")
            if recording and latest is not None:
                floors[sha] = latest
            when = utc_time(epoch.encode())
            latest = when if latest is None else max(latest, when)
            recording = recording or sha == since
        return floors

    def on_first_parent(self, commit: str, tip: str) -> bool:
        """Whether commit is on tip's first-parent history (a commit merged in from another
        branch is reachable from tip, but not on it)."""
        if commit == tip:
            return True
        if not self.is_ancestor(commit, tip):
            return False
        lines = [line for line in run_git(self.root, "rev-list", "--first-parent", "--parents",
                                          f"{commit}..{tip}").split(b"\n") if line.strip()]
        if not lines:  # two names of one commit
            return True
        oldest = lines[-1].split()
        return len(oldest) > 1 and oldest[1].decode() == self.resolve(commit)

    def merge_base(self, first: str, second: str) -> str | None:
        """The best common ancestor, or None when histories are unrelated."""
        output = run_git(self.root, "merge-base", first, second, ok_codes=(0, 1))
        return output.decode().strip() or None

    def count_first_parent(self, since: str | None, until: str) -> int:
        """How many first-parent commits lie after since up to until (all, not only those that
        touch manifests: a cheap upper bound, read without diffing anything)."""
        span = _span(since, until)
        return int(run_git(self.root, "rev-list", "--count", "--first-parent", span))

    def commit_info(self, sha: str) -> CommitInfo:
        """Author, committer, times and message of one commit, from its raw object."""
        return self.commit_infos([sha])[sha]

    def commit_infos(self, shas: list[str]) -> dict[str, CommitInfo]:
        """Many commits' authors, committers, times and messages in one round trip."""
        return self.read_commits_and_blobs(shas, [])[0]

    def read_commits_and_blobs(self, commits: list[str], blobs: list[str]
                               ) -> tuple[dict[str, CommitInfo], dict[str, bytes]]:
        """Commits (parsed from their raw objects) and blobs, in one round trip (a backfill
        reads thousands: one `cat-file` for both saves a process per 500 commits)."""
        found = read_objects(self.root, [*commits, *blobs], {"commit", "blob"})
        wanted = set(commits)
        infos = {sha: parse_commit(sha, raw) for sha, (kind, raw) in found.items()
                 if sha in wanted and kind == "commit"}
        missing = wanted - infos.keys()
        if missing:
            raise ReconcilerError(f"git object {min(missing)} is not a readable commit")
        return infos, {sha: raw for sha, (kind, raw) in found.items() if kind == "blob"}

    def first_parent_changes(self, since: str | None,
                             until: str) -> Iterator[tuple[str, list[Change]]]:
        """Each first-parent commit after since up to until that touched manifests or DVC
        files, oldest first: its sha and those files (as changed against its first parent).

        Streamed: the first commits can be replayed while git is still walking the rest.
        """
        span = _span(since, until)
        # No pathspec: git matches a glob like '*.dvc' against every path of every commit,
        # which takes three times as long as listing all changes and keeping ours here.
        process = subprocess.Popen(
            [*GIT, "-C", self.root, "log", "--first-parent", "--reverse",
             "--diff-merges=first-parent", "--raw", "--no-renames", "--no-abbrev", "-z",
             "--format=%H", span],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None and stderr is not None
        finished = False
        try:
            for sha, listed in log_changes(_tokens(stdout)):
                changes = [Change(path, None if status == "D" or blob == NULL_SHA else blob,
                                  int(mode, 8) == SYMLINK_MODE)
                           for path, mode, blob, status in listed if is_registry_file(path)]
                if changes:
                    yield sha, changes
            errors = stderr.read()
            finished = True
        except ValueError as error:
            raise ReconcilerError(f"git log printed what apply cannot read: {error}") from None
        finally:
            stdout.close()
            if not finished:  # the consumer stopped early: git need not walk on
                process.kill()
            process.wait()
            stderr.close()
        if process.returncode != 0:
            raise git_failure("log", errors)

    def merged_in(self, since: str | None, until: str) -> dict[str, list[str]]:
        """For each first-parent commit after since up to until that is a merge, the commits
        it brought in (reachable from its other parents, not from its first parent)."""
        parents: dict[str, list[str]] = {}
        for line in run_git(self.root, "rev-list", "--parents", _span(since, until)).split(b"\n"):
            shas = line.decode("ascii").split()
            if shas:
                parents[shas[0]] = shas[1:]
        chain = []  # the first-parent chain, newest first
        sha: str | None = self.resolve(until)
        while sha is not None and sha in parents:
            chain.append(sha)
            sha = parents[sha][0] if parents[sha] else None
        # Everything reachable from a chain commit, within the range: what the next commit's
        # first parent already has. One pass over the graph, however many merges there are.
        reached: set[str] = set()
        brought: dict[str, list[str]] = {}
        for landing in reversed(chain):
            reached.add(landing)
            pending, found = list(parents[landing][1:]), []
            while pending:
                commit = pending.pop()
                if commit in reached or commit not in parents:  # not in parents: before since
                    continue
                reached.add(commit)
                found.append(commit)
                pending += parents[commit]
            if found:
                brought[landing] = found
        return brought

    def files_at(self, sha: str) -> list[Change]:
        """Every manifest and DVC file at a commit (the full state to start from)."""
        # ls-tree takes path prefixes, not globs: list everything, keep what apply reads.
        return [Change(entry.path, entry.blob, entry.mode == SYMLINK_MODE)
                for entry in ls_tree(self.root, sha) if is_registry_file(entry.path)]

    def read_blobs(self, blobs: list[str]) -> dict[str, bytes]:
        """Many blobs in one round trip (a backfill reads thousands)."""
        return read_blobs(self.root, blobs)


def nul_separated(output: bytes) -> list[str]:
    """The paths in `git ... -z` output, as text (see decode_path)."""
    return [decode_path(part) for part in output.split(b"\0") if part]


def _tokens(stdout: IO[bytes]) -> Iterator[str]:
    """The NUL-separated tokens of a stream, as they arrive."""
    pending = b""
    # Unbuffered: each read returns what git has written so far (up to 64 KiB).
    for block in iter(lambda: stdout.read(1 << 16), b""):
        parts = (pending + block).split(b"\0")
        pending = parts.pop()  # the last token may not be complete yet
        yield from (decode_path(part) for part in parts)
    if pending:
        yield decode_path(pending)

"""Running git: every git process this tool starts, and the parsing of what each prints.

Through the git command line, a handful of processes per run (rev-parse, ls-tree, log, one
`cat-file --batch` for many objects), no library to import. Objects come framed by their length
and paths NUL-separated, so no content can pass for the next record.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import IO, NamedTuple

from reconciler.diagnostics import ReconcilerError
from reconciler.git.objects import decode_path, log_changes
from reconciler.paths import is_registry_file, plain_path

# Every git command this tool runs: objects as they are, never as `git replace` refs swap them
# (a replacement would put another commit's author under the original sha in the audit trail).
GIT = ("git", "--no-replace-objects")


def run_git(root: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> bytes:
    """stdout of `git -C root args...`; a failure is a ReconcilerError with git's message."""
    done = subprocess.run([*GIT, "-C", root, *args], capture_output=True, check=False)
    if done.returncode not in ok_codes:
        raise git_failure(args[0], done.stderr)
    return done.stdout


@contextmanager
def streamed_git(root: str, command: str, *args: str, config: tuple[str, ...] = (),
                 unbuffered: bool = False) -> Iterator[IO[bytes]]:
    """stdout of `git -C root [-c config...] command args...` as a stream, read while git
    still writes it.

    When the reader stops before the end (it leaves the block early, raises, or is a
    generator closed by its consumer), git is stopped: it need not walk on, and it must not
    be left blocked on a full pipe. When the reader read to the end, a failure of git is a
    ReconcilerError with git's message."""
    settings = [option for setting in config for option in ("-c", setting)]
    process = subprocess.Popen([*GIT, "-C", root, *settings, command, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               bufsize=0 if unbuffered else -1)
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None
    read_to_the_end, errors = False, b""
    try:
        yield stdout
        # Asked only now: one more byte means the reader stopped early (a byte, or the end,
        # always comes: git writes until it is done).
        read_to_the_end = stdout.read(1) == b""
        if read_to_the_end:
            errors = stderr.read()
    finally:
        if not read_to_the_end:
            process.kill()
        stdout.close()
        process.wait()
        stderr.close()
    if read_to_the_end and process.returncode != 0:
        raise git_failure(command, errors)


def git_failure(command: str, stderr: bytes) -> ReconcilerError:
    """The error for a failed git command: its name and the last line git printed."""
    message = stderr.decode("utf-8", errors="replace").strip().splitlines()
    return ReconcilerError(f"git {command} failed: {message[-1] if message else ''}")


def revision_range(since: str | None, until: str) -> str:
    """A revision range for rev-list and log: after since (exclusive) up to until."""
    return f"{since}..{until}" if since else until


def changed_paths(root: str, base: str, head: str | None) -> list[str]:
    """The paths that differ between base and head (None: the work tree, staged or not)."""
    args = ["diff", "--name-only", "-z", "--no-renames", base] + ([head] if head else [])
    return nul_separated(run_git(root, *args))


def uncommitted(root: str, paths: list[str]) -> list[str]:
    """Of paths, those whose state in the work tree is not what HEAD holds: changed (staged or
    not), deleted, or not tracked."""
    if not paths:
        return []
    listed = run_git(root, "status", "--porcelain", "-z", "--no-renames",
                     "--untracked-files=all", "--", *(f":(literal){p}" for p in paths))
    return sorted({entry[3:] for entry in nul_separated(listed) if len(entry) > 3})


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
    names = {request: f"{request[0]}:{request[1]}" for request in requests}  # as cat-file reads
    if limit is not None and requests:
        sizes = _blob_sizes(root, list(names.values()))
        requests = [request for request in requests if 0 <= sizes.get(names[request], -1) <= limit]
    if not requests:
        return {}
    done = subprocess.run([*GIT, "-C", root, "cat-file", "--batch"], check=False,
                          input="".join(f"{names[request]}\n" for request in requests).encode(),
                          capture_output=True)
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


def _blob_sizes(root: str, names: list[str]) -> dict[str, int]:
    """The size of each object name (an id, or `commit:path`) that names a blob (`git
    cat-file --batch-check`); names must be one line each."""
    done = subprocess.run([*GIT, "-C", root, "cat-file", "--batch-check"], check=False,
                          input="".join(f"{name}\n" for name in names).encode(),
                          capture_output=True)
    if done.returncode != 0:
        raise git_failure("cat-file", done.stderr)
    sizes = {}
    for name, line in zip(names, done.stdout.split(b"\n"), strict=False):
        fields = line.split(b" ")
        if len(fields) == 3 and fields[1] == b"blob":
            sizes[name] = int(fields[2])
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


def nul_separated(output: bytes) -> list[str]:
    """The paths in `git ... -z` output, as text (see decode_path)."""
    return [decode_path(part) for part in output.split(b"\0") if part]


def nul_tokens(stdout: IO[bytes]) -> Iterator[str]:
    """The NUL-separated tokens of a stream, as they arrive."""
    pending = b""
    # Unbuffered: each read returns what git has written so far (up to 64 KiB).
    for block in iter(lambda: stdout.read(1 << 16), b""):
        parts = (pending + block).split(b"\0")
        pending = parts.pop()  # the last token may not be complete yet
        yield from (decode_path(part) for part in parts)
    if pending:
        yield decode_path(pending)


def work_tree_files(root: str, *pathspecs: str) -> list[str]:
    """The work tree's files matching pathspecs that git tracks or would (untracked, not
    ignored): `git ls-files`, so an ignored folder (DVC-tracked data can be huge) is never
    walked."""
    done = subprocess.run([*GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                           "--", *pathspecs], cwd=root, capture_output=True, check=False)
    if done.returncode != 0:
        raise ReconcilerError(f"git ls-files failed: {done.stderr.decode().strip()}")
    return nul_separated(done.stdout)


def is_tracked(root: str, path: str) -> bool:
    """Whether git tracks the file at path (taken literally, never as a pattern)."""
    return subprocess.run([*GIT, "-C", root, "ls-files", "--error-unmatch", "--",
                           f":(literal){path}"], capture_output=True, check=False
                          ).returncode == 0


_REGULAR_MODES = ("100644", "100755")


class ChangedFile(NamedTuple):
    """A file one commit changed (`git log --raw`), with its blob after the change: None when
    the commit deleted it or made it other than a regular file."""

    commit: str
    path: str
    blob: str | None


def commits_changing(root: str, rev: str, pathspecs: list[str], pattern: str | None = None
                     ) -> Generator[ChangedFile, None, None]:
    """Each file matching pathspecs that each first-parent commit of rev's history changed,
    newest first; with pattern, only files changed in a line matching that extended regular
    expression (`git log -G`). Streamed: a consumer that stops early stops git. The blobs
    come named by id: reading them by `commit:path` made git walk the trees again, most of
    the time `promote` spent asking history (bench/gto.py)."""
    args = ["--first-parent", "--diff-merges=first-parent", "--format=%H", "--raw", "-z",
            "--no-abbrev", "--no-renames", *([f"-G{pattern}"] if pattern is not None else []),
            "--end-of-options", rev, "--", *(f":(literal){p}" for p in pathspecs)]
    # -z: a path comes as git stores it, never quoted (a name holding a quote or a tab would
    # otherwise be listed as another name, and what it said in history would be lost).
    with streamed_git(root, "log", *args, unbuffered=True) as log:
        for sha, changes in log_changes(nul_tokens(log)):
            for path, mode, blob, _ in changes:
                yield ChangedFile(sha, path, blob if mode in _REGULAR_MODES else None)


def read_small_blobs(root: str, blobs: list[str], limit: int) -> dict[str, bytes]:
    """The blobs (by id) of at most limit bytes, in two `git cat-file` round trips: the sizes
    are asked first, so a larger one is never read whole to be refused."""
    sizes = _blob_sizes(root, sorted(set(blobs)))
    return read_blobs(root, [blob for blob, size in sizes.items() if size <= limit])


def commit_paths(root: str, paths: list[str], message: str) -> str:
    """Commit the work tree's state of paths (written, or deleted) and nothing else staged,
    with message; the new commit's sha. The user's own identity and hooks apply, as with
    `git commit`."""
    specs = [f":(literal){p}" for p in paths]
    run_git(root, "add", "--all", "--", *specs)
    done = subprocess.run([*GIT, "-C", root, "commit", "--quiet", "--only", "-m", message,
                           "--", *specs], capture_output=True, check=False)
    if done.returncode != 0:
        raise git_failure("commit", done.stderr or done.stdout)
    return run_git(root, "rev-parse", "HEAD").decode().strip()


@contextmanager
def git_blob(root: str, commit: str, path: str) -> Iterator[IO[bytes]]:
    """The bytes of path at commit as a stream (`git cat-file blob`): memory flat in the size."""
    if not plain_path(path):
        raise ReconcilerError(f"'{path}' is not a plain repository path")
    with streamed_git(root, "cat-file", "blob", f"{commit}:{path}") as stream:
        yield stream


def clone(url: str, folder: str) -> str:
    """`git clone` url into folder (which must not exist); folder."""
    done = subprocess.run([*GIT, "clone", "--quiet", "--no-tags", "--end-of-options", url, folder],
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise git_failure("clone", done.stderr)
    return folder

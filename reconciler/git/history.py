"""Walking the registry branch's first-parent history: what `apply`, `plan` and `audit verify`
ask of git about commits, in as few processes as the questions allow."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import datetime

from reconciler.diagnostics import ReconcilerError
from reconciler.git.objects import (
    NULL_SHA,
    SYMLINK_MODE,
    Change,
    CommitInfo,
    log_changes,
    parse_commit,
    utc_time,
)
from reconciler.git.plumbing import (
    GIT,
    ls_tree,
    nul_tokens,
    read_blobs,
    read_objects,
    resolve_commit,
    revision_range,
    run_git,
    streamed_git,
)
from reconciler.paths import is_registry_file


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
        span = revision_range(since, until)
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
        span = revision_range(since, until)
        # No pathspec: git matches a glob like '*.dvc' against every path of every commit,
        # which takes three times as long as listing all changes and keeping ours here.
        with streamed_git(self.root, "log", "--first-parent", "--reverse",
                          "--diff-merges=first-parent", "--raw", "--no-renames", "--no-abbrev",
                          "-z", "--format=%H", span, unbuffered=True) as log:
            try:
                for sha, listed in log_changes(nul_tokens(log)):
                    changes = [Change(path, None if status == "D" or blob == NULL_SHA else blob,
                                      int(mode, 8) == SYMLINK_MODE)
                               for path, mode, blob, status in listed if is_registry_file(path)]
                    if changes:
                        yield sha, changes
            except ValueError as error:
                raise ReconcilerError(f"git log printed what apply cannot read: {error}") from None

    def merged_in(self, since: str | None, until: str) -> dict[str, list[str]]:
        """For each first-parent commit after since up to until that is a merge, the commits
        it brought in (reachable from its other parents, not from its first parent)."""
        parents: dict[str, list[str]] = {}
        listed = run_git(self.root, "rev-list", "--parents", revision_range(since, until))
        for line in listed.split(b"\n"):
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

"""Reading history for `apply`: each commit's events, in chunks of whole commits.

Replays first-parent history from a starting snapshot, re-reading only the files each commit
changed, and diffs consecutive snapshots into events. Never touches a database: a long replay
runs in a forked process (ChildReplay) while `reconcile` writes what it sends.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

from reconciler import store
from reconciler.catalog import EMPTY, Catalog, History, Snapshot
from reconciler.diagnostics import ReconcilerError
from reconciler.diff import Event, Recorded, diff, undo
from reconciler.gitobjects import Change
from reconciler.source import GitHistory

CHUNK_COMMITS = 200
PREFETCH_COMMITS = 500  # commits whose changed files are read from git in one round trip
FIRST_PREFETCH_COMMITS = 50


def snapshot_at(history: GitHistory, sha: str | None,
                known: Catalog | None = None) -> tuple[History, Snapshot]:
    """The full state at a commit (every manifest and DVC file read once; files that known,
    a catalog of another commit, already parsed are not parsed again)."""
    state = History(known.parsed_files if known is not None else None)
    if sha is not None:
        files = history.files_at(sha)
        blobs = history.read_blobs([c.blob for c in files if c.blob is not None
                                    and not c.is_link])
        for change in files:
            if change.is_link:
                state.refuse(change.path, sha)
            elif change.blob is not None:
                state.update(change.path, blobs[change.blob], sha)
    return state, state.snapshot() if sha is not None else EMPTY


class Walk(NamedTuple):
    """Where a walk starts: the cursor commit, or after a history rewrite the merge base the
    database rewinds to (None there: no common ancestor, rewind to nothing). recorded is what
    the database holds when the cursor commit itself is gone from git."""

    cursor: str | None
    rewritten: bool
    base: str | None
    recorded: Recorded | None = None

    @property
    def start(self) -> str | None:
        """The commit whose snapshot the first replayed commit is diffed against."""
        return self.base if self.rewritten else self.cursor


def walk_from(history: GitHistory, cursor: str | None, target: str,
              recorded: Recorded | None = None, reset_history: bool = False) -> Walk:
    """The walk from the cursor to target; the errors a user can fix are raised here.

    When the cursor commit is gone from a full clone (a force-push, then a fresh clone),
    recorded (what the database holds, and the commits it reconciled) gives the newest
    reconciled commit git still has on target's history: the walk rewinds to it.
    """
    if cursor is not None and not history.has_commit(cursor):
        if history.is_shallow():
            raise ReconcilerError(
                f"this is a shallow clone without commit {cursor[:12]}, where the database was "
                "last reconciled: fetch more history (git fetch --unshallow, or "
                "fetch-depth: 0 in actions/checkout) and run apply again")
        if recorded is None:
            raise ReconcilerError(f"commit {cursor[:12]}, where the database was last "
                                  "reconciled, is not in this repository")
        base = next((commit for commit in recorded.commits if history.has_commit(commit)
                     and history.is_ancestor(commit, target)), None)
        if base is None and not reset_history:
            raise ReconcilerError(
                f"commit {cursor[:12]}, where the database was last reconciled, is not in this "
                f"repository, nor is any of the {len(recorded.commits)} commits it reconciled "
                "on the history of the target: if --db is this repository's database and its "
                "whole history was rewritten, `reconciler apply --reset-history` records that "
                "and replays the new history (nothing is deleted)")
        return Walk(cursor, True, base, recorded)
    if cursor is None and history.is_shallow():
        raise ReconcilerError("a first apply needs the full history, and this is a shallow "
                              "clone: git fetch --unshallow (or fetch-depth: 0) first")
    if cursor is not None and not history.is_ancestor(cursor, target):
        return Walk(cursor, True, history.merge_base(cursor, target))
    return Walk(cursor, False, None)


def chunks(history: GitHistory, walk: Walk, target: str, known: Catalog | None,
           chunk_rows: int, estimate: int | None = None) -> Iterator[Chunk]:
    """Every chunk of the walk to target (reads git and computes; never touches a database).
    estimate: about how many commits the walk has, for progress until the real count is known."""
    pending: list[store.CommitBatch] = []
    if walk.recorded is not None:  # the cursor commit is gone: undo what the database holds
        state, snapshot = snapshot_at(history, walk.base, known)
        pending.append(_rewrite_batch(history, walk.cursor, walk.base, target, None, snapshot,
                                      walk.recorded))
        commits = history.first_parent_changes(walk.base, target)
        yield from _replayed(history, state, snapshot, commits, target, pending, chunk_rows,
                             estimate)
        return
    state, snapshot = snapshot_at(history, walk.cursor, known)
    if walk.rewritten and walk.cursor is not None:
        state, rewound = snapshot_at(history, walk.base, known)
        pending.append(_rewrite_batch(history, walk.cursor, walk.base, target, snapshot,
                                      rewound))
        snapshot = rewound
    commits = history.first_parent_changes(walk.start, target)
    yield from _replayed(history, state, snapshot, commits, target, pending, chunk_rows,
                         estimate)


class Chunk(NamedTuple):
    """Whole commits to write in one transaction, ending the cursor at to_commit."""

    batches: list[store.CommitBatch]
    to_commit: str
    commits: int
    skipped: list[tuple[str, str]]
    total: int  # commits in the whole walk, for progress


def _replayed(history: GitHistory, state: History, snapshot: Snapshot,
              commits: Iterator[tuple[str, list[Change]]], target: str,
              pending: list[store.CommitBatch], chunk_rows: int,
              estimate: int | None) -> Iterator[Chunk]:
    """Replay commits onto state: each commit's events, grouped into transaction-sized chunks.
    The last chunk always ends at target (commits after the last change move the cursor)."""
    rows = sum(len(b.events) * 2 + 1 for b in pending)
    number = counted = 0
    for batch in _prefetch_batches(commits):
        infos, blobs = history.read_commits_and_blobs(
            [sha for sha, _ in batch],
            [c.blob for _, cs in batch for c in cs if c.blob is not None and not c.is_link])
        for sha, changes in batch:
            info = infos[sha]
            number += 1
            for change in changes:
                if change.is_link:
                    state.refuse(change.path, info.sha)
                else:
                    state.update(change.path,
                                 None if change.blob is None else blobs[change.blob],
                                 info.sha)
            touched = state.touched()
            after = state.snapshot()
            events = diff(snapshot, after, touched)
            snapshot = after
            pending.append(store.commit_batch(info, events, after))
            rows += len(events) * 2 + 1  # an audit row and about one entity row per event
            if len(pending) >= CHUNK_COMMITS or rows >= chunk_rows:
                yield Chunk(pending, info.sha, number - counted, list(state.skipped),
                            max(estimate or 0, number))
                pending, rows, counted = [], 0, number
    yield Chunk(pending, target, number - counted, list(state.skipped), number)


def _prefetch_batches(commits: Iterator[tuple[str, list[Change]]]
                      ) -> Iterator[list[tuple[str, list[Change]]]]:
    """Commits in groups whose blobs are read from git in one round trip; the first group is
    small, so replaying starts while git is still listing the rest."""
    size = FIRST_PREFETCH_COMMITS
    while batch := list(itertools.islice(commits, size)):
        yield batch
        size = PREFETCH_COMMITS


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _ChildFailed(NamedTuple):
    message: str


class ChildReplay:
    """Chunks computed in a forked process while this one does other work and writes.

    Parsing and diffing history take about as long as writing it, and the two are independent
    (reconcile.read_history has the figure). The child only reads git and computes; it never
    touches the database (it inherits the engine but does not use it). The collector is off
    in both (the API pauses it), so neither writes to the pages they share copy-on-write.
    """

    def __init__(self, chunks: Iterator[Chunk], walk: Walk):
        self.walk = walk  # what the chunks replay: stale once another apply moves the cursor
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._child = context.Process(target=_send_chunks, args=(chunks, self._receiver, sender),
                                      daemon=True)
        self._child.start()
        sender.close()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                message = self._receiver.recv()
            except EOFError:
                raise ReconcilerError("the history reader process stopped unexpectedly") from None
            if message is None:
                return
            if isinstance(message, _ChildFailed):
                raise ReconcilerError(message.message)
            yield message

    def close(self) -> None:
        """Stop the child, if it still runs."""
        self._receiver.close()
        if self._child.is_alive():
            self._child.kill()
        self._child.join()


BUFFERED_CHUNKS = 16  # chunks the child computes ahead of the writer (bounds its memory)


def _send_chunks(chunks: Iterator[Chunk], receiver: Any, sender: Any) -> None:
    # Only the parent may hold the read end: if it dies (kill -9), the next send fails with a
    # broken pipe and this process ends instead of blocking on a full pipe forever.
    receiver.close()
    # A thread sends, so computing never waits for the parent to read (it is busy validating
    # and rendering the target at first); the queue bounds how far ahead the child gets.
    outbox: queue.Queue[Any] = queue.Queue(BUFFERED_CHUNKS)
    sending = threading.Thread(target=_send_from, args=(outbox, sender), daemon=True)
    sending.start()
    try:
        for chunk in chunks:
            outbox.put(chunk)
        outbox.put(None)  # the end; a closed pipe without it means the child died
    except ReconcilerError as error:
        outbox.put(_ChildFailed(str(error)))
    except Exception as error:  # reported by the parent as one line
        outbox.put(_ChildFailed(f"reading history failed: {type(error).__name__}: {error}"))
    sending.join()


def _send_from(outbox: queue.Queue[Any], sender: Any) -> None:
    try:
        while True:
            message = outbox.get()
            sender.send(message)
            if message is None or isinstance(message, _ChildFailed):
                break
    except OSError:  # a broken pipe: the parent is gone, and so is any reason to go on
        os._exit(0)
    finally:
        sender.close()


def _rewrite_batch(history: GitHistory, old: str | None, base: str | None, target: str,
                   before: Snapshot | None, after: Snapshot,
                   recorded: Recorded | None = None) -> store.CommitBatch:
    """history.rewritten, plus the events that undo what the lost commits did: from their
    snapshot (before) when git still has them, else from what the database recorded."""
    anchor = history.commit_info(base or target)
    pusher = history.commit_info(target)
    payload: dict[str, Any] = {"previousCursor": old, "mergeBase": base, "target": target}
    if recorded is not None:
        payload["previousCursorMissing"] = True
    events = [Event("history.rewritten", "Repository", "", payload=payload)]
    if before is not None:
        events += diff(before, after)
    elif recorded is not None:
        events += undo(recorded, after)
    return store.commit_batch(anchor, events, after,
                              actor=(pusher.committer_name, pusher.committer_email))

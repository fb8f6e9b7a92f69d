"""`apply`: bring the database up to date with first-parent history, commit by commit.

Walks from the cursor commit to the target, diffing the snapshot of each commit against its
first parent's (re-reading only the files each commit changed), and hands whole commits to the
store in chunks, each chunk one transaction that ends on a commit boundary.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import URL, Engine, exc, inspect

from reconciler import db, store, tables
from reconciler.catalog import EMPTY, Catalog, History, Snapshot, paused_gc
from reconciler.diagnostics import ReconcilerError
from reconciler.diff import Event, diff
from reconciler.source import Change, CommitInfo, GitHistory
from reconciler.tables import table_of

CHUNK_COMMITS = 200
CHUNK_ROWS = 500
CHUNK_ROWS_SQLITE = 5000
PIPELINE_COMMITS = 400  # from this many commits on, a forked process reads while this one writes
PREFETCH_COMMITS = 500  # commits whose changed files are read from git in one round trip
FIRST_PREFETCH_COMMITS = 50

EMPTY_CURSOR = store.Cursor(None, 0, 0, store.GENESIS)


@dataclass
class ApplyResult:
    """What an apply did (or, with dry_run, would do)."""

    database: str
    target: str
    start: str | None
    commits: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rewritten: bool = False
    retries: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    stopped: bool = False  # before_writing said no: nothing was written


Progress = Callable[[int, int], None]


def repository_name(root: str) -> str:
    """How the repository is keyed in the database: its folder name unless configured."""
    return os.environ.get("RECONCILER_REPOSITORY") or os.path.basename(os.path.abspath(root))


def snapshot_at(history: GitHistory, sha: str | None,
                known: Catalog | None = None) -> tuple[History, Snapshot]:
    """The full state at a commit (every manifest and DVC file read once; files that known,
    a catalog of another commit, already parsed are not parsed again)."""
    state = History(known.parsed_files if known is not None else None)
    if sha is not None:
        files = history.files_at(sha)
        blobs = history.read_blobs([c.blob for c in files if c.blob is not None])
        for change in files:
            if change.blob is not None:
                state.update(change.path, blobs[change.blob], sha)
    return state, state.snapshot() if sha is not None else EMPTY


def apply(root: str, url: str | None = None, to: str = "HEAD", dry_run: bool = False,
          progress: Progress | None = None,
          before_writing: Callable[[str], Catalog | None] | None = None) -> ApplyResult:
    """Reconcile the database at url with root's history up to `to`.

    before_writing(target) runs once there is something to do (not on a no-op): the API
    validates the target there and returns its catalog (reused to skip re-parsing unchanged
    files), or None to stop the run.
    """
    database_url = db.database_url(root, url)
    history = GitHistory(root)
    target = history.resolve(to)
    engine = db.make_engine(database_url)
    try:
        return _apply(history, engine, database_url, root, target, dry_run, progress,
                      before_writing)
    except exc.DBAPIError as error:
        raise db.connect_error(database_url, error) from None
    finally:
        engine.dispose()


def _apply(history: GitHistory, engine: Engine, url: URL, root: str, target: str,
           dry_run: bool, progress: Progress | None,
           before_writing: Callable[[str], Catalog | None] | None) -> ApplyResult:
    started = time.perf_counter()
    repo_id = store.repository_id(repository_name(root))
    result = ApplyResult(db.shown(url), target, None, dry_run=dry_run)
    cursor = _cursor_or_empty(engine, repo_id)
    if cursor.commit_sha == target:
        result.start = target
        result.seconds = time.perf_counter() - started
        return result
    chunk_rows = CHUNK_ROWS_SQLITE if engine.dialect.name == "sqlite" else CHUNK_ROWS
    walk = _walk_from(history, cursor.commit_sha, target)
    estimate = history.count_first_parent(walk.start, target)
    pipelined = not dry_run and _can_fork() and estimate >= PIPELINE_COMMITS
    # A long backfill starts replaying history in another process at once, so that validating
    # the target (and whatever else before_writing does) happens while history is read.
    early = (_ChildReplay(_replay(history, walk, target, None, chunk_rows, estimate), walk)
             if pipelined else None)
    try:
        db.ensure_schema(engine, url, migrate=False)  # SQLite: migrated while history is read
        known = before_writing(target) if before_writing is not None else None
        if before_writing is not None and known is None:
            result.stopped = True
            return result
        if not dry_run:
            db.with_retries(lambda: store.ensure_repository(engine, repo_id,
                                                            repository_name(root)))
        while True:
            cursor = (store.read_cursor(engine, repo_id) if not dry_run
                      else _cursor_or_empty(engine, repo_id))
            result.start = cursor.commit_sha
            if cursor.commit_sha == target:
                break
            if cursor.commit_sha != walk.cursor:
                walk = _walk_from(history, cursor.commit_sha, target)
            result.rewritten = walk.rewritten
            chunks: Iterable[_Chunk]
            if early is not None and early.walk != walk:  # another apply moved the cursor
                early.close()
                early = None
            if early is not None:
                chunks, early = early, None
            elif pipelined:
                chunks = _ChildReplay(_replay(history, walk, target, known, chunk_rows,
                                              estimate), walk)
            else:
                chunks = _replay(history, walk, target, known, chunk_rows, estimate)
            try:
                _write_all(engine, repo_id, cursor, chunks, result, progress)
                break
            except store.CursorMoved:
                # Another apply got there first: everything it wrote is whole commits; go on
                # from it.
                result.retries += 1
            finally:
                if isinstance(chunks, _ChildReplay):
                    chunks.close()
    finally:
        if early is not None:
            early.close()
    result.seconds = time.perf_counter() - started
    return result


def _cursor_or_empty(engine: Engine, repo_id: str) -> store.Cursor:
    """The cursor, or an empty one while the database has none (new, or never applied)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(table_of(tables.ReconcileCursor).name):
            return EMPTY_CURSOR
        try:
            return store.cursor_in(connection, repo_id)
        except exc.NoResultFound:
            return EMPTY_CURSOR


class _Walk(NamedTuple):
    """Where a walk starts: the cursor commit, or after a history rewrite the merge base the
    database rewinds to (None there: no common ancestor, rewind to nothing)."""

    cursor: str | None
    rewritten: bool
    base: str | None

    @property
    def start(self) -> str | None:
        """The commit whose snapshot the first replayed commit is diffed against."""
        return self.base if self.rewritten else self.cursor


def _walk_from(history: GitHistory, cursor: str | None, target: str) -> _Walk:
    """The walk from the cursor to target; the errors a user can fix are raised here."""
    if cursor is not None and not history.has_commit(cursor):
        if history.is_shallow():
            raise ReconcilerError(
                f"this is a shallow clone without commit {cursor[:12]}, where the database was "
                "last reconciled: fetch more history (git fetch --unshallow, or "
                "fetch-depth: 0 in actions/checkout) and run apply again")
        raise ReconcilerError(
            f"commit {cursor[:12]}, where the database was last reconciled, is not in this "
            "repository: is --db the database of another repository?")
    if cursor is None and history.is_shallow():
        raise ReconcilerError("a first apply needs the full history, and this is a shallow "
                              "clone: git fetch --unshallow (or fetch-depth: 0) first")
    if cursor is not None and not history.is_ancestor(cursor, target):
        return _Walk(cursor, True, history.merge_base(cursor, target))
    return _Walk(cursor, False, None)


def _replay(history: GitHistory, walk: _Walk, target: str, known: Catalog | None,
            chunk_rows: int, estimate: int | None = None) -> Iterator[_Chunk]:
    """Every chunk of the walk to target (reads git and computes; never touches a database).
    estimate: about how many commits the walk has, for progress until the real count is known."""
    pending: list[store.CommitBatch] = []
    state, snapshot = snapshot_at(history, walk.cursor, known)
    if walk.rewritten and walk.cursor is not None:
        state, rewound = snapshot_at(history, walk.base, known)
        pending.append(_rewrite_batch(history, walk.cursor, walk.base, target, snapshot,
                                      rewound))
        snapshot = rewound
    commits = history.first_parent_changes(walk.start, target)
    yield from _chunks(history, state, snapshot, commits, target, pending, chunk_rows,
                       estimate)


def _write_all(engine: Engine, repo_id: str, cursor: store.Cursor, chunks: Iterable[_Chunk],
               result: ApplyResult, progress: Progress | None) -> None:
    writer = _Writer(engine, repo_id, cursor, result)
    done = 0
    with paused_gc():
        for chunk in chunks:
            writer.write(chunk.batches, chunk.to_commit)
            # Counted once written: a chunk lost to a concurrent apply is not this run's work.
            done += chunk.commits
            result.commits += chunk.commits
            result.events.update(e.type for b in chunk.batches for e in b.events)
            result.skipped = chunk.skipped
            if progress is not None:
                progress(done, chunk.total)


class _Chunk(NamedTuple):
    """Whole commits to write in one transaction, ending the cursor at to_commit."""

    batches: list[store.CommitBatch]
    to_commit: str
    commits: int
    skipped: list[tuple[str, str]]
    total: int  # commits in the whole walk, for progress


def _chunks(history: GitHistory, state: History, snapshot: Snapshot,
            commits: Iterator[tuple[CommitInfo, list[Change]]], target: str,
            pending: list[store.CommitBatch], chunk_rows: int,
            estimate: int | None) -> Iterator[_Chunk]:
    """Replay commits onto state: each commit's events, grouped into transaction-sized chunks.
    The last chunk always ends at target (commits after the last change move the cursor)."""
    rows = sum(len(b.events) * 2 + 1 for b in pending)
    number = counted = 0
    with paused_gc():
        for batch in _prefetch_batches(commits):
            blobs = history.read_blobs([c.blob for _, cs in batch for c in cs
                                        if c.blob is not None])
            for info, changes in batch:
                number += 1
                for change in changes:
                    state.update(change.path,
                                 None if change.blob is None else blobs[change.blob], info.sha)
                touched = state.touched()
                after = state.snapshot()
                events = diff(snapshot, after, touched)
                snapshot = after
                pending.append(store.commit_batch(info, events, after))
                rows += len(events) * 2 + 1  # an audit row and about one entity row per event
                if len(pending) >= CHUNK_COMMITS or rows >= chunk_rows:
                    yield _Chunk(pending, info.sha, number - counted, list(state.skipped),
                                 max(estimate or 0, number))
                    pending, rows, counted = [], 0, number
    yield _Chunk(pending, target, number - counted, list(state.skipped), number)


def _prefetch_batches(commits: Iterator[tuple[CommitInfo, list[Change]]]
                      ) -> Iterator[list[tuple[CommitInfo, list[Change]]]]:
    """Commits in groups whose blobs are read from git in one round trip; the first group is
    small, so replaying starts while git is still listing the rest."""
    size = FIRST_PREFETCH_COMMITS
    while batch := list(itertools.islice(commits, size)):
        yield batch
        size = PREFETCH_COMMITS


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _ChildFailed(NamedTuple):
    message: str


class _ChildReplay:
    """Chunks computed in a forked process while this one does other work and writes.

    Parsing and diffing history take about as long as writing it, and the two are independent:
    with two processes a backfill takes about half the time. The child only reads git and
    computes; it never touches the database (it inherits the engine but does not use it).
    """

    def __init__(self, chunks: Iterator[_Chunk], walk: _Walk):
        self.walk = walk  # what the chunks replay: stale once another apply moves the cursor
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._child = context.Process(target=_send_chunks, args=(chunks, self._receiver, sender),
                                      daemon=True)
        # Both processes share the heap copy-on-write: a full collection in either would
        # write to every object and copy every page (0.15 s for a few hundred MiB), so the
        # collector leaves what exists now alone until the child is done.
        gc.freeze()
        self._child.start()
        sender.close()

    def __iter__(self) -> Iterator[_Chunk]:
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
        gc.unfreeze()


BUFFERED_CHUNKS = 16  # chunks the child computes ahead of the writer (bounds its memory)


def _send_chunks(chunks: Iterator[_Chunk], receiver: Any, sender: Any) -> None:
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


class _Writer:
    """Hands chunks to the store, carrying the cursor and open stage assignments between them."""

    def __init__(self, engine: Engine, repo_id: str, cursor: store.Cursor, result: ApplyResult):
        self.engine, self.repo_id, self.result = engine, repo_id, result
        self.seen = cursor
        self.open: store.OpenAssignments | None = None  # None: read from the database

    def write(self, pending: list[store.CommitBatch], to_commit: str) -> None:
        """One transaction: these whole commits, and the cursor moved to to_commit."""
        if self.result.dry_run:
            return

        def attempt() -> tuple[store.Cursor, store.OpenAssignments]:
            return store.write_chunk(self.engine, self.repo_id, self.seen, pending, to_commit,
                                     self.open)

        def count(_error: BaseException, _number: int) -> None:
            self.result.retries += 1

        self.seen, self.open = db.with_retries(attempt, on_retry=count)


def _rewrite_batch(history: GitHistory, old: str, base: str | None, target: str,
                   before: Snapshot, after: Snapshot) -> store.CommitBatch:
    """history.rewritten, plus the events that undo what the lost commits did."""
    anchor = history.commit_info(base or target)
    pusher = history.commit_info(target)
    events = [Event("history.rewritten", "Repository", "", payload={
        "previousCursor": old, "mergeBase": base, "target": target})]
    events += diff(before, after)
    return store.commit_batch(anchor, events, after,
                              actor=(pusher.committer_name, pusher.committer_email))


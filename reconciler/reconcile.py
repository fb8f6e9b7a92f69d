"""`apply`: bring the database up to date with first-parent history, commit by commit.

Reads the cursor (the last reconciled commit) and, when the target is ahead of it, has `replay`
compute each commit's events from git and writes them through `store` in chunks, each chunk
one transaction that ends on a commit boundary. A long backfill replays in a forked process
while this one validates the target and writes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import URL, Engine, exc, inspect

from reconciler import db, store, tables
from reconciler.gcpause import paused_gc
from reconciler.source import GitHistory
from reconciler.tables import table_of

if TYPE_CHECKING:
    from reconciler.catalog import Catalog
    from reconciler.diff import Recorded
    from reconciler.replay import Chunk

CHUNK_ROWS = 500
CHUNK_ROWS_SQLITE = 5000
PIPELINE_COMMITS = 400  # from this many commits on, a forked process reads while this one writes

EMPTY_CURSOR = store.Cursor(None, 0, 0, store.GENESIS)


@dataclass
class ApplyResult:
    """What an apply did (or, with dry_run, would do)."""

    database: str
    target: str
    start: str | None
    commits: int = 0  # commits replayed: those that touched a manifest or DVC file
    walked: int = 0  # first-parent commits from start to target, touched or not
    changed: int = 0  # commits whose events changed the registry
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


def apply(root: str, url: str | None = None, to: str = "HEAD", dry_run: bool = False,
          progress: Progress | None = None,
          before_writing: Callable[[str], Catalog | None] | None = None,
          after_writing: Callable[[Engine], None] | None = None,
          reset_history: bool = False) -> ApplyResult:
    """Reconcile the database at url with root's history up to `to`.

    before_writing(target) runs once there is something to do (not on a no-op): the API
    validates the target there and returns its catalog (reused to skip re-parsing unchanged
    files), or None to stop the run. after_writing(engine) runs once every commit is written
    (not on a no-op or a dry run), on the same database: the API records renders there.
    """
    database_url = db.database_url(root, url, create=not dry_run)
    history = GitHistory(root)
    target = history.resolve(to)
    engine = db.make_engine(database_url)
    try:
        if db.exists(database_url):  # a new embedded database is created further on
            db.connect(engine, database_url)
        return _apply(history, engine, database_url, root, target, dry_run, progress,
                      before_writing, after_writing, reset_history)
    except exc.DBAPIError as error:
        raise db.connect_error(database_url, error) from None
    finally:
        engine.dispose()


def _apply(history: GitHistory, engine: Engine, url: URL, root: str, target: str,
           dry_run: bool, progress: Progress | None,
           before_writing: Callable[[str], Catalog | None] | None,
           after_writing: Callable[[Engine], None] | None, reset_history: bool) -> ApplyResult:
    started = time.perf_counter()
    repo_id = store.repository_id(repository_name(root))
    result = ApplyResult(db.shown(url), target, None, dry_run=dry_run)
    cursor = _cursor_or_empty(engine, url, repo_id)
    if cursor.commit_sha == target:
        result.start = target
        result.seconds = time.perf_counter() - started
        return result
    # Only now that there is history to read: a no-op apply never loads the manifest parser,
    # the models and the differ (about a third of its start-up).
    from reconciler import replay

    chunk_rows = CHUNK_ROWS_SQLITE if engine.dialect.name == "sqlite" else CHUNK_ROWS
    walk = replay.walk_from(history, cursor.commit_sha, target,
                            _recorded_if_lost(history, engine, url, repo_id, cursor),
                            reset_history)
    estimate = history.count_first_parent(walk.start, target)
    result.start, result.walked = cursor.commit_sha, estimate
    pipelined = not dry_run and replay.can_fork() and estimate >= PIPELINE_COMMITS
    # A long backfill starts replaying history in another process at once, so that validating
    # the target (and whatever else before_writing does) happens while history is read.
    early = (replay.ChildReplay(replay.chunks(history, walk, target, None, chunk_rows, estimate),
                                walk) if pipelined else None)
    try:
        if not dry_run:  # a dry run writes nothing, not even a new database's schema
            db.ensure_schema(engine, url, migrate=False)  # SQLite: made while history is read
        known = before_writing(target) if before_writing is not None else None
        if before_writing is not None and known is None:
            result.stopped = True
            return result
        if not dry_run:
            db.with_retries(lambda: store.ensure_repository(engine, repo_id,
                                                            repository_name(root)))
        while True:
            cursor = (store.read_cursor(engine, repo_id) if not dry_run
                      else _cursor_or_empty(engine, url, repo_id))
            if cursor.commit_sha == target:
                break
            if cursor.commit_sha != walk.cursor:
                walk = replay.walk_from(history, cursor.commit_sha, target,
                                        _recorded_if_lost(history, engine, url, repo_id, cursor),
                                        reset_history)
            result.rewritten = walk.rewritten
            chunks: Iterable[Chunk]
            if early is not None and early.walk != walk:  # another apply moved the cursor
                early.close()
                early = None
            if early is not None:
                chunks, early = early, None
            elif pipelined:
                chunks = replay.ChildReplay(replay.chunks(history, walk, target, known,
                                                          chunk_rows, estimate), walk)
            else:
                chunks = replay.chunks(history, walk, target, known, chunk_rows, estimate)
            try:
                _write_all(engine, repo_id, cursor, chunks, result, progress)
                break
            except store.CursorMoved:
                # Another apply got there first: everything it wrote is whole commits; go on
                # from it.
                result.retries += 1
            finally:
                if isinstance(chunks, replay.ChildReplay):
                    chunks.close()
    finally:
        if early is not None:
            early.close()
    if after_writing is not None and not dry_run:
        after_writing(engine)
    result.seconds = time.perf_counter() - started
    return result


def _recorded_if_lost(history: GitHistory, engine: Engine, url: URL, repo_id: str,
                      cursor: store.Cursor) -> Recorded | None:
    """What the database holds, read only when git no longer has the cursor commit."""
    if cursor.commit_sha is None or history.has_commit(cursor.commit_sha) or not db.exists(url):
        return None
    return store.recorded_state(engine, repo_id)


def _cursor_or_empty(engine: Engine, url: URL, repo_id: str) -> store.Cursor:
    """The cursor, or an empty one while the database has none (new, never applied, or an
    embedded one not created yet, which reading must not create)."""
    if not db.exists(url):
        return EMPTY_CURSOR
    with engine.connect() as connection:
        if not inspect(connection).has_table(table_of(tables.ReconcileCursor).name):
            return EMPTY_CURSOR
        try:
            return store.cursor_in(connection, repo_id)
        except exc.NoResultFound:
            return EMPTY_CURSOR


def _write_all(engine: Engine, repo_id: str, cursor: store.Cursor, chunks: Iterable[Chunk],
               result: ApplyResult, progress: Progress | None) -> None:
    writer = _Writer(engine, repo_id, cursor, result)
    done = 0
    with paused_gc():
        for chunk in chunks:
            writer.write(chunk.batches, chunk.to_commit)
            # Counted once written: a chunk lost to a concurrent apply is not this run's work.
            done += chunk.commits
            result.commits += chunk.commits
            result.changed += sum(1 for batch in chunk.batches if batch.events)
            result.events.update(e.type for b in chunk.batches for e in b.events)
            result.skipped = chunk.skipped
            if progress is not None:
                progress(done, chunk.total)


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



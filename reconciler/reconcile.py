"""`apply`: the database brought up to date with the registry branch's history, and the target's
configs rendered and recorded.

`apply` calls each step in this order (`sync` the same without validating or rendering the
target, which `audit verify` rebuilds with):

1. `registry.connect.open_registry`: the engine, checked to work, and the repository's key.
2. `plan`: read the cursor (the last reconciled commit) and decide the walk to the target.
3. `start_reader` (a long backfill: a forked process replays history from now on) or
   `read_history` (here): the walk's chunks of whole commits, computed by `replay`.
4. `write`: each chunk in one transaction that ends on a commit boundary and moves the cursor
   by compare-and-set (`store.write_chunk`); when another apply got there first, plan again
   from where it stopped and go on.
   The last chunk also records what changed in the configs rendered at the target, in the
   same transaction.

Between reading and writing, `apply` validates and renders the target: a long backfill's
history is replayed by a forked process meanwhile.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from reconciler.batch import CommitBatch
from reconciler.diagnostics import Diagnostic, ReconcilerError, printable, sort_key
from reconciler.gcpause import paused_gc
from reconciler.git.history import GitHistory
from reconciler.git.plumbing import registry_branch
from reconciler.registry import db, store
from reconciler.registry.connect import Database, Purpose, RepositoryKey, open_registry
from reconciler.validate import Result, checked_catalog

if TYPE_CHECKING:
    from reconciler.catalog import Catalog
    from reconciler.diff import DatabaseState
    from reconciler.gto.importer import Imported
    from reconciler.replay import Chunk, Walk

# From this many commits on, a forked process replays history while this one validates,
# renders and writes (bench/apply.py; see start_reader).
PIPELINE_COMMITS = 400
Progress = Callable[[int, int], None]


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


class ApplyOutcome(NamedTuple):
    """Validation of the target, what apply wrote (None when validation stopped it), and the
    configs rendered at the target (their digests recorded in the database)."""

    validation: Result
    applied: ApplyResult | None
    rendered: list[str]
    render_problems: list[Diagnostic]


class ApplyPlan(NamedTuple):
    """Where apply starts and ends: walk is None when the database is up to date."""

    target: str
    cursor: store.Cursor
    walk: Walk | None
    commits: int  # first-parent commits the walk covers


def plan(database: Database, to: str, *, reset_history: bool = False,
         registry_branch: str | None = None, cursor_gone: bool = False) -> ApplyPlan:
    """Read the cursor and decide the walk from it to `to` (None when there is nothing to do).
    Only then is the history reader imported: a no-op apply never loads the manifest parser.

    With registry_branch, `to` must be on that branch's first-parent history: the audit trail
    records what landed on the registry branch, never another branch's commits.

    cursor_gone replays a rewrite as an apply did that found the cursor commit gone from git
    (what the database recorded is undone), even where git has it again: a rebuild takes the
    walk the apply took."""
    target = database.history.resolve(to)
    if registry_branch is not None:
        _check_on_branch(database.history, to, target, registry_branch)
    return _plan_from(database, _cursor_or_empty(database), target, reset_history, cursor_gone)


def _check_on_branch(history: GitHistory, to: str, target: str, branch: str) -> None:
    if history.on_first_parent(target, history.resolve(branch)):
        return
    shallow = " (or this shallow clone does not reach it: fetch more history)" if (
        history.is_shallow()) else ""
    raise ReconcilerError(
        f"{printable(to)} ({target[:12]}) is not on the first-parent history of the registry "
        f"branch {printable(branch)}{shallow}: apply records only what landed there; run it "
        "on that branch, or name the registry branch with --registry-branch; nothing was "
        "written")


def _plan_from(database: Database, cursor: store.Cursor, target: str,
               reset_history: bool, cursor_gone: bool = False) -> ApplyPlan:
    if cursor.commit_sha == target:
        return ApplyPlan(target, cursor, None, 0)
    from reconciler import replay

    walk = replay.walk_from(database.history, cursor.commit_sha, target,
                            _recorded_if_lost(database, cursor, cursor_gone), reset_history)
    return ApplyPlan(target, cursor, walk, database.history.count_first_parent(walk.start, target))


def up_to_date(database: Database, planned: ApplyPlan) -> ApplyResult:
    """The result of an apply with nothing to do."""
    return ApplyResult(db.redacted(database.url), planned.target, planned.target,
                       dry_run=database.dry_run)


def start_reader(database: Database, planned: ApplyPlan) -> Iterable[Chunk] | None:
    """For a long backfill, a forked process that replays the walk from now on, while this one
    validates and renders the target and then writes what it sends; None for a short walk.

    Forked before validating and rendering, not after: the child then overlaps all of it
    (bench/apply.py, docs/BENCHMARKS.md)."""
    from reconciler import replay

    assert planned.walk is not None, "plan says the database is up to date"
    if database.dry_run or planned.commits < PIPELINE_COMMITS or not replay.can_fork():
        return None
    return replay.ChildReplay(replay.chunks(database.history, planned.walk, planned.target,
                                            None, store.chunk_rows(database.engine),
                                            planned.commits), planned.walk)


def read_history(database: Database, planned: ApplyPlan,
                 known: Catalog | None = None) -> Iterable[Chunk]:
    """The chunks of the planned walk, replayed here as they are written (files that known, a
    catalog already parsed, holds are not parsed again)."""
    from reconciler import replay

    assert planned.walk is not None, "plan says the database is up to date"
    return replay.chunks(database.history, planned.walk, planned.target, known,
                         store.chunk_rows(database.engine), planned.commits)


def close_history(chunks: Iterable[Chunk]) -> None:
    """Stop a forked reader (read_history), if it still runs."""
    from reconciler import replay

    if isinstance(chunks, replay.ChildReplay):
        chunks.close()


def write(database: Database, planned: ApplyPlan, chunks: Iterable[Chunk],
          progress: Progress | None = None, known: Catalog | None = None,
          reset_history: bool = False,
          rendered: list[tuple[str, str, str, str]] | None = None) -> ApplyResult:
    """Write the chunks, each in one transaction moving the cursor by compare-and-set; the
    last one, which ends at the target, also records what changed in the configs rendered
    there (rendered: environment, model, path, sha256 of each). When another apply moved the
    cursor first, what it wrote is whole commits: plan again from there and replay the rest
    here."""
    result = ApplyResult(db.redacted(database.url), planned.target, planned.cursor.commit_sha,
                         walked=planned.commits, dry_run=database.dry_run)
    assert planned.walk is not None, "plan says the database is up to date"
    result.rewritten = planned.walk.rewritten
    if not database.dry_run:  # a dry run writes nothing, not even a new database's schema
        db.ensure_schema(database.engine, database.url, migrate=False)
        db.with_retries(lambda: store.ensure_repository(
            database.engine, database.repo_id, database.repository.name,
            database.repository.root_commit))
        current = _replanned(database, planned, reset_history)
        if current.cursor.commit_sha != planned.cursor.commit_sha:
            # Another apply moved the cursor while this one validated: what was read is for
            # a walk that no longer starts there.
            close_history(chunks)
            chunks = _reread(database, current, known)
        planned = current
    renders = (store.Renders(database.history.commit_info(planned.target), rendered)
               if rendered is not None else None)
    while planned.walk is not None:
        try:
            _write_all(database, planned.cursor, chunks, result, progress, renders)
            break
        except store.CursorMoved:
            result.retries += 1  # what the other apply wrote is whole commits: go on from it
            close_history(chunks)
            planned = _replanned(database, planned, reset_history)
            chunks = _reread(database, planned, known)
    return result


def _reread(database: Database, planned: ApplyPlan, known: Catalog | None) -> Iterable[Chunk]:
    """The rest of a walk after a concurrent apply: here, it is short or already done."""
    return read_history(database, planned, known) if planned.walk else []


def _replanned(database: Database, planned: ApplyPlan, reset_history: bool) -> ApplyPlan:
    """The plan again from the cursor as committed now (another apply may have moved it)."""
    cursor = store.read_cursor(database.engine, database.repo_id)
    if cursor.commit_sha == planned.cursor.commit_sha:
        return planned._replace(cursor=cursor)  # the same walk; its generation may be newer
    return _plan_from(database, cursor, planned.target, reset_history)


def _write_all(database: Database, cursor: store.Cursor, chunks: Iterable[Chunk],
               result: ApplyResult, progress: Progress | None,
               renders: store.Renders | None) -> None:
    seen, open_assignments = cursor, None  # None: read the open assignments from the database
    done = 0
    for chunk in chunks:
        if not database.dry_run:  # one transaction, retried whole on a transient error
            at_target = renders is not None and chunk.to_commit == renders.info.sha
            written = db.with_retries(
                functools.partial(store.write_chunk, database.engine, database.repo_id, seen,
                                  chunk.batches, chunk.to_commit, open_assignments,
                                  renders if at_target else None),
                on_retry=lambda *_: _count(result))
            seen, open_assignments = written.cursor, written.open_assignments
            result.events.update(written.render_events)
        # Counted once written: a chunk lost to a concurrent apply is not this run's work.
        done += chunk.commits
        result.commits += chunk.commits
        result.changed += sum(1 for batch in chunk.batches if batch.events)
        result.events.update(e.type for b in chunk.batches for e in b.events)
        result.skipped = chunk.skipped
        if progress is not None:
            progress(done, chunk.total)


def _count(result: ApplyResult) -> None:
    result.retries += 1


def _recorded_if_lost(database: Database, cursor: store.Cursor,
                      gone: bool = False) -> DatabaseState | None:
    """What the database holds, read only when git no longer has the cursor commit (or the
    walk is replayed as if it had not: gone)."""
    if cursor.commit_sha is None or not db.exists(database.url) or (
            not gone and database.history.has_commit(cursor.commit_sha)):
        return None
    return store.recorded_state(database.engine, database.repo_id)


def _cursor_or_empty(database: Database) -> store.Cursor:
    """The cursor, or an empty one while the database has none (new, never applied, or an
    embedded one not created yet, which reading must not create)."""
    if not db.exists(database.url):
        return store.EMPTY_CURSOR
    return store.cursor_or_empty(database.engine, database.repo_id)


def apply(root: str, url: str | None = None, *, to: str = "HEAD", dry_run: bool = False,
          progress: Progress | None = None, out: str | None = None, reset_history: bool = False,
          branch: str | None = None) -> ApplyOutcome:
    """Validate the target revision, reconcile the database with history up to it, then render
    the target's deployment configs and record their digests (written to out when given).
    The target must be on the registry branch (by default the one plan compares with)."""
    started = time.perf_counter()
    with paused_gc(), open_registry(root, url, purpose=_purpose(dry_run), at=to) as database:
        planned = plan(database, to, reset_history=reset_history,
                       registry_branch=branch or registry_branch(root))
        if planned.walk is None and out is None:  # up to date: no parser, models or templates
            return ApplyOutcome(Result([], 0), up_to_date(database, planned), [], [])
        reader = start_reader(database, planned) if planned.walk else None
        try:
            from reconciler.render import engine

            target, checked = checked_catalog(root, None, planned.target)
            if not checked.ok:
                return ApplyOutcome(checked, None, [], [])
            rendered, problems = engine.render_catalog(target) if not dry_run else ([], [])
            if planned.walk is None:
                applied = up_to_date(database, planned)
            else:
                chunks = reader or read_history(database, planned, target)
                # Recorded with the cursor's move to the target: only a render that worked.
                renders = None if dry_run or problems else [
                    (r.environment, r.model, r.path, r.digest) for r in rendered]
                applied = write(database, planned, chunks, progress, target,
                                reset_history, renders)
        finally:
            if reader is not None:
                close_history(reader)
    applied.seconds = time.perf_counter() - started  # validate, sync, render: all of it
    if dry_run:
        return ApplyOutcome(checked, applied, [], [])
    if problems:
        return ApplyOutcome(checked, applied, [], sorted(problems, key=sort_key))
    if out is not None:
        from reconciler.render.folder import OutputFolder, Unsafe, unsafe_diagnostic

        try:
            OutputFolder(root, out, rendered, None).write()
        except Unsafe as unsafe:
            return ApplyOutcome(checked, applied, [], [unsafe_diagnostic(root, unsafe)])
    return ApplyOutcome(checked, applied, [r.path for r in rendered], [])


def _purpose(dry_run: bool) -> Purpose:
    return "dry-run" if dry_run else "write"


def sync(root: str, url: str | None = None, to: str = "HEAD", dry_run: bool = False,
         progress: Progress | None = None, reset_history: bool = False,
         repository: RepositoryKey | None = None, cursor_gone: bool = False) -> ApplyResult:
    """Reconcile the database at url with root's history up to `to`, without validating or
    rendering the target (what `audit verify` rebuilds with, under the repository key of the
    database it checks, replaying a rewrite as the apply did: cursor_gone, see plan; `apply`
    does all of it). A database moved by sync alone lacks the cursor commit's renders, which
    `audit verify` checks."""
    started = time.perf_counter()
    with open_registry(root, url, purpose=_purpose(dry_run), at=to,
                       repository=repository) as database:
        planned = plan(database, to, reset_history=reset_history, cursor_gone=cursor_gone)
        if planned.walk is None:
            return up_to_date(database, planned)
        chunks = start_reader(database, planned) or read_history(database, planned)
        try:
            result = write(database, planned, chunks, progress, reset_history=reset_history)
        finally:
            close_history(chunks)
    result.seconds = time.perf_counter() - started
    return result


IMPORT_CHUNK = 200  # tags per transaction (each a few rows: well inside TiDB's limits)


def import_history(root: str, url: str | None, imported: Imported,
                   repository: RepositoryKey | None = None) -> int:
    """Write a GTO registry's history (gtoimport.history_events) into the database before
    the first apply: each event at its tag's time, by its tagger, marked imported. The
    cursor stays before every commit, so the first apply then replays the repository from
    the beginning, adoption commit included. Returns how many events were written."""
    from reconciler.events import Event
    from reconciler.gto import importer as gtoimport

    with open_registry(root, url, purpose="write", repository=repository) as database:
        db.ensure_schema(database.engine, database.url, migrate=False)
        db.with_retries(lambda: store.ensure_repository(
            database.engine, database.repo_id, database.repository.name,
            database.repository.root_commit))
        cursor = store.read_cursor(database.engine, database.repo_id)
        if cursor.commit_sha is not None or cursor.event_seq:
            raise ReconcilerError(
                f"{db.redacted(database.url)} already holds history of this repository: a GTO "
                "registry is imported before the first apply (into a new database)")
        steps = list(gtoimport.history_events(imported))
        infos = database.history.commit_infos(sorted({action.commit
                                                      for action, _, _ in steps}))
        batches = [CommitBatch(
            infos[action.commit],
            [Event(kind, "Model", fields["name"], fields.get("version"),
                   fields.get("environment"), fields["payload"])],
            {}, actor=(action.who_name, action.who_email), landed_at=landed)
            for action, landed, (kind, fields) in steps]
        opened: store.OpenAssignments | None = None
        for start in range(0, len(batches), IMPORT_CHUNK):
            cursor, opened = _write_imported(database, cursor,
                                             batches[start:start + IMPORT_CHUNK], opened)
        return sum(len(batch.events) for batch in batches)


def _write_imported(database: Database, cursor: store.Cursor, batches: list[CommitBatch],
                    opened: store.OpenAssignments | None
                    ) -> tuple[store.Cursor, store.OpenAssignments]:
    written = db.with_retries(lambda: store.write_chunk(database.engine, database.repo_id,
                                                        cursor, batches, None, opened))
    return written.cursor, written.open_assignments

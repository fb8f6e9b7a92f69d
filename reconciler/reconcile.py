"""`apply`'s steps on the database: plan the walk, read history, write it, record renders.

Each step is one function, called in this order by `api.apply` (which validates and renders
the target between reading and writing):

1. `open_database`: the engine, checked to work.
2. `plan`: read the cursor (the last reconciled commit) and decide the walk to the target.
3. `start_reader` (a long backfill: a forked process replays history from now on) or
   `read_history` (here): the walk's chunks of whole commits, computed by `replay`.
4. `write`: each chunk in one transaction that ends on a commit boundary and moves the cursor
   by compare-and-set (`store.write_chunk`); when another apply got there first, plan again
   from where it stopped and go on.
   The last chunk also records what changed in the configs rendered at the target, in the
   same transaction.
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import URL, Engine, exc, inspect

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.git.history import GitHistory
from reconciler.git.objects import decode_path
from reconciler.limits import NAME_CHARS
from reconciler.registry import db, store, tables

if TYPE_CHECKING:
    from reconciler.catalog import Catalog
    from reconciler.diff import Recorded
    from reconciler.gto.importer import Imported
    from reconciler.replay import Chunk, Walk

CHUNK_ROWS = 500  # TiDB's transaction limits (DESIGN.md rule 5)
CHUNK_ROWS_SQLITE = 5000
# From this many commits on, a forked process replays history while this one validates,
# renders and writes: measured on bench/apply.py's 2,000 commits, see start_reader.
PIPELINE_COMMITS = 400
EMPTY_CURSOR = store.Cursor(None, 0, 0, store.GENESIS)

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


class RepositoryKey(NamedTuple):
    """How a repository is keyed in the database: its id, its name (shown), and the root commit
    it is found by (None under RECONCILER_REPOSITORY, or when a shallow clone hides it)."""

    id: str
    name: str
    root_commit: str | None


class Database(NamedTuple):
    """The database apply writes, and the repository it reconciles."""

    root: str
    url: URL
    engine: Engine
    repository: RepositoryKey
    history: GitHistory
    dry_run: bool

    @property
    def repo_id(self) -> str:
        """The repository's key in every table."""
        return self.repository.id


class Plan(NamedTuple):
    """Where apply starts and ends: walk is None when the database is up to date."""

    target: str
    cursor: store.Cursor
    walk: Walk | None
    commits: int  # first-parent commits the walk covers


REPOSITORY_VARIABLE = "RECONCILER_REPOSITORY"


def repository_name(root: str) -> str:
    """The name shown for the repository: RECONCILER_REPOSITORY, else its folder's name (bytes
    that are not UTF-8 as backslash escapes, held to the column)."""
    return _override() or _text(os.path.basename(os.path.abspath(root)))[:NAME_CHARS]


def _override() -> str | None:
    value = os.environ.get(REPOSITORY_VARIABLE)
    if value is None:
        return None
    if not value.strip():
        raise ReconcilerError(f"{REPOSITORY_VARIABLE} is set but empty: set it to the "
                              "repository's name in the database, or unset it")
    name = value.strip()
    if _text(name) != name or not name.isprintable() or len(name) > NAME_CHARS:
        raise ReconcilerError(f"{REPOSITORY_VARIABLE} must be printable UTF-8 text of at most "
                              f"{NAME_CHARS} characters, not {printable(_text(name))[:80]!r}")
    return name


def _text(name: str) -> str:
    """A name from the operating system (a folder, a variable) as text every database stores:
    its bytes read as git paths are (undecodable ones as backslash escapes)."""
    return decode_path(os.fsencode(name))


def repository_key(engine: Engine | None, history: GitHistory, at: str,
                   name: str) -> RepositoryKey:
    """Which repository of the database history is (engine None: a database not created yet).

    RECONCILER_REPOSITORY names it outright. Otherwise it is found by the first-parent root
    commit of `at`, which every clone shares whatever its folder is called. A repository written
    before migration 0007 has no root commit yet: it is the one whose cursor commit is on this
    history (the one named after this folder first), and apply records its root commit. A
    shallow clone that does not reach the root is matched by its cursor commit alone. Failing
    all of these (a history rewritten from its first commit), the one named after the folder."""
    known = store.known_repositories(engine) if engine is not None else []
    override = _override()
    if override is not None:
        named = [r for r in known if r.name == override]
        return RepositoryKey(named[0].id if len(named) == 1 else store.repository_id(override),
                             override, None)
    root_commit = history.root_commit(at)
    by_root = [r for r in known if root_commit is not None and r.root_commit == root_commit]
    if by_root:
        return RepositoryKey(by_root[0].id, by_root[0].name, root_commit)
    # Before 0007 (no root commit recorded), or in a shallow clone (no root commit here): the
    # recorded repositories whose last reconciled commit is on this history.
    candidates = [r for r in known if r.cursor_commit is not None
                  and (root_commit is None or r.root_commit is None)
                  and _on_history(history, r.cursor_commit, at)]
    named = [r for r in candidates if r.id == store.repository_id(name)]
    if len(named) == 1 or len(candidates) == 1:
        chosen = (named or candidates)[0]
        return RepositoryKey(chosen.id, chosen.name, root_commit or chosen.root_commit)
    if len(candidates) > 1:
        raise ReconcilerError(
            f"the database holds {len(candidates)} repositories whose last reconciled commit "
            f"is on this history ({', '.join(sorted(printable(r.name) for r in candidates))}): "
            f"name the one to use with {REPOSITORY_VARIABLE}")
    by_name = [r for r in known if r.name == name]
    if len(by_name) == 1:  # its history is gone from git: apply says so (--reset-history)
        return RepositoryKey(by_name[0].id, name, None)
    if root_commit is None:  # a shallow clone the database does not know: apply says so
        return RepositoryKey(store.repository_id(name), name, None)
    return RepositoryKey(store.root_repository_id(root_commit), name, root_commit)


def _on_history(history: GitHistory, commit: str, at: str) -> bool:
    return history.has_commit(commit) and history.is_ancestor(commit, at)


@contextmanager
def open_database(root: str, url: str | None, *, dry_run: bool = False, at: str = "HEAD",
                  repository: RepositoryKey | None = None) -> Iterator[Database]:
    """The engine for url (a dry run creates no embedded database), disposed at the end, and
    the repository of at's history in it (repository_key; a rebuild gives the key of the
    database it checks); any database error inside is reported as one line."""
    database_url = db.database_url(root, url, create=not dry_run)
    history = GitHistory(root)
    engine = db.make_engine(database_url)
    try:
        exists = db.exists(database_url)
        if exists:  # a new embedded database is created when written
            db.connect(engine, database_url)
        if repository is None:
            repository = repository_key(engine if exists else None, history, at,
                                        repository_name(root))
        yield Database(root, database_url, engine, repository, history, dry_run)
    except exc.DBAPIError as error:
        raise db.connect_error(database_url, error) from None
    finally:
        engine.dispose()


def plan(database: Database, to: str, *, reset_history: bool = False,
         registry_branch: str | None = None) -> Plan:
    """Read the cursor and decide the walk from it to `to` (None when there is nothing to do).
    Only then is the history reader imported: a no-op apply never loads the manifest parser.

    With registry_branch, `to` must be on that branch's first-parent history: the audit trail
    records what landed on the registry branch, never another branch's commits."""
    target = database.history.resolve(to)
    if registry_branch is not None:
        _check_on_branch(database.history, to, target, registry_branch)
    return _plan_from(database, _cursor_or_empty(database), target, reset_history)


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
               reset_history: bool) -> Plan:
    if cursor.commit_sha == target:
        return Plan(target, cursor, None, 0)
    from reconciler import replay

    walk = replay.walk_from(database.history, cursor.commit_sha, target,
                            _recorded_if_lost(database, cursor), reset_history)
    return Plan(target, cursor, walk, database.history.count_first_parent(walk.start, target))


def up_to_date(database: Database, planned: Plan) -> ApplyResult:
    """The result of an apply with nothing to do."""
    return ApplyResult(db.shown(database.url), planned.target, planned.target,
                       dry_run=database.dry_run)


def start_reader(database: Database, planned: Plan) -> Iterable[Chunk] | None:
    """For a long backfill, a forked process that replays the walk from now on, while this one
    validates and renders the target and then writes what it sends; None for a short walk.

    Measured on bench/apply.py's 2,000 commits (inside apply, best of 3): 1.95 s with no fork,
    1.40-1.43 s forked after validating and rendering, 1.09-1.11 s forked before them."""
    from reconciler import replay

    assert planned.walk is not None, "plan says the database is up to date"
    if database.dry_run or planned.commits < PIPELINE_COMMITS or not replay.can_fork():
        return None
    return replay.ChildReplay(replay.chunks(database.history, planned.walk, planned.target,
                                            None, _chunk_rows(database.engine),
                                            planned.commits), planned.walk)


def read_history(database: Database, planned: Plan,
                 known: Catalog | None = None) -> Iterable[Chunk]:
    """The chunks of the planned walk, replayed here as they are written (files that known, a
    catalog already parsed, holds are not parsed again)."""
    from reconciler import replay

    assert planned.walk is not None, "plan says the database is up to date"
    return replay.chunks(database.history, planned.walk, planned.target, known,
                         _chunk_rows(database.engine), planned.commits)


def close_history(chunks: Iterable[Chunk]) -> None:
    """Stop a forked reader (read_history), if it still runs."""
    from reconciler import replay

    if isinstance(chunks, replay.ChildReplay):
        chunks.close()


def write(database: Database, planned: Plan, chunks: Iterable[Chunk],
          progress: Progress | None = None, known: Catalog | None = None,
          reset_history: bool = False,
          rendered: list[tuple[str, str, str, str]] | None = None) -> ApplyResult:
    """Write the chunks, each in one transaction moving the cursor by compare-and-set; the
    last one, which ends at the target, also records what changed in the configs rendered
    there (rendered: environment, model, path, sha256 of each). When another apply moved the
    cursor first, what it wrote is whole commits: plan again from there and replay the rest
    here."""
    result = ApplyResult(db.shown(database.url), planned.target, planned.cursor.commit_sha,
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


def _reread(database: Database, planned: Plan, known: Catalog | None) -> Iterable[Chunk]:
    """The rest of a walk after a concurrent apply: here, it is short or already done."""
    return read_history(database, planned, known) if planned.walk else []


def _replanned(database: Database, planned: Plan, reset_history: bool) -> Plan:
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


def _chunk_rows(engine: Engine) -> int:
    return CHUNK_ROWS_SQLITE if engine.dialect.name == "sqlite" else CHUNK_ROWS


def _recorded_if_lost(database: Database, cursor: store.Cursor) -> Recorded | None:
    """What the database holds, read only when git no longer has the cursor commit."""
    if (cursor.commit_sha is None or database.history.has_commit(cursor.commit_sha)
            or not db.exists(database.url)):
        return None
    return store.recorded_state(database.engine, database.repo_id)


def _cursor_or_empty(database: Database) -> store.Cursor:
    """The cursor, or an empty one while the database has none (new, never applied, or an
    embedded one not created yet, which reading must not create)."""
    if not db.exists(database.url):
        return EMPTY_CURSOR
    with database.engine.connect() as connection:
        if not inspect(connection).has_table(tables.RECONCILE_CURSOR.name):
            return EMPTY_CURSOR
        try:
            return store.cursor_in(connection, database.repo_id)
        except exc.NoResultFound:
            return EMPTY_CURSOR


def apply(root: str, url: str | None = None, to: str = "HEAD", dry_run: bool = False,
          progress: Progress | None = None, reset_history: bool = False,
          repository: RepositoryKey | None = None) -> ApplyResult:
    """Reconcile the database at url with root's history up to `to`, without validating or
    rendering the target (what `audit verify` rebuilds with, under the repository key of the
    database it checks; `api.apply` does all of it)."""
    started = time.perf_counter()
    with open_database(root, url, dry_run=dry_run, at=to, repository=repository) as database:
        planned = plan(database, to, reset_history=reset_history)
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

    with open_database(root, url, repository=repository) as database:
        db.ensure_schema(database.engine, database.url, migrate=False)
        db.with_retries(lambda: store.ensure_repository(
            database.engine, database.repo_id, database.repository.name,
            database.repository.root_commit))
        cursor = store.read_cursor(database.engine, database.repo_id)
        if cursor.commit_sha is not None or cursor.event_seq:
            raise ReconcilerError(
                f"{db.shown(database.url)} already holds history of this repository: a GTO "
                "registry is imported before the first apply (into a new database)")
        steps = list(gtoimport.history_events(imported))
        infos = database.history.commit_infos(sorted({action.commit
                                                      for action, _, _ in steps}))
        batches = [store.CommitBatch(
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


def _write_imported(database: Database, cursor: store.Cursor, batches: list[store.CommitBatch],
                    opened: store.OpenAssignments | None
                    ) -> tuple[store.Cursor, store.OpenAssignments]:
    written = db.with_retries(lambda: store.write_chunk(database.engine, database.repo_id,
                                                        cursor, batches, None, opened))
    return written.cursor, written.open_assignments

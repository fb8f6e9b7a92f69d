"""Events -> the audit/lineage database. The only module (with `audit`) that writes SQL.

A chunk of whole commits is written in one transaction whose first statement is the
compare-and-set of the cursor (`UPDATE ... WHERE generation = :seen`): a concurrent writer either
waits on that row and then finds it moved, or (on TiDB) fails at commit and is retried. Every row
key is a content hash or a name, so replaying a chunk can never duplicate anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    Update,
    and_,
    bindparam,
    exc,
    func,
    inspect,
    null,
    select,
    update,
)

from reconciler import __version__
from reconciler.batch import CommitBatch
from reconciler.limits import NAME_CHARS, TEXT_CHARS
from reconciler.registry import bulk, tables

if TYPE_CHECKING:  # only names in annotations: importing them would load the parser and models
    from reconciler.diff import DatabaseState
    from reconciler.events import Event
    from reconciler.git.objects import CommitInfo

GENESIS = "0" * 64
BATCH_ROWS = 500
CHUNK_ROWS = 500  # rows per transaction: TiDB's limits (docs/ARCHITECTURE.md, portability rule 5)
CHUNK_ROWS_SQLITE = 5000


class Cursor(NamedTuple):
    """The reconcile cursor: last reconciled commit and the tail of the audit hash chain."""

    commit_sha: str | None
    generation: int
    event_seq: int
    last_hash: str


EMPTY_CURSOR = Cursor(None, 0, 0, GENESIS)


def chunk_rows(engine: Engine) -> int:
    """How many rows one transaction of apply may write on engine's back end."""
    return CHUNK_ROWS_SQLITE if engine.dialect.name == "sqlite" else CHUNK_ROWS


def cursor_or_empty(engine: Engine, repo_id: str) -> Cursor:
    """The repository's cursor, or an empty one while the database has none (a new schema, or
    a repository never applied)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(tables.RECONCILE_CURSOR.name):
            return EMPTY_CURSOR
        try:
            return cursor_in(connection, repo_id)
        except exc.NoResultFound:
            return EMPTY_CURSOR


class CursorMoved(Exception):
    """Another apply advanced the cursor first: re-read it and continue from there."""


def repository_id(name: str) -> str:
    """The key of a repository named by RECONCILER_REPOSITORY (and, before migration 0007, of
    every repository, by its folder name)."""
    return hashlib.sha256(f"repository:{name}".encode()).hexdigest()


def root_repository_id(root_commit: str) -> str:
    """The key of a repository found by its root commit."""
    return hashlib.sha256(f"repository-root:{root_commit}".encode()).hexdigest()


class KnownRepository(NamedTuple):
    """A repository the database holds: its key, name, root commit and cursor commit."""

    id: str
    name: str
    root_commit: str | None
    cursor_commit: str | None


def known_repositories(engine: Engine) -> list[KnownRepository]:
    """Every repository of the database (none before the schema exists; no root commits in a
    schema older than migration 0007)."""
    repositories, cursors = tables.REPOSITORIES, tables.RECONCILE_CURSOR
    with engine.connect() as connection:
        inspector = inspect(connection)
        if not inspector.has_table(repositories.name):
            return []
        has_root = "root_commit" in {c["name"] for c in inspector.get_columns(repositories.name)}
        root = repositories.c.root_commit if has_root else null()
        rows = connection.execute(select(
            repositories.c.id, repositories.c.name, root.label("root_commit"),
            cursors.c.commit_sha).outerjoin(
            cursors, cursors.c.repository_id == repositories.c.id)).all()
    return [KnownRepository(row.id.rstrip(" "), row.name,
                            row.root_commit.rstrip(" ") if row.root_commit else None,
                            row.commit_sha.rstrip(" ") if row.commit_sha else None)
            for row in rows]


def ensure_repository(engine: Engine, repo_id: str, name: str,
                      root_commit: str | None = None) -> None:
    """Create the repository and its cursor rows if they are missing (insert-or-ignore), and
    record its root commit if it has none yet (a repository from before migration 0007)."""
    repositories = tables.REPOSITORIES
    with engine.begin() as connection:
        _insert_ignore(connection, repositories,
                       [{"id": repo_id, "name": name, "root_commit": root_commit}])
        if root_commit is not None:
            connection.execute(update(repositories).where(
                repositories.c.id == repo_id, repositories.c.root_commit.is_(None)).values(
                root_commit=root_commit))
        _insert_ignore(connection, tables.RECONCILE_CURSOR, [{
            "repository_id": repo_id, "commit_sha": None, "generation": 0, "event_seq": 0,
            "last_hash": GENESIS, "updated_at": _now()}])


def read_cursor(engine: Engine, repo_id: str) -> Cursor:
    """The cursor as committed now."""
    with engine.connect() as connection:
        return cursor_in(connection, repo_id)


def cursor_in(connection: Connection, repo_id: str) -> Cursor:
    """The cursor as this connection's transaction sees it."""
    cursor_table = tables.RECONCILE_CURSOR
    row = connection.execute(select(
        cursor_table.c.commit_sha, cursor_table.c.generation, cursor_table.c.event_seq,
        cursor_table.c.last_hash).where(cursor_table.c.repository_id == repo_id)).one()
    return Cursor(row.commit_sha, row.generation, row.event_seq, row.last_hash)


def recorded_state(engine: Engine, repo_id: str) -> DatabaseState:
    """What the database holds as current, and the commits it reconciled (newest first)."""
    from reconciler.diff import DatabaseState

    t = {"events": tables.AUDIT_EVENTS, "models": tables.MODELS,
         "versions": tables.MODEL_VERSIONS, "datasets": tables.DATASETS,
         "dataset_versions": tables.DATASET_VERSIONS, "environments": tables.ENVIRONMENTS,
         "stages": tables.STAGE_ASSIGNMENTS}
    mine = {name: table.c.repository_id == repo_id for name, table in t.items()}
    with engine.connect() as connection:
        last_seen = func.max(t["events"].c.seq)
        commits = tuple(row[0] for row in connection.execute(
            select(t["events"].c.commit_sha, last_seen).where(mine["events"])
            .group_by(t["events"].c.commit_sha).order_by(last_seen.desc())))
        landed = connection.execute(select(t["events"].c.occurred_at).where(mine["events"])
                                    .order_by(t["events"].c.seq.desc()).limit(1)).scalar()
        models: dict[str, dict[str, bool]] = {
            name: {} for name in connection.execute(select(t["models"].c.name).where(
                mine["models"], t["models"].c.retired_commit.is_(None))).scalars()}
        for model, version, deprecated in connection.execute(select(
                t["versions"].c.model, t["versions"].c.version, t["versions"].c.deprecated)
                .where(mine["versions"], t["versions"].c.removed_commit.is_(None))):
            if model in models:
                models[model][version] = bool(deprecated)
        datasets: dict[str, dict[str, bool]] = {
            name: {} for name in connection.execute(select(t["datasets"].c.name).where(
                mine["datasets"], t["datasets"].c.retired_commit.is_(None))).scalars()}
        versions = t["dataset_versions"]
        for dataset, version, deprecated in connection.execute(select(
                versions.c.dataset, versions.c.version, versions.c.deprecated).where(
                mine["dataset_versions"], versions.c.removed_commit.is_(None))):
            if dataset in datasets:
                datasets[dataset][version] = bool(deprecated)
        environments = frozenset(connection.execute(select(t["environments"].c.name).where(
            mine["environments"], t["environments"].c.retired_commit.is_(None))).scalars())
        serving: dict[tuple[str, str], tuple[str | None, tuple[str, int | None] | None]] = {}
        for row in connection.execute(select(t["stages"]).where(
                mine["stages"], t["stages"].c.valid_to.is_(None))):
            primary, canary = serving.get((row.model, row.environment), (None, None))
            if row.role == "primary":
                primary = row.version
            else:
                canary = (row.version, row.traffic)
            serving[(row.model, row.environment)] = (primary, canary)
    return DatabaseState(commits, environments, datasets, models, serving, landed)


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """sha256 over the previous hash and the canonical JSON of the row's recorded fields."""
    fields = {key: row[key] for key in (
        "seq", "commit_sha", "event_type", "kind", "name", "version", "environment",
        "actor_name", "actor_email", "payload")}
    fields["occurred_at"] = row["occurred_at"].isoformat()
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


OpenAssignments = dict[tuple[str, str, str], str]


class Renders(NamedTuple):
    """The configs rendered at a commit: (environment, model, path, sha256) of each."""

    info: CommitInfo
    rendered: list[tuple[str, str, str, str]]


class Written(NamedTuple):
    """Where a chunk left the cursor, the stage assignments then in force, and the types of
    the render events it wrote."""

    cursor: Cursor
    open_assignments: OpenAssignments
    render_events: list[str]


def write_chunk(engine: Engine, repo_id: str, seen: Cursor, batches: Sequence[CommitBatch],
                to_commit: str | None, open_assignments: OpenAssignments | None = None,
                renders: Renders | None = None) -> Written:
    """Write whole commits and move the cursor from seen to to_commit, atomically; with
    renders (the last chunk, which ends at the target), what changed in the configs rendered
    at the target is recorded in the same transaction (render_changes), so a crash never
    leaves the cursor at the target without them.

    open_assignments, (model, environment, role) -> id of the stage assignments in force, is
    what the previous chunk returned; None reads it from the database. The caller's dict is
    never changed, so a failed attempt can simply be retried with it.
    """
    with engine.begin() as connection:
        render_batch, render_rows = (
            render_changes(connection, repo_id, renders, batches[-1].when if batches else None)
            if renders is not None else (None, []))
        written = [*batches, render_batch] if render_batch is not None else batches
        audit_rows, last_hash = _audit_rows(repo_id, seen, written)
        moved = Cursor(to_commit, seen.generation + 1, seen.event_seq + len(audit_rows),
                       last_hash)
        _compare_and_set(connection, repo_id, seen, moved)
        plan = _Plan(connection, repo_id, open_assignments)
        for batch in batches:
            plan.commit(batch)
        plan.add_insert(tables.AUDIT_EVENTS, audit_rows)
        plan.add_insert(tables.RENDERS, render_rows)
        plan.flush()
    types = [event.type for event in render_batch.events] if render_batch is not None else []
    return Written(moved, plan.open_assignments, types)


def _compare_and_set(connection: Connection, repo_id: str, seen: Cursor, moved: Cursor) -> None:
    cursor_table = tables.RECONCILE_CURSOR
    result = connection.execute(
        update(cursor_table)
        .where(cursor_table.c.repository_id == repo_id,
               cursor_table.c.generation == seen.generation)
        .values(commit_sha=moved.commit_sha, generation=moved.generation,
                event_seq=moved.event_seq, last_hash=moved.last_hash, updated_at=_now()))
    if result.rowcount != 1:
        raise CursorMoved()


def _audit_rows(repo_id: str, seen: Cursor,
                batches: Sequence[CommitBatch]) -> tuple[list[dict[str, Any]], str]:
    rows = []
    seq, prev = seen.event_seq, seen.last_hash
    for batch in batches:
        actor = batch.actor or (batch.info.author_name, batch.info.author_email)
        for index, event in enumerate(batch.events):
            seq += 1
            row = {
                "id": hashlib.sha256(f"{repo_id}:{seq}:{batch.info.sha}:{index}".encode())
                .hexdigest(),
                "repository_id": repo_id, "seq": seq, "commit_sha": batch.info.sha,
                "event_type": event.type, "kind": event.kind, "name": event.name,
                "version": event.version, "environment": event.environment,
                "actor_name": actor[0][:NAME_CHARS], "actor_email": actor[1][:NAME_CHARS],
                "occurred_at": batch.when, "payload": event.payload,
                "prev_hash": prev,
            }
            row["hash"] = prev = event_hash(prev, row)
            rows.append(row)
    return rows, prev


class _Plan:
    """The rows a chunk writes, sent as few executemany statements as possible.

    Every update sets absolute values, so all updates of one row merge into one (later values
    win), and updates run after all inserts: an update never targets a row that a later insert
    of the same chunk creates (retire-then-create needs the row to exist already).
    """

    def __init__(self, connection: Connection, repo_id: str,
                 open_assignments: OpenAssignments | None):
        self.connection = connection
        self.repo_id = repo_id
        self._inserts: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        self._updates: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
        if open_assignments is None:
            stage_table = tables.STAGE_ASSIGNMENTS
            open_rows = connection.execute(select(
                stage_table.c.id, stage_table.c.model, stage_table.c.environment,
                stage_table.c.role).where(stage_table.c.repository_id == repo_id,
                                          stage_table.c.valid_to.is_(None)))
            open_assignments = {(r.model, r.environment, r.role): r.id for r in open_rows}
        self._open = dict(open_assignments)

    @property
    def open_assignments(self) -> OpenAssignments:
        """The stage assignments in force after this chunk."""
        return self._open

    def add_insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Queue rows for an insert-or-ignore into table."""
        self._inserts.setdefault(table.name, (table, []))[1].extend(rows)

    def _update(self, table: Table, keys: dict[str, Any], values: dict[str, Any]) -> None:
        merged = self._updates.setdefault((table.name, tuple(sorted(keys.items()))), {})
        merged.update(values)

    def commit(self, batch: CommitBatch) -> None:
        """The entity, lineage and stage rows of one commit's events."""
        info = batch.info
        if batch.events:
            self.add_insert(tables.COMMITS, [{
                "repository_id": self.repo_id, "sha": info.sha,
                "parent_sha": info.parents[0] if info.parents else None,
                "author_name": info.author_name[:NAME_CHARS],
                "author_email": info.author_email[:NAME_CHARS],
                "authored_at": info.authored_at, "committer_name": info.committer_name[:NAME_CHARS],
                "committer_email": info.committer_email[:NAME_CHARS],
                "committed_at": info.committed_at, "message": info.message[:TEXT_CHARS],
                "author_tz_offset": info.author_offset,
                "committer_tz_offset": info.committer_offset}])
            self.add_insert(tables.COMMIT_PEOPLE, [{
                "id": hashlib.sha256("\0".join((self.repo_id, info.sha, *person)).encode())
                .hexdigest(), "repository_id": self.repo_id, "commit_sha": info.sha,
                "position": position, "role": person.role, "name": person.name,
                "email": person.email} for position, person in enumerate(batch.people)])
        # The handlers date what they open and close by committed_at: after a history
        # rewrite that is when the batch took effect, not the commit's own time.
        effective = info._replace(committed_at=batch.when)
        for event in batch.events:
            self._event(event, effective, batch.entities)

    def _event(self, event: Event, info: CommitInfo,
               entities: dict[tuple[str, str], dict[str, Any]]) -> None:
        """The rows one event changes, by its handler in HANDLERS (none: history only)."""
        handler = HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event, info, entities)

    def _entity(self, event: Event, info: CommitInfo,
                entities: dict[tuple[str, str], dict[str, Any]]) -> None:
        """model/dataset/environment .created or .updated: the row as the manifest says."""
        entity = entities.get((event.kind, event.name))
        if entity is not None:  # commit_batch reads one for every such event
            self._upsert(_ENTITY_TABLES[event.kind], {"name": event.name},
                         {**entity, "retired_commit": None}, {"created_commit": info.sha})

    def _retired(self, event: Event, info: CommitInfo, _: object) -> None:
        """The row stays, marked with the commit that retired it."""
        self._update(_ENTITY_TABLES[event.kind], {"name": event.name},
                     {"retired_commit": info.sha})

    def _version_added(self, event: Event, info: CommitInfo, _: object) -> None:
        payload = event.payload
        values = {"artifact": payload["artifact"], "digest": payload.get("digest"),
                  "size": payload.get("size"), "nfiles": payload.get("nfiles"),
                  "deprecated": bool(payload.get("deprecated", False)), "removed_commit": None}
        if event.kind == "Model":
            values |= {"parent": payload.get("parent"), "metrics": payload.get("metrics"),
                       "params": payload.get("params"),
                       "reproduction": payload.get("reproduction")}
        self._upsert(*_version_row(event), values,
                     {"added_commit": info.sha, "deprecated_commit": None})

    def _version_deprecated(self, event: Event, info: CommitInfo, _: object) -> None:
        self._update(*_version_row(event), {"deprecated": True, "deprecated_commit": info.sha})

    def _version_undeprecated(self, event: Event, info: CommitInfo, _: object) -> None:
        self._update(*_version_row(event), {"deprecated": False, "deprecated_commit": None})

    def _version_removed(self, event: Event, info: CommitInfo, _: object) -> None:
        self._update(*_version_row(event), {"removed_commit": info.sha})

    def _lineage(self, event: Event, info: CommitInfo, _: object) -> None:
        payload, sha = event.payload, info.sha
        parts = (self.repo_id, payload["sourceKind"], payload["source"], payload["sourceVersion"],
                 event.name, event.version, payload["via"])
        self.add_insert(tables.LINEAGE_EDGES, [{
            "id": hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest(),
            "repository_id": self.repo_id, "source_kind": payload["sourceKind"],
            "source_name": payload["source"], "source_version": payload["sourceVersion"],
            "target_name": event.name, "target_version": event.version, "via": payload["via"],
            "commit_sha": sha}])

    def _stage(self, event: Event, info: CommitInfo, _: object) -> None:
        """stage.assigned, stage.removed, canary.changed: close what served, open what serves."""
        env, sha, when = event.environment or "", info.sha, info.committed_at
        roles = {"stage.assigned": ["primary"], "canary.changed": ["canary"],
                 "stage.removed": ["primary", "canary"]}[event.type]
        for role in roles:
            self._close(event.name, env, role, sha, when)
        if event.type == "stage.assigned":
            self._open_assignment(event.name, env, "primary", event.payload["to"], None, sha, when,
                                  event.payload.get("occurrence"))
        elif event.type == "canary.changed" and event.payload["to"] is not None:
            canary = event.payload["to"]
            self._open_assignment(event.name, env, "canary", canary["version"],
                                  canary["traffic"], sha, when)

    def _close(self, model: str, env: str, role: str, sha: str, when: datetime) -> None:
        current = self._open.pop((model, env, role), None)
        if current is not None:
            self._update(tables.STAGE_ASSIGNMENTS, {"id": current},
                         {"valid_to": when, "valid_to_commit": sha})

    def _open_assignment(self, model: str, env: str, role: str, version: str,
                         traffic: int | None, sha: str, when: datetime,
                         occurrence: int | None = None) -> None:
        # One commit assigns a stage once, except in a GTO import (gtoimport.history_events).
        again = f"\0{occurrence}" if occurrence else ""
        row_id = hashlib.sha256(
            f"{self.repo_id}\0{model}\0{env}\0{role}\0{sha}{again}".encode())
        self._open[(model, env, role)] = row_id.hexdigest()
        self.add_insert(tables.STAGE_ASSIGNMENTS, [{
            "id": row_id.hexdigest(), "repository_id": self.repo_id, "model": model,
            "environment": env, "role": role, "version": version, "traffic": traffic,
            "valid_from": when, "valid_from_commit": sha, "valid_to": None,
            "valid_to_commit": None}])

    def _upsert(self, table: Table, keys: dict[str, Any], values: dict[str, Any],
                on_insert: dict[str, Any]) -> None:
        # Portable upsert: insert-or-ignore the full row, then update the mutable columns.
        self.add_insert(table, [{"repository_id": self.repo_id, **keys, **values, **on_insert}])
        self._update(table, keys, values)

    def flush(self) -> None:
        """Send the inserts, then the merged updates, BATCH_ROWS at a time."""
        # No foreign keys (rows of any table may arrive in any order, and TiDB does not enforce
        # them), so the inserts go table by table in the order they were first queued.
        for table, rows in self._inserts.values():
            for start in range(0, len(rows), BATCH_ROWS):
                _insert_ignore(self.connection, table, rows[start:start + BATCH_ROWS])
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
        for (table_name, key_items), values in self._updates.items():
            shape = (table_name, tuple(k for k, _ in key_items), tuple(sorted(values)))
            groups.setdefault(shape, []).append({**{f"k_{k}": v for k, v in key_items},
                                                 **{f"v_{k}": v for k, v in values.items()}})
        for (table_name, keys, columns), rows in groups.items():
            table = tables.METADATA.tables[table_name]
            for start in range(0, len(rows), BATCH_ROWS):
                self._execute_update(table, keys, columns, rows[start:start + BATCH_ROWS])
        self._inserts.clear()
        self._updates.clear()

    def _execute_update(self, table: Table, keys: tuple[str, ...], columns: tuple[str, ...],
                        rows: list[dict[str, Any]]) -> None:
        def statement() -> Update:
            conditions = [table.c[k] == bindparam(f"k_{k}") for k in keys]
            if "repository_id" in table.c:
                conditions.append(table.c.repository_id == bindparam("k_repository_id"))
            return (update(table).where(and_(*conditions))
                    .values({c: bindparam(f"v_{c}") for c in columns}))

        for row in rows:
            row["k_repository_id"] = self.repo_id
        bulk.executemany(self.connection, ("update", table.name, keys, columns), statement,
                         rows)


_ENTITY_TABLES = {"Model": tables.MODELS, "Dataset": tables.DATASETS,
                  "Environment": tables.ENVIRONMENTS}


def _version_row(event: Event) -> tuple[Table, dict[str, Any]]:
    """The versions table of the event's kind, and the key of its version's row."""
    if event.kind == "Model":
        return tables.MODEL_VERSIONS, {"model": event.name, "version": event.version}
    return tables.DATASET_VERSIONS, {"dataset": event.name, "version": event.version}


Handler = Callable[[_Plan, "Event", "CommitInfo", dict[tuple[str, str], dict[str, Any]]], None]
# What each event type writes to the entity tables. Not listed, history only: version.updated
# (a version's row keeps what it landed as), stage.updated, history.rewritten, render.*,
# stage.unassigned (imported from GTO: it changed nothing served).
HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(["model.created", "model.updated", "dataset.created", "dataset.updated",
                     "environment.created", "environment.updated"], _Plan._entity),
    **dict.fromkeys(["model.retired", "dataset.retired", "environment.retired"],
                    _Plan._retired),
    **dict.fromkeys(["version.added", "dataset.version.added"], _Plan._version_added),
    **dict.fromkeys(["version.deprecated", "dataset.version.deprecated"],
                    _Plan._version_deprecated),
    **dict.fromkeys(["version.undeprecated", "dataset.version.undeprecated"],
                    _Plan._version_undeprecated),
    **dict.fromkeys(["version.removed", "dataset.version.removed"], _Plan._version_removed),
    "lineage.added": _Plan._lineage,
    **dict.fromkeys(["stage.assigned", "stage.removed", "canary.changed"], _Plan._stage),
}


def _insert_ignore(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """INSERT that skips rows whose key exists, in each dialect's own construct."""
    bulk.executemany(connection, ("insert-ignore", table.name),
                     lambda: _insert_ignore_statement(connection.dialect.name, table), list(rows))


def _insert_ignore_statement(dialect: str, table: Table) -> Insert:
    # Each dialect's module is imported when it is used: loading all three slows every run.
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    # mysql (MySQL, MariaDB, TiDB): db.make_engine accepts no other back end.
    from sqlalchemy.dialects import mysql

    key = next(iter(table.primary_key.columns)).name
    statement = mysql.insert(table)
    return statement.on_duplicate_key_update({key: statement.inserted[key]})


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


RENDER_EVENT = "render.recorded"
RENDER_REMOVED = "render.removed"
RENDER_EVENTS = (RENDER_EVENT, RENDER_REMOVED)
# Which release rendered a config, in its render.recorded payload: templates shipped in the
# package may render otherwise in another release, which audit verify must not call a tamper.
RENDERER_KEY = "renderer"


def render_changes(connection: Connection, repo_id: str, renders: Renders,
                   not_before: datetime | None) -> tuple[CommitBatch | None, list[dict[str, Any]]]:
    """What to record of the configs rendered at a commit, as changes: a config whose digest
    differs from the one last recorded for its environment and model (a render.recorded event
    in the hash chain and a renders row, so `audit verify` catches an edit or a deletion of a
    render), and a config last recorded that is rendered no more (render.removed). The same
    renders again are no change: (None, []). They land no earlier than not_before, or the
    chain's last event."""
    from reconciler.events import Event

    wanted = {(env, model): (path, digest) for env, model, path, digest in renders.rendered}
    last = last_renders(connection, repo_id)
    changed = sorted(key for key, value in wanted.items() if last.get(key) != value)
    removed = sorted(set(last) - set(wanted))
    events = [Event(RENDER_EVENT, "Model", model, environment=env,
                    payload={"path": wanted[env, model][0], "digest": wanted[env, model][1],
                             RENDERER_KEY: __version__})
              for env, model in changed]
    events += [Event(RENDER_REMOVED, "Model", model, environment=env,
                     payload={"path": last[env, model][0], "digest": last[env, model][1]})
               for env, model in removed]
    if not events:
        return None, []
    info = renders.info
    rows = [{"id": hashlib.sha256(f"{repo_id}\0{info.sha}\0{env}\0{model}".encode())
             .hexdigest(), "repository_id": repo_id, "commit_sha": info.sha, "environment": env,
             "model": model, "path": wanted[env, model][0], "digest": wanted[env, model][1]}
            for env, model in changed]
    floor = not_before or _last_landed(connection, repo_id)  # replay's floor, as the commits
    late = floor is not None and info.committed_at < floor
    return CommitBatch(info, events, {}, landed_at=floor if late else None), rows


def _last_landed(connection: Connection, repo_id: str) -> datetime | None:
    events = tables.AUDIT_EVENTS
    found = connection.execute(select(events.c.occurred_at).where(
        events.c.repository_id == repo_id).order_by(events.c.seq.desc()).limit(1)).scalar()
    return found.replace(tzinfo=None) if isinstance(found, datetime) else None


def last_renders(connection: Connection, repo_id: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(environment, model) -> (path, digest) of every config recorded and not removed since,
    read from the render events of the chain (the renders table does not order them)."""
    events = tables.AUDIT_EVENTS
    last: dict[tuple[str, str], tuple[str, str]] = {}
    for row in connection.execute(select(
            events.c.event_type, events.c.environment, events.c.name, events.c.payload).where(
            events.c.repository_id == repo_id, events.c.event_type.in_(RENDER_EVENTS))
            .order_by(events.c.seq)):
        key = (row.environment or "", row.name)
        if row.event_type == RENDER_REMOVED:
            last.pop(key, None)
            continue
        payload = json.loads(row.payload) if isinstance(row.payload, str) else row.payload
        last[key] = (str(payload.get("path")), str(payload.get("digest")))
    return last

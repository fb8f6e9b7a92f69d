"""Audit queries over the database: the tamper check (hash chain) and the check against git."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import CHAR, Engine, exc, select

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.git.history import GitHistory
from reconciler.registry import db, rendercheck, store, tables
from reconciler.registry.connect import RepositoryKey, open_registry
from reconciler.registry.rendercheck import Problem as Problem  # one finding type for both halves

PAGE = 1000
# Counters of how the rows were written, not of what happened: they differ between runs (the
# cursor's place in the chain counts render events too; verify_chain checks it).
_OPERATIONAL = {"updated_at", "generation", "event_seq", "last_hash"}
# Renders are recorded for the commits apply stopped at, which depends on when it ran.
_RUN_TABLES = {"renders"}


def verify_chain(engine: Engine, repo_id: str) -> list[Problem]:
    """Walk the audit hash chain from the first event; report the first row that breaks it.

    The cursor is read first and the chain up to it: an apply writes its events and moves the
    cursor in one transaction, so every row up to the cursor is committed whatever the back
    end's isolation (PostgreSQL's READ COMMITTED shows each statement what committed before
    it), and rows an apply commits meanwhile are not mistaken for a tamper."""
    events = tables.AUDIT_EVENTS
    prev, expected_seq = store.GENESIS, 1
    with engine.connect() as connection:
        cursor = store.cursor_in(connection, repo_id)
        while expected_seq <= cursor.event_seq:
            rows = connection.execute(
                select(events).where(events.c.repository_id == repo_id,
                                     events.c.seq >= expected_seq,
                                     events.c.seq <= cursor.event_seq)
                .order_by(events.c.seq).limit(PAGE)).mappings().all()
            for row in rows:
                where = f"audit_events seq {row['seq']} (id {row['id'][:12]})"
                if row["seq"] != expected_seq:
                    return [Problem(where, f"expected seq {expected_seq}: rows are missing")]
                if row["prev_hash"] != prev:
                    return [Problem(where, "prev_hash does not match the previous row's hash")]
                if store.event_hash(prev, dict(row)) != row["hash"]:
                    return [Problem(where, "row content does not match its hash: it was "
                                           "changed after it was written")]
                prev, expected_seq = row["hash"], expected_seq + 1
            if not rows:
                break
        beyond = connection.execute(select(events.c.seq).where(
            events.c.repository_id == repo_id, events.c.seq > cursor.event_seq).limit(1)).first()
        moved = beyond is not None and store.cursor_in(connection, repo_id) != cursor
    if cursor.event_seq != expected_seq - 1 or cursor.last_hash != prev:
        return [Problem("reconcile_cursor", f"the cursor records {cursor.event_seq} events "
                                            f"ending in {cursor.last_hash[:12]}, the chain has "
                                            f"{expected_seq - 1} ending in {prev[:12]}")]
    if beyond is not None and not moved:  # rows past the cursor that no apply is writing
        return [Problem("audit_events", f"rows after seq {cursor.event_seq}, where the cursor "
                                        "stands: they were added outside apply")]
    return []


# Columns that number and chain rows as this database wrote them: a rebuild numbers its own.
_CHAIN_COLUMNS = {"id", "seq", "prev_hash", "hash"}


def canonical_dump(engine: Engine, repo_id: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in a back-end independent form, exactly as stored.

    Left out, because they record runs of apply rather than history (so incremental runs and a
    rebuild legitimately differ there): the cursor's updated_at and generation, the renders
    table and its render events. audit_events is listed in chain order without the
    columns that number and chain it; every other table is sorted by primary key.
    """
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in tables.METADATA.sorted_tables:
            if table.name in _RUN_TABLES:
                continue
            events = table.name == tables.AUDIT_EVENTS.name
            hidden = _OPERATIONAL | (_CHAIN_COLUMNS if events else set())
            columns = [c for c in table.columns if c.name not in hidden]
            order = [table.c.seq] if events else list(table.primary_key.columns)
            query = select(*columns).order_by(*order)
            if events:
                query = query.where(table.c.event_type.not_in(store.RENDER_EVENTS))
            if repo_id is not None:
                key = table.c.id if table.name == "repositories" else table.c.get("repository_id")
                if key is not None:
                    query = query.where(key == repo_id)
            padded = [isinstance(c.type, CHAR) for c in columns]
            dump[table.name] = [
                tuple(_canonical(v, pad) for v, pad in zip(row, padded, strict=True))
                for row in connection.execute(query)]
    return dump


def _canonical(value: Any, padded: bool) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and padded:
        return value.rstrip(" ")  # CHAR columns (hex keys) come back padded on some back ends
    return value


def verify_against_git(root: str, engine: Engine, repository: RepositoryKey) -> list[Problem]:
    """Rebuild the database from git in a scratch SQLite file, along the same walk apply took
    (force-pushes included) and under the same repository key, and compare every row; check
    the renders against the chain, and the chain's renders against rendering the commits
    again."""
    repo_id = repository.id
    cursor = store.read_cursor(engine, repo_id)
    if cursor.commit_sha is None:
        return []
    from reconciler.reconcile import import_history, sync

    actual = canonical_dump(engine, repo_id)
    with tempfile.TemporaryDirectory(prefix="reconciler-verify-") as scratch:
        url = f"sqlite:///{os.path.join(scratch, 'rebuild.sqlite')}"
        recorded = _gto_import(engine, repo_id)
        if recorded is not None:  # the history imported from GTO, derived again from tags
            from reconciler.gto import importer as gtoimport

            # From the tags that were imported, as read then: one made since (`gto assign`
            # after adoption) is no part of the record.
            imported = gtoimport.read_registry(root, at=recorded.at, read_at=recorded.read_at,
                                               tags=recorded.tags)
            import_history(root, url, imported, repository)
        for stop in [*_stops(root, engine, repo_id), _Stop(cursor.commit_sha, False)]:
            # A rewrite apply met with the cursor commit gone is undone from what the database
            # held, as apply did, even where git has that commit again (fetched to verify).
            sync(root, url, to=stop.commit, repository=repository, cursor_gone=stop.cursor_gone,
                 reset_history=stop.cursor_gone)
        rebuilt_engine = db.make_engine(db.database_url(root, url))
        try:
            rebuilt = canonical_dump(rebuilt_engine, repo_id)
        finally:
            rebuilt_engine.dispose()
    problems = []
    for table in rebuilt:
        if table == tables.AUDIT_EVENTS.name:
            problems += _compare_events(rebuilt[table], actual[table])
            continue
        expected_rows, actual_rows = set(rebuilt[table]), set(actual[table])
        missing, extra = expected_rows - actual_rows, actual_rows - expected_rows
        if missing or extra:
            problems.append(Problem(table, f"{len(missing)} rows missing and {len(extra)} "
                                           "unexpected, compared with a rebuild from git"))
    problems += rendercheck.table_against_chain(engine, repo_id)
    return problems or rendercheck.chain_against_git(root, engine, repo_id, cursor.commit_sha)


class _GtoImport(NamedTuple):
    """What a GTO import recorded in the events it wrote (the first of the history)."""

    at: str  # the commit whose dvc.yaml declared the artifacts
    read_at: datetime | None  # when it read the registry (None: an import older than that)
    tags: frozenset[str]  # the tags it imported, one event each


def _gto_import(engine: Engine, repo_id: str) -> _GtoImport | None:
    """What a GTO import recorded, when the history begins with one: read from its events,
    the first of the history, up to the first that is not imported."""
    from reconciler.gto.importer import IMPORTED

    events = tables.AUDIT_EVENTS
    first: dict[str, Any] | None = None
    tags = set()
    seq, imported = 0, True
    with engine.connect() as connection:
        while imported:  # the first event alone (most histories hold no import), then pages
            size = PAGE if seq else 1
            rows = connection.execute(
                select(events.c.seq, events.c.payload)
                .where(events.c.repository_id == repo_id, events.c.seq > seq)
                .order_by(events.c.seq).limit(size)).all()
            for _, payload in rows:
                data = json.loads(payload) if isinstance(payload, str) else payload or {}
                imported = data.get("imported") == IMPORTED
                if not imported:
                    break
                first = first or data
                if isinstance(data.get("tag"), str):
                    tags.add(data["tag"])
            imported = imported and len(rows) == size
            seq = rows[-1][0] if rows else seq
    at = first.get("at") if first is not None else None
    if first is None or not isinstance(at, str):
        return None
    return _GtoImport(at, _naive_utc(first.get("importedAt")), frozenset(tags))


def _naive_utc(recorded: Any) -> datetime | None:
    """A recorded ISO time as naive UTC, as git times are (None when it is none)."""
    try:
        moment = datetime.fromisoformat(recorded) if isinstance(recorded, str) else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class _Stop(NamedTuple):
    """A commit the rebuild stops at, and whether apply found the cursor commit gone there."""

    commit: str
    cursor_gone: bool


def _stops(root: str, engine: Engine, repo_id: str) -> list[_Stop]:
    """Where apply must stop for a rebuild to take the same walk: before and at each history
    rewrite the database recorded (the lost commits' events are history too)."""
    events = tables.AUDIT_EVENTS
    with engine.connect() as connection:
        rewrites = connection.execute(select(events.c.payload).where(
            events.c.repository_id == repo_id, events.c.event_type == "history.rewritten")
            .order_by(events.c.seq)).scalars().all()
    history = GitHistory(root)
    stops = []
    for payload in rewrites:
        data = json.loads(payload) if isinstance(payload, str) else payload
        previous, target = data.get("previousCursor"), data.get("target")
        for commit in (previous, target):
            if not isinstance(commit, str) or not history.has_commit(commit):
                raise ReconcilerError(
                    f"cannot rebuild from git: commit {printable(str(commit))}, the end of the "
                    "history a force-push (or apply --reset-history) replaced, is not in this "
                    f"repository: fetch it (git fetch origin {printable(str(commit))}, from "
                    "wherever it is still kept) and verify again, or run `reconciler audit "
                    "verify --chain-only`")
        stops += [_Stop(previous, False), _Stop(target, data.get("previousCursorMissing") is True)]
    return stops


def _compare_events(expected: list[tuple[Any, ...]], actual: list[tuple[Any, ...]]
                    ) -> list[Problem]:
    """The events in chain order against the rebuild's: the first that differs."""
    for number, (want, have) in enumerate(zip(expected, actual, strict=False), start=1):
        if want != have:
            return [Problem("audit_events", f"event {number} of history differs from a rebuild "
                                            "from git")]
    if len(expected) != len(actual):
        return [Problem("audit_events", f"{len(actual)} events of history, a rebuild from git "
                                        f"has {len(expected)}")]
    return []


def verify(root: str, url: str | None, against_git: bool = True) -> list[Problem]:
    """The hash chain, then (optionally) the database against a rebuild from git."""
    with open_registry(root, url, purpose="verify") as database:
        try:
            problems = verify_chain(database.engine, database.repo_id)
        except exc.NoResultFound:
            return [Problem("reconcile_cursor", "nothing reconciled yet for this repository")]
        if not problems and against_git:
            problems = verify_against_git(root, database.engine, database.repository)
        return problems

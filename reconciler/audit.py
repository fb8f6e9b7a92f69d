"""Audit queries over the database: the tamper check (hash chain) and the check against git."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, exc, select

from reconciler import db, store, tables
from reconciler.diagnostics import ReconcilerError
from reconciler.reconcile import apply, repository_name
from reconciler.tables import table_of

PAGE = 1000
# Counters of how the rows were written, not of what happened: they differ between runs.
_OPERATIONAL = {"updated_at", "generation"}
# Renders are recorded for the commits apply stopped at, which depends on when it ran.
_RUN_TABLES = {"renders"}


class Problem(NamedTuple):
    """Where the database stops matching what it should be."""

    where: str
    message: str


def verify_chain(engine: Engine, repo_id: str) -> list[Problem]:
    """Walk the audit hash chain from the first event; report the first row that breaks it."""
    events = table_of(tables.AuditEvent)
    prev, expected_seq = store.GENESIS, 1
    with engine.connect() as connection:
        while True:
            rows = connection.execute(
                select(events).where(events.c.repository_id == repo_id,
                                     events.c.seq >= expected_seq)
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
            if len(rows) < PAGE:
                break
        cursor = store.cursor_in(connection, repo_id)
    if cursor.event_seq != expected_seq - 1 or cursor.last_hash != prev:
        return [Problem("reconcile_cursor", f"the cursor records {cursor.event_seq} events "
                                            f"ending in {cursor.last_hash[:12]}, the chain has "
                                            f"{expected_seq - 1} ending in {prev[:12]}")]
    return []


def canonical_dump(engine: Engine, repo_id: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in a back-end independent form, sorted by primary key.

    The cursor's updated_at and generation, and the renders table, are left out: they record
    runs of apply, not history, so incremental runs and a rebuild legitimately differ there.
    """
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in tables.Base.metadata.sorted_tables:
            if table.name in _RUN_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in _OPERATIONAL]
            query = select(*columns).order_by(*table.primary_key.columns)
            if repo_id is not None:
                key = table.c.id if table.name == "repositories" else table.c.get("repository_id")
                if key is not None:
                    query = query.where(key == repo_id)
            dump[table.name] = [tuple(_canonical(v) for v in row)
                                for row in connection.execute(query)]
    return dump


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        return value.rstrip(" ")  # CHAR columns come back padded on some back ends
    return value


def verify_against_git(root: str, engine: Engine, repo_id: str) -> list[Problem]:
    """Rebuild the database from git in a scratch SQLite file and compare every row."""
    cursor = store.read_cursor(engine, repo_id)
    if cursor.commit_sha is None:
        return []
    actual = canonical_dump(engine, repo_id)
    with tempfile.TemporaryDirectory(prefix="reconciler-verify-") as scratch:
        url = f"sqlite:///{os.path.join(scratch, 'rebuild.sqlite')}"
        apply(root, url, to=cursor.commit_sha)
        rebuilt_engine = db.make_engine(db.database_url(root, url))
        try:
            rebuilt = canonical_dump(rebuilt_engine, repo_id)
        finally:
            rebuilt_engine.dispose()
    problems = []
    for table in rebuilt:
        expected_rows, actual_rows = set(rebuilt[table]), set(actual[table])
        missing, extra = expected_rows - actual_rows, actual_rows - expected_rows
        if missing or extra:
            problems.append(Problem(table, f"{len(missing)} rows missing and {len(extra)} "
                                           "unexpected, compared with a rebuild from git"))
    return problems


def verify(root: str, url: str | None, against_git: bool = True) -> list[Problem]:
    """The hash chain, then (optionally) the database against a rebuild from git."""
    database_url = db.database_url(root, url, create=False)
    if not db.exists(database_url):  # verifying only reads: it never creates a database
        raise ReconcilerError(f"no database at {db.shown(database_url)}: nothing to verify "
                              "(run `reconciler apply` first)")
    engine = db.open_database(database_url, migrate=False)
    try:
        repo_id = store.repository_id(repository_name(root))
        try:
            problems = verify_chain(engine, repo_id)
        except exc.NoResultFound:
            return [Problem("reconcile_cursor", "nothing reconciled yet for this repository")]
        if not problems and against_git:
            problems = verify_against_git(root, engine, repo_id)
        return problems
    except exc.DBAPIError as error:
        raise db.connect_error(database_url, error) from None
    finally:
        engine.dispose()

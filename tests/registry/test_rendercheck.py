"""audit verify renders the recorded commits again: a forged render with the hash chain
recomputed, or render events cut from the chain's tail with the cursor moved back, is a tamper
(on every back end); an honest database of another release is not called one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, delete, select, update

from reconciler import api
from reconciler.registry import db, store, tables
from reconciler.registry import verify as audit
from tests.conftest import Registry

EVENTS, CURSOR, RENDERS = tables.AUDIT_EVENTS, tables.RECONCILE_CURSOR, tables.RENDERS


def _rewrite_history(url: str, edit: Callable[[Connection], None]) -> None:
    """Edit the database, then recompute the whole hash chain and the cursor to match, as
    someone with write access to it (and this code) can."""
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        with engine.begin() as connection:
            edit(connection)
            prev, count = store.GENESIS, 0
            for row in connection.execute(select(EVENTS).order_by(EVENTS.c.seq)).mappings():
                fields = dict(row)
                digest = store.event_hash(prev, fields)
                connection.execute(update(EVENTS).where(EVENTS.c.id == fields["id"])
                                   .values(prev_hash=prev, hash=digest))
                prev, count = digest, count + 1
            connection.execute(update(CURSOR).values(event_seq=count, last_hash=prev))
    finally:
        engine.dispose()


def _payload(stored: Any) -> dict[str, Any]:
    return json.loads(stored) if isinstance(stored, str) else dict(stored)


def _applied(history: Registry, url: str) -> None:
    api.db_upgrade(str(history.root), url)
    api.apply(str(history.root), url)
    assert audit.verify(str(history.root), url) == []


def test_a_forged_render_digest_with_the_chain_recomputed_is_found(history: Registry,
                                                                  db_url: str) -> None:
    _applied(history, db_url)
    forged = "f" * 64

    def forge(connection: Connection) -> None:
        event = connection.execute(select(EVENTS.c.id, EVENTS.c.payload).where(
            EVENTS.c.event_type == store.RENDER_EVENT, EVENTS.c.environment == "production")
            .limit(1)).one()
        payload = {**_payload(event.payload), "digest": forged}
        connection.execute(update(EVENTS).where(EVENTS.c.id == event.id)
                           .values(payload=payload))
        connection.execute(update(RENDERS).where(RENDERS.c.environment == "production",
                                                 RENDERS.c.path == payload["path"])
                           .values(digest=forged))

    _rewrite_history(db_url, forge)
    problems = audit.verify(str(history.root), db_url)
    assert [p.where.split(" of commit ")[0] for p in problems] == ["renders"]
    assert "differ from rendering the commit again" in problems[0].message


def test_render_events_cut_from_the_tail_with_the_cursor_moved_back_are_found(
        history: Registry, db_url: str) -> None:
    _applied(history, db_url)

    def cut(connection: Connection) -> None:
        connection.execute(delete(EVENTS).where(EVENTS.c.event_type.in_(store.RENDER_EVENTS)))
        connection.execute(delete(RENDERS))

    _rewrite_history(db_url, cut)
    problems = audit.verify(str(history.root), db_url)
    assert len(problems) == 1 and "not recorded" in problems[0].message


def test_a_render_recorded_by_another_release_is_no_tamper_report(history: Registry,
                                                                  db_url: str) -> None:
    """A template shipped in the package may render otherwise in a later release: verify says
    which release to check with instead of calling the database tampered."""
    _applied(history, db_url)

    def older_release(connection: Connection) -> None:
        for event in connection.execute(select(EVENTS.c.id, EVENTS.c.payload).where(
                EVENTS.c.event_type == store.RENDER_EVENT)).all():
            payload = {**_payload(event.payload), "digest": "e" * 64,
                       store.RENDERER_KEY: "0.1.0"}
            connection.execute(update(EVENTS).where(EVENTS.c.id == event.id)
                               .values(payload=payload))
        connection.execute(update(RENDERS).values(digest="e" * 64))

    _rewrite_history(db_url, older_release)
    problems = audit.verify(str(history.root), db_url)
    assert len(problems) == 1
    assert "rendered by release 0.1.0" in problems[0].message
    assert "verify with that release" in problems[0].message


def test_each_recorded_commit_is_rendered_again_not_only_the_cursor(history: Registry,
                                                                    db_url: str) -> None:
    """Renders recorded at an earlier stop of apply, forged there, are found too."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url, to="HEAD~2")
    api.apply(root, db_url)
    stops = {row[0] for row in _select(db_url, select(EVENTS.c.commit_sha).where(
        EVENTS.c.event_type.in_(store.RENDER_EVENTS)))}
    assert len(stops) == 2, "both stops should record renders"
    first = history.repo.commit("HEAD~2").hexsha

    def forge_first(connection: Connection) -> None:
        event = connection.execute(select(EVENTS.c.id, EVENTS.c.payload).where(
            EVENTS.c.event_type == store.RENDER_EVENT, EVENTS.c.commit_sha == first)
            .limit(1)).one()
        connection.execute(update(EVENTS).where(EVENTS.c.id == event.id).values(
            payload={**_payload(event.payload), "digest": "d" * 64}))
        connection.execute(update(RENDERS).where(RENDERS.c.commit_sha == first,
                                                 RENDERS.c.path == _payload(event.payload)["path"])
                           .values(digest="d" * 64))

    _rewrite_history(db_url, forge_first)
    problems = audit.verify(root, db_url)
    assert [p.where for p in problems] == [f"renders of commit {first[:12]}"]


def _select(url: str, query: Any) -> list[Any]:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(query))
    finally:
        engine.dispose()

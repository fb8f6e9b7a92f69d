"""store: every event type is handled or declared history-only; the cursor moves only by
compare-and-set; writing the same commits twice changes nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy

from reconciler import diff, events
from reconciler.batch import commit_batch
from reconciler.catalog import EMPTY
from reconciler.git.objects import CommitInfo
from reconciler.registry import db, store

HISTORY_ONLY = {"version.updated", "dataset.version.updated", "stage.updated",
                "history.rewritten", "render.recorded", "render.removed", "policy.violated",
                "stage.unassigned"}


def test_every_event_type_has_a_handler_or_is_history_only() -> None:
    assert set(store.HANDLERS) | HISTORY_ONLY == set(events.EVENT_TYPES)
    assert not set(store.HANDLERS) & HISTORY_ONLY


def _info(sha: str) -> CommitInfo:
    when = datetime(2024, 6, 1, 10, 0)
    return CommitInfo(sha, (), "Ada", "ada@example.com", when, "Ada", "ada@example.com", when,
                      "message")


def test_the_cursor_moves_only_from_where_the_writer_saw_it(db_url: str) -> None:
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        db.upgrade(engine)
        repo = store.repository_id("store-test")
        store.ensure_repository(engine, repo, "store-test")
        seen = store.read_cursor(engine, repo)
        event = diff.Event("environment.retired", "Environment", "gone")
        batch = commit_batch(_info("a" * 40), [event], EMPTY)
        moved, _, _ = store.write_chunk(engine, repo, seen, [batch], "a" * 40)
        assert store.read_cursor(engine, repo) == moved and moved.event_seq == 1
        with pytest.raises(store.CursorMoved):  # a second writer that saw the old cursor
            store.write_chunk(engine, repo, seen, [batch], "a" * 40)
        assert store.read_cursor(engine, repo) == moved  # and it wrote nothing
        with engine.connect() as connection:
            count = connection.execute(sqlalchemy.text(
                "SELECT COUNT(*) FROM audit_events WHERE repository_id = :r"), {"r": repo})
            assert count.scalar() == 1
    finally:
        engine.dispose()

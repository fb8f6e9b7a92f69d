"""Database plumbing that needs no server: URLs, retries classification, migrations' head."""

from __future__ import annotations

import os

import pymysql
import pytest
import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import exc

import reconciler
from reconciler import db
from reconciler.diagnostics import ReconcilerError


def test_schema_head_constant_matches_the_migrations() -> None:
    config = Config()
    config.set_main_option("script_location",
                           os.path.join(os.path.dirname(reconciler.__file__), "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == db.SCHEMA_HEAD


def test_default_is_an_ignored_sqlite_file(tmp_path: os.PathLike[str]) -> None:
    url = db.database_url(str(tmp_path), None)
    assert url.get_backend_name() == "sqlite"
    assert url.database is not None and url.database.endswith(".reconciler/registry.sqlite")
    ignore = os.path.join(str(tmp_path), ".reconciler", ".gitignore")
    with open(ignore, encoding="utf-8") as handle:
        assert handle.read().strip().endswith("*")


def test_passwords_are_hidden() -> None:
    url = sqlalchemy.make_url("mysql+pymysql://app:s3cr3t@db.example.com:4000/registry")
    assert "s3cr3t" not in db.shown(url)
    error = db.connect_error(url, RuntimeError("login failed for app:s3cr3t"))
    assert "s3cr3t" not in str(error) and "***" in str(error)


def test_bad_url_is_a_usage_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ReconcilerError, match="not a database URL"):
        db.database_url(str(tmp_path), "not a url")
    with pytest.raises(ReconcilerError, match="unsupported database 'oracle'"):
        db.make_engine(sqlalchemy.make_url("oracle://scott@db/x"))


@pytest.mark.parametrize(("code", "transient"), [
    (1213, True), (1205, True), (8002, True), (8005, True), (8022, True), (8028, True),
    (9007, True), (2013, True), (1062, False), (1146, False)])
def test_mysql_and_tidb_codes(code: int, transient: bool) -> None:
    error = exc.OperationalError("UPDATE x", {}, pymysql.err.OperationalError(code, "boom"))
    assert db.is_transient(error) is transient


def test_retries_stop_at_the_first_success_and_give_up_on_permanent_errors() -> None:
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise exc.OperationalError("x", {}, pymysql.err.OperationalError(9007, "conflict"))
        return "done"

    assert db.with_retries(flaky) == "done" and len(attempts) == 3

    def permanent() -> None:
        raise exc.IntegrityError("x", {}, pymysql.err.IntegrityError(1062, "duplicate"))

    with pytest.raises(exc.IntegrityError):
        db.with_retries(permanent)


def _structure(url: str) -> dict[str, object]:
    """Everything the inspector sees of a schema, in a comparable form."""
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        found: dict[str, object] = {}
        for table in sorted(inspector.get_table_names()):
            found[table] = (
                [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                 for c in inspector.get_columns(table)],
                inspector.get_pk_constraint(table)["constrained_columns"],
                sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                       for i in inspector.get_indexes(table)),
                sorted((u["name"], tuple(u["column_names"]))
                       for u in inspector.get_unique_constraints(table)),
                sorted((tuple(f["constrained_columns"]), f["referred_table"],
                        tuple(f["referred_columns"])) for f in inspector.get_foreign_keys(table)),
            )
        return found
    finally:
        engine.dispose()


def test_a_new_embedded_database_gets_the_schema_the_migrations_build(tmp_path: object) -> None:
    migrated, created = (f"sqlite:///{tmp_path}/{name}.sqlite" for name in ("migrated", "new"))
    engine = db.make_engine(sqlalchemy.make_url(migrated))
    db.upgrade(engine)  # Alembic, migration by migration
    engine.dispose()
    engine = db.open_database(sqlalchemy.make_url(created), migrate=False)  # the shortcut
    assert db.schema_state(engine) == (db.SCHEMA_HEAD, db.SCHEMA_HEAD)
    db.ensure_schema(engine, sqlalchemy.make_url(created), migrate=False)  # a second time: no-op
    engine.dispose()
    assert _structure(created) == _structure(migrated)
    assert "audit_events" in _structure(created)

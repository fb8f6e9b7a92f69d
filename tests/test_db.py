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

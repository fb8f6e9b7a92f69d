"""Database plumbing that needs no server: URLs, retries classification, migrations' head."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import exc

import reconciler
from reconciler.diagnostics import ReconcilerError
from reconciler.registry import db
from tests.conftest import Registry, server_url


@pytest.fixture
def history_registry(registry: Registry) -> Path:
    return registry.root


def test_schema_head_constant_matches_the_migrations() -> None:
    config = Config()
    migrations = os.path.join(os.path.dirname(reconciler.__file__), "registry", "migrations")
    config.set_main_option("script_location", migrations)
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
    assert "s3cr3t" not in db.redacted(url)
    error = db.connect_error(url, RuntimeError("login failed for app:s3cr3t"))
    assert "s3cr3t" not in str(error) and "***" in str(error)


@pytest.mark.parametrize("password", ["p@ss", "p@ss@3xyz", "@lead", "tail@"])
def test_a_password_holding_an_unencoded_at_is_hidden_whole(password: str,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    text = f"mysql+pymysql://app:{password}@127.0.0.1:1/registry"
    url = sqlalchemy.make_url(text)
    pieces = [piece for piece in password.split("@") if len(piece) > 1]
    shown = db.redacted(url)
    assert not any(piece in shown for piece in pieces), shown
    assert shown.endswith("@127.0.0.1:1/registry")
    error = db.connect_error(url, RuntimeError(f"cannot reach {url.host}: refused"))
    assert not any(piece in str(error) for piece in pieces), str(error)
    # And end to end: the server refuses (nothing listens on port 1), one line, no secret.
    from reconciler import cli

    assert cli.main(["show", "--db", text]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and not any(piece in err for piece in pieces), err


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


BAD_URLS = {  # URL -> what the one line must say
    "mysql+pymysql://root@127.0.0.1:notaport/test": "not a database URL",
    "mysql+nodriver://root@127.0.0.1/test": "unknown database driver 'mysql+nodriver'",
    "postgresql+psycopg2://u@127.0.0.1/test": "(psycopg2) is not installed",
    "mysql+mysqldb://root@127.0.0.1/test": "(MySQLdb) is not installed",
    "oracle+nothing://u@h/db": "unsupported database 'oracle'",
    "mysql+pymysql://root@127.0.0.1:1/test?charset=nope": "cannot use database",
    "mysql+pymysql://root@127.0.0.1:1/test?connect_timeout=abc": "cannot use database",
    "mysql+pymysql://root@127.0.0.1:1/test?ssl_ca=/nonexistent/ca.pem":
        "ssl_ca=/nonexistent/ca.pem",
    "mysql+pymysql://root@127.0.0.1:1/test?password=hunter2": "password=***",
    "postgresql+psycopg://u@127.0.0.1:1/test?password=hunter2&sslpassword=hunter2":
        "sslpassword=***",
}


@pytest.mark.parametrize("command", [["apply"], ["db", "upgrade"], ["audit", "verify"]])
@pytest.mark.parametrize("url", list(BAD_URLS))
def test_every_unusable_url_is_one_line_without_its_secrets(
        tmp_path: Path, command: list[str], url: str) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@b",
                    "commit", "-q", "--allow-empty", "-m", "start"], check=True)
    done = subprocess.run([sys.executable, "-m", "reconciler", *command, "--db", url],
                          cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert BAD_URLS[url] in done.stderr and "hunter2" not in done.stderr


def test_credentials_in_the_query_are_hidden_on_a_working_database(
        history_registry: Path) -> None:
    # PostgreSQL here trusts local connections: the password is accepted and unused, so a
    # real apply prints the URL it used.
    url = server_url("postgresql")
    secret_url = url + ("&" if "?" in url else "?") + "password=hunter2"
    outputs = []
    for command in (["db", "upgrade"], ["apply"], ["audit", "verify", "--chain-only"]):
        done = subprocess.run([sys.executable, "-m", "reconciler", *command, "--db",
                               secret_url], cwd=history_registry, capture_output=True,
                              text=True, check=False,
                              env={**os.environ, "RECONCILER_REPOSITORY": f"secret-{os.getpid()}"})
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "password=***" in outputs[1] and not any("hunter2" in o for o in outputs)


def test_audit_verify_never_creates_a_database(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    missing = tmp_path / "missing.sqlite"
    done = subprocess.run([sys.executable, "-m", "reconciler", "audit", "verify", "--db",
                           f"sqlite:///{missing}"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and "no database at" in done.stderr
    assert not missing.exists() and not (tmp_path / ".reconciler").exists()


@pytest.mark.parametrize("indent", ["100000000", "-1", "two"])
def test_schema_indent_is_bounded(indent: str) -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "schema", "--indent", indent],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr

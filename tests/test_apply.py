"""apply on SQLite, MariaDB and PostgreSQL: real git histories, several authors, real DVC."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text

from reconciler import api, reconcile
from reconciler.diagnostics import ReconcilerError
from reconciler.git.history import GitHistory
from reconciler.registry import connect, db, store, tables, views
from reconciler.registry import verify as audit
from reconciler.report import diagnostics as report
from reconciler.report import listing
from tests.conftest import (
    Registry,
    _scratch_database,
    copy_registry,
    model_manifest,
    server_url,
)

FRAUD = "manifests/models/fraud.yaml"
CHURN = "manifests/models/churn.yaml"
AUTHORS = {"bob": "Bob Builder <bob@example.com>", "carol": "Carol Ops <carol@example.com>",
           "dave": "Dave Oncall <dave@example.com>", "eve": "Eve Analyst <eve@example.com>"}


def _fraud(registry: Registry, stages: str, old: str, new: str | None,
           deprecated: bool = False) -> None:
    versions = [("1.0.0", "models/fraud.pkl", old)]
    if new:
        versions.append(("1.1.0", "models/fraud.pkl", new))
    text_ = model_manifest("fraud", versions, stages=stages)
    if deprecated:
        text_ = text_.replace('version: "1.0.0"\n', 'version: "1.0.0"\n      deprecated: true\n', 1)
    registry.write(FRAUD, text_)


def build_history(registry: Registry) -> list[str]:
    """Versions added, promotions, a canary, a rollback, a new model and its retirement."""
    shas = [registry.repo.head.commit.hexsha]
    old = registry.digest("models/fraud.pkl")
    registry.write("models/fraud.pkl", b"fraud weights v2\n")
    registry.dvc("add", "-q", "models/fraud.pkl")
    new = registry.digest("models/fraud.pkl")
    _fraud(registry, 'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}', old, new)
    shas.append(registry.commit("Retrain fraud: 1.1.0 to staging", AUTHORS["bob"],
                                "2024-07-01T09:00:00+02:00"))
    _fraud(registry, 'staging: {version: "1.1.0"}\nproduction:\n  version: "1.0.0"\n'
                     '  canary: {version: "1.1.0", traffic: 20}', old, new)
    shas.append(registry.commit("Canary fraud 1.1.0 at 20%", AUTHORS["carol"],
                                "2024-07-02T10:00:00+00:00"))
    _fraud(registry, 'staging: {version: "1.1.0"}\nproduction:\n  version: "1.1.0"\n'
                     '  replicas: {min: 2, max: 4}', old, new)
    shas.append(registry.commit("Promote fraud 1.1.0", AUTHORS["carol"],
                                "2024-07-03T10:00:00+00:00"))
    _fraud(registry, 'staging: {version: "1.1.0"}\nproduction:\n  version: "1.0.0"\n'
                     '  replicas: {min: 2, max: 4}', old, new)
    shas.append(registry.commit("Roll back fraud in production", AUTHORS["dave"],
                                "2024-07-04T03:00:00+00:00"))
    registry.write(CHURN, model_manifest("churn", [("0.1.0", "models/fraud.pkl", new)],
                                         stages='staging: {version: "0.1.0"}').replace(
        "metrics:", 'trainedOn: [{dataset: transactions, version: "2024-06"}]\n      metrics:'))
    shas.append(registry.commit("Add churn", AUTHORS["eve"], "2024-07-05T12:00:00+00:00"))
    (registry.root / CHURN).unlink()
    shas.append(registry.commit("Retire churn", AUTHORS["eve"], "2024-07-06T12:00:00+00:00"))
    _fraud(registry, 'staging: {version: "1.1.0"}\nproduction:\n  version: "1.0.0"\n'
                     '  replicas: {min: 2, max: 4}', old, new, deprecated=True)
    registry.write("README.md", "not a manifest\n")
    shas.append(registry.commit("Deprecate fraud 1.0.0", "Ada Lovelace <ada@example.com>",
                                "2024-07-07T12:00:00+00:00"))
    return shas


def _apply(registry: Registry, url: str, to: str = "HEAD") -> reconcile.ApplyResult:
    return reconcile.sync(str(registry.root), url, to)


def _dump(registry: Registry, url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        return audit.canonical_dump(engine)
    finally:
        engine.dispose()


def _upgrade(registry: Registry, url: str) -> None:
    api.db_upgrade(str(registry.root), url)


def _rows(url: str, query: str, **params: Any) -> list[Any]:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query), params))
    finally:
        engine.dispose()


def _normal(value: Any) -> Any:
    return value.rstrip() if isinstance(value, str) else value


def test_history_becomes_events_stages_and_lineage(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    result = _apply(history, db_url)
    assert result.commits == 8
    assert result.events["stage.assigned"] == 6  # 2 initial, promote, rollback, 1.1.0 staged,
    assert result.events["canary.changed"] == 2  # churn's staging  |  canary on, canary off
    assert result.events["model.retired"] == 1 and result.events["version.deprecated"] == 1

    rows = _rows(db_url, "SELECT event_type, actor_email, environment FROM audit_events "
                         "WHERE event_type = 'stage.assigned' ORDER BY seq")
    assert [(r[0], r[1], r[2]) for r in rows][-3:] == [
        ("stage.assigned", "carol@example.com", "production"),
        ("stage.assigned", "dave@example.com", "production"),
        ("stage.assigned", "eve@example.com", "staging")]

    # What served production at a moment is one query over valid_from / valid_to.
    def serving(at: str) -> list[tuple[str, str]]:
        found = _rows(db_url, "SELECT version, role FROM stage_assignments WHERE environment = "
                              "'production' AND model = 'fraud' AND valid_from <= :t AND "
                              "(valid_to IS NULL OR valid_to > :t) ORDER BY role",
                      t=datetime.fromisoformat(at))
        return [(r[0], r[1]) for r in found]

    assert serving("2024-07-02T12:00:00") == [("1.1.0", "canary"), ("1.0.0", "primary")]
    assert serving("2024-07-03T12:00:00") == [("1.1.0", "primary")]
    assert serving("2024-07-05T00:00:00") == [("1.0.0", "primary")]

    lineage = _rows(db_url, "SELECT source_kind, source_name, source_version, target_name, via "
                            "FROM lineage_edges ORDER BY target_name")
    assert ("Dataset", "transactions", "2024-06", "churn", "trainedOn") in [
        tuple(map(_normal, r)) for r in lineage]
    models = {r[0]: _normal(r[1]) for r in _rows(db_url,
                                                 "SELECT name, retired_commit FROM models")}
    assert models["fraud"] is None and models["churn"] is not None
    authors = {r[0] for r in _rows(db_url, "SELECT author_email FROM commits")}
    assert {"bob@example.com", "carol@example.com", "eve@example.com"} <= authors


def test_apply_records_and_writes_renders(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    outcome = api.apply(str(history.root), db_url, out="deploy")
    assert outcome.rendered == ["production/fraud.yaml", "staging/fraud.yaml"]
    head = history.repo.head.commit.hexsha
    rows = {(r[0], r[1]): _normal(r[2]) for r in _rows(
        db_url, "SELECT environment, model, digest FROM renders WHERE commit_sha = :c", c=head)}
    written = (history.root / "deploy" / "production" / "fraud.yaml").read_bytes()
    assert rows[("production", "fraud")] == hashlib.sha256(written).hexdigest()
    again = api.apply(str(history.root), db_url)
    assert again.applied.commits == 0
    assert _rows(db_url, "SELECT COUNT(*) FROM renders")[0][0] == 2
    # One revision, one output, however it is rendered: from git, or committed and checked.
    assert api.render(str(history.root), rev="HEAD", out="fresh").ok
    assert (history.root / "fresh" / "production" / "fraud.yaml").read_bytes() == written
    (history.root / "fresh" / "production" / "fraud.yaml").unlink()
    history.commit("The rendered configs")
    assert api.render(str(history.root), rev="HEAD", check=True).ok


def test_apply_twice_writes_nothing_new(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    _apply(history, db_url)
    before = _dump(history, db_url)
    again = _apply(history, db_url)
    assert again.commits == 0 and not again.events
    assert _dump(history, db_url) == before


def test_apply_with_nothing_new_loads_no_parser(history: Registry) -> None:
    # Start-up is most of a no-op apply (CI runs one per push): it must not load the manifest
    # parser, the models or the templates it has no use for.
    url = f"sqlite:///{history.root / 'registry.sqlite'}"
    api.apply(str(history.root), url)
    probe = ("import json, sys; from reconciler import cli; code = cli.main(['apply', '--repo', "
             f"{str(history.root)!r}, '--db', {url!r}, '--format', 'json']); "
             "print(json.dumps([m for m in ('pydantic', 'yaml', 'jinja2', 'sqlalchemy.orm', "
             "'reconciler.catalog', 'reconciler.diff', 'reconciler.replay') "
             "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    *report, loaded = done.stdout.strip().splitlines()
    assert json.loads("\n".join(report))["commits"] == 0
    assert json.loads(loaded) == []


def test_dry_run_reports_what_it_would_write_and_writes_nothing(history: Registry,
                                                               db_url: str) -> None:
    _upgrade(history, db_url)
    _apply(history, db_url, "HEAD~2")
    before = _dump(history, db_url)
    planned = api.apply(str(history.root), db_url, dry_run=True).applied
    assert planned.dry_run and planned.commits == 2 and planned.events == {
        "model.retired": 1, "stage.removed": 1, "version.deprecated": 1}
    assert _dump(history, db_url) == before
    done = api.apply(str(history.root), db_url).applied  # and what it said is what happens
    history_events = Counter({t: n for t, n in done.events.items() if not t.startswith("render.")})
    assert (done.commits, history_events) == (planned.commits, planned.events)


def test_dry_run_creates_no_embedded_database(history: Registry,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_DB_URL", raising=False)
    planned = api.apply(str(history.root), dry_run=True).applied
    assert planned.commits == len(list(history.repo.iter_commits("HEAD", first_parent=True)))
    assert not (history.root / ".reconciler").exists()
    assert api.apply(str(history.root)).applied.commits == planned.commits
    assert (history.root / ".reconciler" / "registry.sqlite").exists()


def test_incremental_runs_equal_a_rebuild(history: Registry, db_url: str, tmp_path: Path) -> None:
    _upgrade(history, db_url)
    shas = [c.hexsha for c in history.repo.iter_commits("HEAD", first_parent=True)][::-1]
    for sha in [*shas[::2], shas[-1]]:  # in steps, skipping some commits on the way
        api.apply(str(history.root), db_url, to=sha)  # rendering too: verify renders again
    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.sqlite'}"
    _apply(history, rebuilt)
    assert _dump(history, db_url) == _dump(history, rebuilt)
    assert api.audit_verify(str(history.root), db_url) == []


def test_force_push_records_history_rewritten(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    _apply(history, db_url)
    events_before = _rows(db_url, "SELECT COUNT(*) FROM audit_events")[0][0]
    history.repo.git.reset("--hard", "HEAD~3")  # drop: add churn, retire churn, deprecate
    history.write("manifests/models/other.yaml", model_manifest(
        "other", [("1.0.0", "models/fraud.pkl", history.digest("models/fraud.pkl"))]))
    history.commit("Different future", AUTHORS["bob"], "2024-08-01T00:00:00+00:00")
    result = _apply(history, db_url)
    assert result.rewritten and result.events["history.rewritten"] == 1
    assert result.events["version.undeprecated"] == 1 and result.events["model.created"] == 1
    # Nothing was deleted: the events of the lost commits stay, the rewrite is on top of them.
    assert _rows(db_url, "SELECT COUNT(*) FROM audit_events")[0][0] > events_before
    assert audit.verify(str(history.root), db_url, against_git=False) == []


def test_shallow_clone_without_the_cursor_commit(history: Registry, db_url: str,
                                                 tmp_path: Path) -> None:
    _upgrade(history, db_url)
    _apply(history, db_url, "HEAD~2")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{history.root}", str(shallow)],
                   check=True)
    os.environ["RECONCILER_REPOSITORY"] = history.root.name
    try:
        done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url],
                              cwd=shallow, capture_output=True, text=True, check=False)
    finally:
        del os.environ["RECONCILER_REPOSITORY"]
    assert done.returncode == 2
    assert "shallow clone" in done.stderr and "git fetch --unshallow" in done.stderr
    assert "Traceback" not in done.stderr


def test_injected_transient_error_is_retried(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    backend = sqlalchemy.make_url(db_url).get_backend_name()
    failures = {"left": 1}

    def fail_once(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE reconcile_cursor") and failures["left"]:
            failures["left"] -= 1
            raise _transient_error(backend)

    event.listen(sqlalchemy.Engine, "before_cursor_execute", fail_once)
    try:
        result = api.apply(str(history.root), db_url).applied  # renders too, which verify checks
    finally:
        event.remove(sqlalchemy.Engine, "before_cursor_execute", fail_once)
    assert result is not None and failures["left"] == 0 and result.retries == 1
    assert result.commits == 8
    assert audit.verify(str(history.root), db_url) == []


def _transient_error(backend: str) -> Exception:
    if backend == "mysql":
        import pymysql

        return pymysql.err.OperationalError(9007, "Write conflict, txnStartTS=1 (TiDB)")
    if backend == "postgresql":
        import psycopg

        return psycopg.errors.SerializationFailure("could not serialize access")
    import sqlite3

    return sqlite3.OperationalError("database is locked")


def test_tampered_audit_row_is_found(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)  # renders too: verify renders the cursor again
    assert audit.verify(str(history.root), db_url) == []
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor_email = 'mallory@example.com' "
                                "WHERE seq = 5"))
    engine.dispose()
    problems = audit.verify(str(history.root), db_url)
    assert len(problems) == 1 and "seq 5" in problems[0].where
    done = subprocess.run([sys.executable, "-m", "reconciler", "audit", "verify", "--db", db_url],
                          cwd=history.root, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "seq 5" in done.stdout


def test_rows_changed_behind_its_back_are_found_by_the_rebuild(history: Registry,
                                                               db_url: str) -> None:
    _upgrade(history, db_url)
    _apply(history, db_url)
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    with engine.begin() as connection:
        connection.execute(text("UPDATE model_versions SET digest = 'md5:00' "
                                "WHERE version = '1.1.0'"))
    engine.dispose()
    problems = audit.verify(str(history.root), db_url)
    assert [p.where for p in problems] == ["model_versions"]


def test_server_schema_behind_is_refused(history: Registry, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        assert _apply(history, db_url).commits == 8  # the embedded database migrates itself
        return
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url],
                          cwd=history.root, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "reconciler db upgrade" in done.stderr
    assert subprocess.run([sys.executable, "-m", "reconciler", "db", "upgrade", "--db", db_url],
                          cwd=history.root, check=False).returncode == 0
    assert _apply(history, db_url).commits == 8


def test_invalid_target_writes_nothing(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    history.write(FRAUD, "kind: [\n")
    history.commit("Break it", AUTHORS["bob"], "2024-09-01T00:00:00+00:00")
    outcome = api.apply(str(history.root), db_url)
    assert outcome.applied is None and not outcome.validation.ok
    assert _rows(db_url, "SELECT COUNT(*) FROM audit_events")[0][0] == 0


def test_unreachable_database_is_one_line_without_password(history: Registry) -> None:
    for url in ("mysql+pymysql://root:hunter2@127.0.0.1:1/test",
                "postgresql+psycopg://me:hunter2@127.0.0.1:1/test"):
        done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", url],
                              cwd=history.root, capture_output=True, text=True, check=False,
                              timeout=120)
        assert done.returncode == 2
        assert "hunter2" not in done.stderr + done.stdout
        assert "***" in done.stderr and len(done.stderr.strip().splitlines()) == 1


LONG = 600


def _long_history(registry: Registry, commits: int) -> None:
    """A release a commit; the manifest keeps its last three versions."""
    digest = registry.digest("models/fraud.pkl")
    for number in range(commits):
        versions = [(f"1.{v}.0", "models/fraud.pkl", digest)
                    for v in range(max(number - 2, 0), number + 1)]
        registry.write(FRAUD, model_manifest(
            "fraud", versions, stages=f'staging: {{version: "1.{number}.0"}}\n'
                                      f'production: {{version: "1.{max(number - 1, 0)}.0"}}'))
        registry.commit(f"Release 1.{number}.0", AUTHORS["bob"],
                        f"2025-01-01T{number // 3600:02d}:{number // 60 % 60:02d}:"
                        f"{number % 60:02d}+00:00")


@pytest.fixture(scope="session")
def long_history_template(history_template: Path,
                          tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("long-history")
    registry = copy_registry(history_template, base)
    _long_history(registry, LONG)
    registry.repo.close()
    return base


@pytest.fixture
def long_history(long_history_template: Path, tmp_path: Path) -> Iterator[Registry]:
    copy = copy_registry(long_history_template, tmp_path / "h")
    yield copy
    copy.repo.close()


def _apply_process(registry: Registry, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--db", url],
                            cwd=registry.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_concurrent_applies_never_duplicate(long_history: Registry, db_url: str,
                                            tmp_path: Path) -> None:
    history = long_history
    _upgrade(history, db_url)
    processes = [_apply_process(history, db_url) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    head = history.repo.head.commit.hexsha[:12]
    for stdout, _ in outputs:  # whoever lost a race still says where it started from
        assert f"from {head} to {head}" not in stdout.splitlines()[0], stdout
    clean = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    _apply(history, clean)
    assert _dump(history, db_url) == _dump(history, clean)


def _event_count(watcher: sqlalchemy.Engine) -> int:
    try:
        with watcher.connect() as connection:
            found = connection.execute(text("SELECT MAX(event_seq) FROM reconcile_cursor"))
            return int(found.scalar() or 0)
    except sqlalchemy.exc.DBAPIError:
        return 0  # the first process has not created the schema yet


def _kill_after_progress(process: subprocess.Popen[str], url: str,
                         chance: random.Random) -> None:
    """kill -9 right after the process commits one more chunk (so, inside the next
    transaction), a random 0-20 ms later."""
    # A plain autocommit engine: each poll sees the latest commit and never takes a lock.
    watcher = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        before = _event_count(watcher)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if _event_count(watcher) > before:
                time.sleep(chance.uniform(0, 0.02))
                break
            time.sleep(0.001)
    finally:
        watcher.dispose()
    process.send_signal(signal.SIGKILL)
    process.communicate()


def test_kill_at_random_points_then_finish(long_history: Registry, db_url: str,
                                           tmp_path: Path) -> None:
    history = long_history
    _upgrade(history, db_url)
    clean = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    _apply(history, clean)
    expected = _dump(history, clean)
    head = history.repo.head.commit.hexsha
    chance = random.Random(db_url.split(":")[0])
    stopped_midway = []
    for _ in range(3):
        process = _apply_process(history, db_url)
        _kill_after_progress(process, db_url, chance)
        # Whatever was written is whole commits: the chain and cursor agree at every stop.
        engine = db.make_engine(sqlalchemy.make_url(db_url))
        try:
            repo_id = connect.repository_key(engine, GitHistory(str(history.root)), "HEAD",
                                               connect.repository_name(str(history.root))).id
            if _rows(db_url, "SELECT COUNT(*) FROM reconcile_cursor")[0][0]:
                assert audit.verify_chain(engine, repo_id) == []
                stopped_midway.append(store.read_cursor(engine, repo_id).commit_sha != head)
        finally:
            engine.dispose()
    assert any(stopped_midway), "no kill landed before the end: lengthen the history"
    _apply(history, db_url)
    assert _dump(history, db_url) == expected


def test_forked_replay_writes_the_same_rows(long_history: Registry, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    forked, serial = (f"sqlite:///{tmp_path / name}" for name in ("forked.sqlite",
                                                                  "serial.sqlite"))
    assert reconcile.PIPELINE_COMMITS < LONG
    _apply(long_history, forked)
    monkeypatch.setattr(reconcile, "PIPELINE_COMMITS", 10 ** 9)
    _apply(long_history, serial)
    assert _dump(long_history, forked) == _dump(long_history, serial)


def test_the_tables_declared_match_what_the_migrations_build(db_url: str, tmp_path: Path
                                                              ) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from reconciler.registry.tables import METADATA

    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, METADATA) == []
            migrated = set(sqlalchemy.inspect(connection).get_view_names())
        assert migrated == set(views.NAMES)
    finally:
        engine.dispose()
    fresh = db.make_engine(sqlalchemy.make_url(f"sqlite:///{tmp_path / 'fresh.sqlite'}"))
    try:
        db.create_at_head(fresh)  # a new embedded database: tables and views without Alembic
        with fresh.connect() as connection:
            assert set(sqlalchemy.inspect(connection).get_view_names()) == set(views.NAMES)
    finally:
        fresh.dispose()


def test_migrated_mysql_tables_are_innodb_utf8mb4_with_binary_collation() -> None:
    # tables.py does not repeat the MySQL table options (declaring them loads the whole MySQL
    # dialect on every SQLite start); the migrations set them. A name compared under a _ci
    # collation would make `Model` and `model` one row, so every table is checked.
    url, drop = _scratch_database(server_url("mariadb"))
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            found = connection.execute(text(
                "SELECT table_name, engine, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' "
                "AND table_name <> 'alembic_version'")).all()
    finally:
        engine.dispose()
        drop()
    assert {name for name, _, _ in found} == set(tables.METADATA.tables)
    assert {(engine_name, collation) for _, engine_name, collation in found} == {
        ("InnoDB", "utf8mb4_bin")}


def test_summary_counts_commits_walked_and_commits_that_changed_the_registry(
        history: Registry) -> None:
    # Commits that touch neither manifests nor DVC files are walked but change nothing.
    history.write("README.md", "docs\n")
    history.commit("Docs only")
    url = f"sqlite:///{history.root / 'registry.sqlite'}"
    applied = api.apply(str(history.root), url).applied
    walked = len(list(history.repo.iter_commits("HEAD", first_parent=True)))
    assert (applied.walked, applied.changed) == (walked, walked - 1)
    first = report.apply_text(applied).splitlines()[0]
    assert f"apply: {walked} commits from the beginning to " in first
    assert f", {walked - 1} of them changed the registry;" in first
    again = api.apply(str(history.root), url).applied
    assert report.apply_text(again) == (f"apply: {again.database} is up to date at "
                                        f"{history.repo.head.commit.hexsha[:12]}")


def test_a_symlinked_manifest_is_never_served_unaudited(registry: Registry) -> None:
    # The link leads to a file that promotes nothing the audit trail would see: validate refuses
    # the commit that holds it, and replaying history skips the link like a file that does not
    # load (its last good content is kept), so no event comes from the link's own text.
    url = f"sqlite:///{registry.root / 'registry.sqlite'}"
    fraud = registry.root / FRAUD
    registry.write("elsewhere/fraud.yaml", fraud.read_text().replace(
        'production: {version: "1.0.0"}', ""))
    fraud.unlink()
    fraud.symlink_to("../../elsewhere/fraud.yaml")
    linked = registry.commit("Serve fraud through a link")
    outcome = api.apply(str(registry.root), url, to=linked)
    assert outcome.applied is None
    assert [d.code for d in outcome.validation.diagnostics] == ["FIL001"]
    fraud.unlink()
    registry.write(FRAUD, (registry.root / "elsewhere" / "fraud.yaml").read_text())
    registry.commit("A real file again")
    applied = api.apply(str(registry.root), url).applied
    assert (linked, FRAUD) in applied.skipped
    removed = _rows(url, "SELECT COUNT(*) FROM audit_events WHERE commit_sha = :c", c=linked)
    assert removed == [(0,)]
    assert api.audit_verify(str(registry.root), url) == []


def _raw_commit(registry: Registry, author: bytes, message: bytes) -> str:
    """A commit object written byte for byte (as any git client could push it), made HEAD."""
    registry.repo.git.add(A=True)
    tree = registry.repo.git.write_tree()
    parent = registry.repo.head.commit.hexsha
    raw = (f"tree {tree}\nparent {parent}\n".encode() + b"author " + author + b"\ncommitter "
           + author + b"\n\n" + message)
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                         cwd=registry.root, input=raw, capture_output=True,
                         check=True).stdout.decode().strip()
    subprocess.run(["git", "update-ref", "HEAD", sha], cwd=registry.root, check=True)
    return sha


def test_no_commit_content_can_forge_or_block_its_audit_record(registry: Registry,
                                                               db_url: str) -> None:
    fake = "f" * 40
    registry.write(FRAUD, (registry.root / FRAUD).read_text().replace(
        'production: {version: "1.0.0"}', ""))
    forged = (f"Unserve fraud\x1e{fake}\x1f\x1fMallory\x1fm@evil\x1f0\x1fC\x1fc@x\x1f0\x1f"
              "lies\x1f").encode() + b"\x00nul \xff"
    real = _raw_commit(registry, b"Eve\x1f \xfe <eve@example.com> 299000000000 +0000",
                       forged)
    _upgrade(registry, db_url)
    applied = api.apply(str(registry.root), db_url).applied
    assert applied is not None and applied.changed == 2
    rows = _rows(db_url, "SELECT sha, author_name, author_email, committed_at, message "
                         "FROM commits ORDER BY committed_at")
    assert [r[0] for r in rows][-1] == real and fake not in {r[0] for r in rows}
    _, name, email, committed, message = rows[-1]
    assert (name, email) == ("Eve\x1f \\xfe", "eve@example.com")
    assert str(committed)[:19] == "9999-12-31 23:59:59"  # year 11476, held to what fits
    assert message == forged.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    events = _rows(db_url, "SELECT commit_sha FROM audit_events WHERE event_type = :t",
                   t="stage.removed")
    assert events == [(real,)]
    assert api.audit_verify(str(registry.root), db_url) == []
    # Its year-9999 times print in any zone: hours a zone would push past 9999 are shown in UTC.
    for zone in ("+14:00", "Pacific/Kiritimati"):
        found = api.audit_history(str(registry.root), db_url, model="fraud", tz=zone)
        printed = listing.formatted(found, "text", terminal=False)
        assert printed.splitlines()[-1].split()[:2] == ["9999-12-31T23:59:59Z"] * 2
        assert json.loads(listing.formatted(found, "json"))["rows"][-1]["landed"] == (
            "9999-12-31T23:59:59Z")


STORABLE_LIMITS = {  # value that validates nowhere (each back end rejects some) -> the message
    "metrics: {auc: .nan}": "must be a finite number",
    "metrics: {auc: -.inf}": "must be a finite number",
    "params: {deep: " + "[" * 20 + "]" * 20 + "}": "nested deeper than 24 levels",
    'description: "' + "d" * 70_000 + '"': "the limit is 16000",
    'params: {note: "a\\0b"}': "NUL",
}


@pytest.mark.parametrize("value", list(STORABLE_LIMITS))
def test_values_no_database_stores_neither_validate_nor_block_apply(
        registry: Registry, db_url: str, value: str) -> None:
    fraud = registry.root / FRAUD
    good = fraud.read_text()
    fraud.write_text(good.replace("      metrics: {auc: 0.93}\n", f"      {value}\n"))
    assert STORABLE_LIMITS[value] in " ".join(
        d.message for d in api.validate(str(registry.root)).diagnostics)
    bad = registry.commit("Pushed past validate")  # a direct push: history holds it anyway
    fraud.write_text(good.replace('production: {version: "1.0.0"}', ""))
    registry.commit("A good change after it")
    _upgrade(registry, db_url)
    applied = api.apply(str(registry.root), db_url).applied
    assert applied is not None and (bad, FRAUD) in applied.skipped
    assert applied.events["stage.removed"] == 1
    assert api.audit_verify(str(registry.root), db_url) == []


def test_an_owner_too_long_for_a_database_is_refused(registry: Registry) -> None:
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace("owner: ml@example.com", "owner: " + "o" * 256))
    (problem,) = api.validate(str(registry.root)).diagnostics
    assert (problem.code, problem.message) == ("SPC007", "owner is 256 characters; the limit "
                                                         "is 255")


def test_apply_out_writes_the_targets_configs_even_when_the_database_is_current(
        history: Registry) -> None:
    url = f"sqlite:///{history.root / 'registry.sqlite'}"
    api.apply(str(history.root), url)
    outcome = api.apply(str(history.root), url, out="configs")
    assert outcome.applied is not None and outcome.applied.walked == 0
    assert outcome.rendered == ["production/fraud.yaml", "staging/fraud.yaml"]
    assert (history.root / "configs" / "production" / "fraud.yaml").is_file()


def test_an_edit_of_a_landed_version_pushed_anyway_is_recorded(registry: Registry,
                                                               db_url: str) -> None:
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace("metrics: {auc: 0.93}", "metrics: {auc: 0.99}"))
    edit = registry.commit("Better numbers for a version that already landed")
    _upgrade(registry, db_url)
    applied = api.apply(str(registry.root), db_url).applied
    assert applied is not None and applied.events["version.updated"] == 1
    (payload,) = _rows(db_url, "SELECT payload FROM audit_events WHERE commit_sha = :c "
                               "AND event_type = 'version.updated'", c=edit)
    change = json.loads(payload[0]) if isinstance(payload[0], str) else payload[0]
    assert change == {"metrics": {"from": {"auc": 0.93}, "to": {"auc": 0.99}}}
    (metrics,) = _rows(db_url, "SELECT metrics FROM model_versions WHERE model = 'fraud'")
    landed = json.loads(metrics[0]) if isinstance(metrics[0], str) else metrics[0]
    assert landed == {"auc": 0.93}  # the version row keeps what it landed with
    assert api.audit_verify(str(registry.root), db_url) == []


def _force_push(history: Registry) -> None:
    history.repo.git.reset("--hard", "HEAD~3")  # drop: add churn, retire churn, deprecate
    history.write("manifests/models/other.yaml", model_manifest(
        "other", [("1.0.0", "models/fraud.pkl", history.digest("models/fraud.pkl"))]))
    history.commit("Different future", AUTHORS["bob"], "2024-08-01T00:00:00+00:00")


def test_verify_passes_after_a_force_push_apply_handled(history: Registry, db_url: str) -> None:
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)
    _force_push(history)
    assert api.apply(str(history.root), db_url).applied.rewritten
    history.write("README.md", "one more commit after the rewrite\n")
    history.commit("After the rewrite")
    api.apply(str(history.root), db_url)
    assert audit.verify(str(history.root), db_url) == []
    # ... and still catches a tamper there
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM stage_assignments WHERE model = 'churn'"))
    engine.dispose()
    assert [p.where for p in audit.verify(str(history.root), db_url)] == ["stage_assignments"]


TAMPERS = {  # statement -> the table verify must name
    "UPDATE models SET owner = :spaced WHERE name = 'fraud'": "models",
    "UPDATE commits SET message = :spaced WHERE message = 'Add churn'": "commits",
    "UPDATE renders SET digest = :digest WHERE environment = 'production'": "renders",
    "DELETE FROM renders WHERE environment = 'staging'": "renders",
    "UPDATE renders SET path = :spaced WHERE environment = 'production'": "renders",
}


@pytest.mark.parametrize("statement", list(TAMPERS))
def test_every_edit_is_found_even_trailing_spaces_and_renders(history: Registry, db_url: str,
                                                              statement: str) -> None:
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)
    assert audit.verify(str(history.root), db_url) == []
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    with engine.begin() as connection:
        spaced = {"models": "ml@example.com ", "commits": "Add churn ",
                  "renders": "production/fraud.yaml "}[TAMPERS[statement]]
        connection.execute(text(statement), {"spaced": spaced, "digest": "f" * 64})
    engine.dispose()
    assert [p.where for p in audit.verify(str(history.root), db_url)] == [TAMPERS[statement]]


def _fresh_clone(history: Registry, where: Path) -> Path:
    # file:// makes git send only what is reachable, as a clone from a forge does
    subprocess.run(["git", "clone", "-q", f"file://{history.root}", str(where)], check=True)
    return where


def test_a_force_push_then_a_fresh_clone_continues_from_the_newest_reconciled_ancestor(
        history: Registry, db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_REPOSITORY", "registry")
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)
    _force_push(history)
    clone = _fresh_clone(history, tmp_path / "ci-checkout")
    applied = api.apply(str(clone), db_url).applied
    assert applied is not None and applied.rewritten
    assert applied.events["history.rewritten"] == 1 and applied.events["model.created"] == 1
    # Undone from what the database held: 1.0.0's deprecation was lost; churn, added and
    # retired in the lost commits, is retired there already.
    assert applied.events["version.undeprecated"] == 1 and applied.events["stage.removed"] == 0
    # What the database says is current equals a clean rebuild of the new history.
    clean = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    api.apply(str(clone), clean)
    held, rebuilt = (_current(url) for url in (db_url, clean))
    assert held == rebuilt
    assert api.apply(str(clone), db_url).applied.walked == 0  # and it is done


def _current(url: str) -> Any:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        state = store.recorded_state(engine, store.repository_id("registry"))
    finally:
        engine.dispose()
    return state.environments, state.datasets, state.models, state.serving


def test_verify_after_fetching_what_a_force_push_removed_says_ok(
        history: Registry, db_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """apply in a fresh clone undid the lost commits from what the database held; verify there
    asks for the lost commit, and once it is fetched as it says, the rebuild takes the walk apply
    took (it replayed from git before, and called the honest database tampered)."""
    monkeypatch.setenv("RECONCILER_REPOSITORY", "registry")
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)
    lost = history.repo.head.commit.hexsha
    _force_push(history)
    clone = _fresh_clone(history, tmp_path / "ci-checkout")
    api.apply(str(clone), db_url)
    with pytest.raises(ReconcilerError, match=f"git fetch origin {lost}"):
        audit.verify(str(clone), db_url)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "origin", lost], check=True)
    assert audit.verify(str(clone), db_url) == []
    assert audit.verify(str(history.root), db_url) == []  # where the commit never left
    _tamper(db_url, "UPDATE models SET owner = 'mallory@example.com' WHERE name = 'other'")
    assert [p.where for p in audit.verify(str(clone), db_url)] == ["models"]


def _tamper(url: str, statement: str) -> None:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def test_a_database_whose_commits_are_all_gone_says_how_to_go_on(
        history: Registry, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_REPOSITORY", "registry")
    _upgrade(history, db_url)
    api.apply(str(history.root), db_url)
    other = tmp_path / "rewritten"
    subprocess.run(["git", "init", "-q", "-b", "main", str(other)], check=True)
    for name in ("manifests", "models", "data", ".dvc", ".dvcignore"):
        source = history.root / name
        if source.is_dir():
            shutil.copytree(source, other / name)
        elif source.exists():
            shutil.copy(source, other / name)
    subprocess.run(["git", "-C", str(other), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=R", "-c", "user.email=r@x",
                    "commit", "-qm", "History rewritten from nothing"], check=True)
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url],
                          cwd=other, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "--reset-history" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    applied = api.apply(str(other), db_url, reset_history=True).applied
    assert applied is not None and applied.rewritten
    clean = f"sqlite:///{tmp_path / 'clean.sqlite'}"
    api.apply(str(other), clean)
    assert _current(db_url) == _current(clean)
    # verify asks for the replaced history; fetched as it says, the rebuild agrees
    lost = history.repo.head.commit.hexsha
    with pytest.raises(ReconcilerError, match=f"git fetch origin {lost}"):
        audit.verify(str(other), db_url)
    subprocess.run(["git", "-C", str(other), "fetch", "-q", str(history.root), lost], check=True)
    assert audit.verify(str(other), db_url) == []


def test_an_environment_name_no_database_stores_does_not_block_apply(registry: Registry,
                                                                    db_url: str) -> None:
    fraud = registry.root / FRAUD
    good = fraud.read_text()
    fraud.write_text(good.replace('production: {version: "1.0.0"}',
                                  "e" * 300 + ': {version: "1.0.0"}'))
    bad = registry.commit("A stage no server database can store")
    fraud.write_text(good.replace('production: {version: "1.0.0"}', ""))
    registry.commit("Fixed")
    _upgrade(registry, db_url)
    applied = api.apply(str(registry.root), db_url).applied
    assert applied is not None and (bad, FRAUD) in applied.skipped


def test_a_change_pushed_past_the_policy_is_recorded_as_violating_it(registry: Registry,
                                                                     db_url: str) -> None:
    old = registry.digest("models/fraud.pkl")
    registry.write("models/fraud.pkl", b"fraud weights v2\n")
    registry.dvc("add", "-q", "models/fraud.pkl")
    new = registry.digest("models/fraud.pkl")
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)],
        stages='staging: {version: "1.0.0"}\nproduction: {version: "1.1.0"}'))
    pushed = registry.commit("Straight to production, past staging")
    _upgrade(registry, db_url)
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url,
                           "--strict"], cwd=registry.root, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1 and "--strict" in done.stderr, done.stdout + done.stderr
    assert "landed although validate refuses them" in done.stdout
    (payload,) = _rows(db_url, "SELECT payload FROM audit_events WHERE commit_sha = :c AND "
                               "event_type = 'policy.violated'", c=pushed)
    violation = json.loads(payload[0]) if isinstance(payload[0], str) else payload[0]
    assert violation == {"rule": "POL001", "requires": "staging"}
    assert api.audit_verify(str(registry.root), db_url) == []

"""Benchmark the audit queries on a database of 1,000,000 audit events (2,000 models, 50,000
versions, long promotion histories), on SQLite and, when their URLs are given, MariaDB and
PostgreSQL. Prints p50/p95 over --runs runs of each query, in process (no start-up), and with
--explain the plan of every statement each query sends.

    python bench/audit.py [--events 1000000] [--models 2000] [--versions 25] [--runs 100]
        [--mysql mysql+pymysql://root@127.0.0.1:3306/test]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--explain]
        [--mysql-buffer-pool 3G]

On MariaDB the figures depend on whether the data fits InnoDB's buffer pool: Debian's default is
128 MiB, the 1,000,000-event database about 2 GB with its indexes, and InnoDB reads past its
pool with O_DIRECT (no help from the OS cache). The bench prints both sizes; --mysql-buffer-pool
sets the pool for the run (SET GLOBAL, as a DBA sizes it for the data) and puts the old size
back after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, event

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from auditdb import START, STEP, Workload, fill, model_name, version_name

from reconciler.gcpause import paused_gc
from reconciler.registry import db, queries, store
from tests.conftest import _scratch_database  # the scratch databases the tests use

REPOSITORY = "bench"


def _queries(workload: Workload) -> dict[str, Callable[[Connection, str, random.Random], Any]]:
    span = STEP * workload.versions * workload.models * 4

    def model(rng: random.Random) -> str:
        return model_name(rng.randrange(workload.models))

    def moment(rng: random.Random) -> Any:
        return START + span * rng.random()

    return {
        "show one model": lambda c, r, g: queries.show(c, r, model(g), None),
        "history of one model": lambda c, r, g: queries.history(c, r, model(g), None, None,
                                                                 None),
        "at T, one model": lambda c, r, g: queries.served_at(c, r, moment(g), None, model(g)),
        "at T, production": lambda c, r, g: queries.served_at(c, r, moment(g), "production",
                                                              None),
        "lineage, depth 5": lambda c, r, g: queries.lineage(
            c, r, model(g), version_name(workload.versions - 1), upstream=True, depth=5),
        "show all models": lambda c, r, g: queries.show(c, r, None, None),
    }


def _explain(engine: Engine, connection: Connection, run: Callable[..., Any], repo_id: str,
             rng: random.Random) -> list[str]:
    """The plan of each statement one run of a query sends."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        run(connection, repo_id, rng)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    prefix = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN "}.get(
        engine.dialect.name, "EXPLAIN ")
    plans = []
    for statement, parameters in sent:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        plans.append("\n".join("      " + " | ".join(str(v) for v in row) for row in rows))
    return plans


def _pool_against_data(connection: Connection) -> str:
    """The InnoDB buffer pool against the size of this database's tables and indexes."""
    pool = connection.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar_one()
    data = connection.exec_driver_sql(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        "WHERE table_schema = DATABASE()").scalar_one()
    return (f"  InnoDB buffer pool {int(pool) / 2**20:,.0f} MiB, this database "
            f"{int(data) / 2**20:,.0f} MiB")


def _pool_bytes(size: str) -> int:
    """2G, 512M, 64K or a number of bytes, as MariaDB's option files write sizes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(size[:-1]) * units[size[-1].upper()] if size[-1].isalpha() else int(size)


def _resize_buffer_pool(engine: Engine, size: int) -> int:
    """Set the server's InnoDB buffer pool and wait for the resize; returns the size before."""
    with engine.connect() as connection:
        before = int(connection.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar_one())
        connection.exec_driver_sql(f"SET GLOBAL innodb_buffer_pool_size = {int(size)}")
        for _ in range(300):  # the resize runs in the background: wait up to a minute
            status = connection.exec_driver_sql(
                "SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'").one()[1]
            if status in ("", "Completed resizing buffer pool."):
                break
            time.sleep(0.2)
    return before


@contextlib.contextmanager
def _buffer_pool(url: str, size: str | None) -> Iterator[None]:
    """Run the block with the server's InnoDB buffer pool at size, then put the old size back."""
    if size is None:
        yield
        return
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    before = _resize_buffer_pool(engine, _pool_bytes(size))
    try:
        yield
    finally:
        _resize_buffer_pool(engine, before)
        engine.dispose()


TABLES = ("audit_events", "stage_assignments", "model_versions", "models", "lineage_edges",
          "commits", "commit_people")


def _settle(engine: Engine) -> None:
    """Bring a freshly filled database to the state a server holding it runs in: statistics
    gathered, the load written out, its tables and indexes in the cache (the figures are of a
    warm, steady server; reads right after a bulk load measure the load, not the queries)."""
    if engine.dialect.name == "sqlite":
        # Nothing more: apply never runs ANALYZE, so users' SQLite databases hold no
        # statistics, and the figures are of the plans SQLite makes without them.
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "postgresql":
            # VACUUM after a bulk load, as autovacuum would soon: it sets the hint bits and the
            # visibility map, which the first reads of each page would otherwise write.
            for table in TABLES:
                connection.exec_driver_sql(f"VACUUM ANALYZE {table}")
            connection.exec_driver_sql("CHECKPOINT")  # the load's dirty buffers written out
        else:
            _flush_innodb(connection)
            for table in TABLES:
                connection.exec_driver_sql(f"ANALYZE TABLE {table}").all()
                # InnoDB reads with O_DIRECT: only its buffer pool caches. Read every index
                # once, the clustered one (PRIMARY) holding the rows.
                indexes = {row[2] for row in connection.exec_driver_sql(f"SHOW INDEX FROM {table}")}
                for index in sorted(indexes):
                    connection.exec_driver_sql(
                        f"SELECT COUNT(*) FROM {table} FORCE INDEX (`{index}`)").all()


def _flush_innodb(connection: Connection) -> None:
    """Wait until InnoDB has written the bulk load out. It flushes in the background at
    innodb_io_capacity (200 pages a second by default): minutes after the fill 49,000 dirty
    pages were left, and while they were written a model's history took 16.6/21.3 ms p50/p95
    against 8.3/13.4 just before (same database, flushing slowly)."""
    started = time.perf_counter()
    before = connection.exec_driver_sql("SELECT @@innodb_max_dirty_pages_pct").scalar_one()
    connection.exec_driver_sql("SET GLOBAL innodb_max_dirty_pages_pct = 0")
    try:
        while _dirty_pages(connection) > 1000 and time.perf_counter() - started < 900:
            time.sleep(1)
    finally:
        connection.exec_driver_sql(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(before)}")
    print(f"  InnoDB flushed the fill in {time.perf_counter() - started:.0f} s "
          f"({_dirty_pages(connection):,} dirty pages left)")


def _dirty_pages(connection: Connection) -> int:
    return int(connection.exec_driver_sql(
        "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").one()[1])


def bench(label: str, url: str, workload: Workload, runs: int, explain: bool) -> None:
    """Fill one database, time each query, print the figures."""
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        started = time.perf_counter()
        counts = fill(engine, REPOSITORY, workload)
        print(f"{label}: filled in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{n:,} {t}" for t, n in counts.items() if n))
        repo_id = store.repository_id(REPOSITORY)
        rng = random.Random(7)
        _settle(engine)
        # Just before the figures it qualifies: the speed moved within minutes here.
        print(f"  machine: {machine_speed():.2f} ms for a fixed Python job (machine_speed: "
              "compare figures taken at different times by it)")
        with engine.connect() as connection:
            if engine.dialect.name == "mysql":
                print(_pool_against_data(connection))
            for name, run in _queries(workload).items():
                run(connection, repo_id, rng)  # warm
                times = []
                with paused_gc():  # as the commands run their queries (queries.reading)
                    for _ in range(runs):
                        start = time.perf_counter()
                        run(connection, repo_id, rng)
                        times.append((time.perf_counter() - start) * 1000)
                p95 = statistics.quantiles(times, n=20)[-1]
                print(f"  {name:22s} p50 {statistics.median(times):8.2f} ms   p95 "
                      f"{p95:8.2f} ms")
                if explain:
                    for plan in _explain(engine, connection, run, repo_id, rng):
                        print(plan)
    finally:
        engine.dispose()


def machine_speed() -> float:
    """ms, best of 20, for a fixed pure-Python job shaped like a history's client side
    (500 JSON payloads decoded, 500 ISO times parsed, 500 rows built). This VM's speed drifted
    2x between two sessions of one day; printed beside the figures, it tells a slow machine
    from a slower query."""
    payload = json.dumps({"kind": "promotion", "from": "1.4.0", "to": "1.5.0",
                          "metrics": {"auc": 0.91, "f1": 0.82}})
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        rows = [{"seq": n, "payload": json.loads(payload),
                 "landed": datetime.fromisoformat("2024-05-14 14:00:00")} for n in range(500)]
        best = min(best, time.perf_counter() - start)
    assert len(rows) == 500
    return best * 1000


def main() -> None:
    """Parse, fill and time each back end in turn."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=25)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--mysql", metavar="URL")
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--mysql-buffer-pool", metavar="SIZE",
                        help="InnoDB buffer pool for the run, e.g. 3G (default: as configured)")
    parser.add_argument("--no-sqlite", action="store_true", help="only the servers given")
    args = parser.parse_args()
    workload = Workload(args.models, args.versions, args.events)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="reconciler-bench-audit-") as folder:
            bench("sqlite", f"sqlite:///{folder}/audit.sqlite", workload, args.runs,
                  args.explain)
    for label, base in (("mariadb", args.mysql), ("postgresql", args.postgres)):
        if base:
            url, drop = _scratch_database(base)
            pool = args.mysql_buffer_pool if label == "mariadb" else None
            try:
                with _buffer_pool(url, pool):
                    bench(label, url, workload, args.runs, args.explain)
            finally:
                drop()


if __name__ == "__main__":
    main()

"""Benchmark the audit queries on a database of 1,000,000 audit events (2,000 models, 50,000
versions, long promotion histories), on SQLite and, when their URLs are given, MariaDB and
PostgreSQL. Prints p50/p95 over --runs runs of each query, in process (no start-up), and with
--explain the plan of every statement each query sends.

    python bench/audit.py [--events 1000000] [--models 2000] [--versions 25] [--runs 100]
        [--mysql mysql+pymysql://root@127.0.0.1:3306/test]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--explain]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy
from sqlalchemy import Connection, Engine, event

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from auditdb import START, STEP, Workload, fill, model_name, version_name

from reconciler import db, queries, store
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
        with engine.connect() as connection:
            if engine.dialect.name != "sqlite":
                for table in ("audit_events", "stage_assignments", "model_versions",
                              "lineage_edges", "commits"):
                    connection.exec_driver_sql(f"ANALYZE TABLE {table}" if engine.dialect.name
                                               == "mysql" else f"ANALYZE {table}")
            else:
                connection.exec_driver_sql("ANALYZE")
            for name, run in _queries(workload).items():
                run(connection, repo_id, rng)  # warm
                times = []
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
            try:
                bench(label, url, workload, args.runs, args.explain)
            finally:
                drop()


if __name__ == "__main__":
    main()

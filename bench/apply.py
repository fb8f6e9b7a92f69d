"""Benchmark `reconciler apply` against MLflow's model registry on the same history.

    python bench/apply.py [--commits 2000] [--models 200] [--mysql URL] [--mlflow-python PATH]

Generates a history (bench/gen.py) of one retrain + promotion per commit and prints: full
backfill on SQLite (and MariaDB/MySQL with --mysql or $RECONCILER_TEST_MYSQL_URL), a no-op
apply, an apply of one new commit, peak RSS; then MLflow (MlflowClient on a SQLite store)
registering the same versions and moving the same aliases. MLflow is not a dependency of this
project: the benchmark makes a virtual environment for it (bench/.venv-mlflow) on first use.

"wall" is the whole process, interpreter start-up included; "inside apply" is the time apply
reports for itself (after start-up and imports: validating the target, writing every commit,
rendering and recording the target's configs), best of 3 backfills into new databases; the
no-op and one-commit applies are best of 3 too (noise only ever adds time). MLflow
is timed the same way, inside its script after import and client set-up, over one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import commit_one_more_release, generate_history

HERE = os.path.dirname(os.path.abspath(__file__))
RECONCILER = os.path.join(os.path.dirname(sys.executable), "reconciler")

MLFLOW_SCRIPT = """
import json, sys, time, logging
logging.disable(logging.WARNING)
import mlflow
from mlflow import MlflowClient
commits, models = int(sys.argv[1]), int(sys.argv[2])
mlflow.set_tracking_uri("sqlite:///" + sys.argv[3])
client = MlflowClient()
start = time.perf_counter()
versions = 0
for number in range(1, commits):
    model, release = (number - 1) % models, (number - 1) // models + 1
    name = f"model-{model:05d}"
    if release == 1:
        client.create_registered_model(name)
    mv = client.create_model_version(name, source=f"/artifacts/{name}/{release}")
    versions += 1
    client.set_registered_model_alias(name, "staging", mv.version)
    if release > 1:
        client.set_registered_model_alias(name, "production", str(int(mv.version) - 1))
print(json.dumps({"seconds": time.perf_counter() - start, "versions": versions}))
"""


def run(command: list[str], cwd: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    out, err = process.communicate()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{out[-2000:]}{err[-2000:]}")
    rss = 0
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except ImportError:
        pass
    return elapsed, rss, out


def apply_json(root: str, url: str) -> tuple[float, int, dict[str, object]]:
    """Run `reconciler apply --format json`; wall time, peak RSS so far, its report."""
    elapsed, rss, out = run([RECONCILER, "apply", "--db", url, "--format", "json"], root)
    return elapsed, rss, json.loads(out)


def mlflow_python(given: str | None) -> str | None:
    """An interpreter with mlflow, made in bench/.venv-mlflow when needed."""
    if given:
        return given
    venv = os.path.join(HERE, ".venv-mlflow")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        print("  (installing mlflow-skinny + sqlalchemy + alembic into bench/.venv-mlflow)")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        done = subprocess.run([python, "-m", "pip", "install", "-q", "mlflow-skinny",
                               "sqlalchemy", "alembic"], check=False)
        if done.returncode != 0:
            return None
    return python


def scratch_mysql(base: str) -> tuple[str, object]:
    """A new database on the MySQL/MariaDB server of base, and a function dropping it."""
    import sqlalchemy

    url = sqlalchemy.make_url(base)
    name = f"reconciler_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    """Generate, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--mysql", default=os.environ.get("RECONCILER_TEST_MYSQL_URL"))
    parser.add_argument("--mlflow-python")
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="reconciler-bench-apply-")
    root = os.path.join(workdir, "repo")
    try:
        generate_history(root, args.commits, args.models)
        versions = args.commits - 1
        print(f"history: {args.commits} commits, {args.models} models, {versions} versions "
              "(each commit: a retrain, staging -> new, production -> previous)")
        # Best of 3 backfills, each into a new database (noise only ever adds time).
        runs = []
        for attempt in range(3):
            sqlite = f"sqlite:///{os.path.join(workdir, f'registry-{attempt}.sqlite')}"
            runs.append((*apply_json(root, sqlite), sqlite))
        wall = min(run[0] for run in runs)
        inner = min(float(run[2]["seconds"]) for run in runs)  # type: ignore[arg-type]
        rss, report, sqlite = runs[-1][1], runs[-1][2], runs[-1][3]
        per_version_ms = 1000 * wall / versions
        print(f"  SQLite backfill        {wall:7.2f} s wall ({inner:.2f} s inside apply), "
              f"{args.commits / wall:6.0f} commits/s wall, {args.commits / inner:6.0f} inside;"
              f" {sum(report['events'].values())} events")  # type: ignore[attr-defined]
        wall_noop = min(apply_json(root, sqlite)[0] for _ in range(3))
        print(f"  no-op apply            {wall_noop:7.2f} s wall (best of 3)")
        commit_one_more_release(root, args.commits, args.models)
        # Best of 3, each from the database as the backfill left it.
        database = sqlite.removeprefix("sqlite:///")
        shutil.copyfile(database, database + ".before")
        walls = []
        for _ in range(3):
            shutil.copyfile(database + ".before", database)
            for stale in (database + "-wal", database + "-shm"):  # none after a clean close
                if os.path.exists(stale):
                    os.remove(stale)
            walls.append(apply_json(root, sqlite)[0])
        wall_one = min(walls)
        print(f"  one new commit         {wall_one:7.2f} s wall (best of 3)")
        print(f"  peak RSS (largest run) {rss / 1024:7.0f} MiB")
        if args.mysql:
            url, drop = scratch_mysql(args.mysql)
            try:
                run([RECONCILER, "db", "upgrade", "--db", url], root)
                wall_my, _, report_my = apply_json(root, url)
                print(f"  MySQL/MariaDB backfill {wall_my:7.2f} s wall "
                      f"({float(report_my['seconds']):.2f} s inside), "  # type: ignore[arg-type]
                      f"{(args.commits + 1) / wall_my:6.0f} commits/s wall")
            finally:
                drop()  # type: ignore[operator]
        if args.skip_mlflow:
            return
        python = mlflow_python(args.mlflow_python)
        if python is None:
            print("  MLflow: could not install mlflow; skipped")
            return
        store = os.path.join(workdir, "mlflow.db")
        _, _, out = run([python, "-c", MLFLOW_SCRIPT, str(args.commits), str(args.models),
                         store], workdir)
        mlflow = json.loads(out.strip().splitlines()[-1])
        mlflow_ms = 1000 * mlflow["seconds"] / mlflow["versions"]
        print(f"  MLflow registry        {mlflow['seconds']:7.2f} s for {mlflow['versions']} "
              f"versions + aliases: {mlflow_ms:.2f} ms a version "
              f"({1000 / mlflow_ms:.0f} versions/s)")
        print(f"  reconciler: {per_version_ms:.2f} ms a version (wall, start-up included): "
              f"{mlflow_ms / per_version_ms:.1f}x faster than MLflow (target >= 20x); inside "
              f"apply {mlflow_ms / (1000 * inner / versions):.1f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

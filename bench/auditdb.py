"""Fill an audit database in bulk with a synthetic history, as apply would have written it:
models with versions retrained one after another, each promoted to staging then production
(some through a canary), lineage (a dataset per version and the parent chain), and the events
of all that, plus metadata edits to reach the event count asked for.

Used by bench/audit.py (queries at 1,000,000 events) and bench/gto.py (the same registry as
GTO tags). Rows are inserted with executemany in batches; hashes are random (the queries do not
read the chain).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert

from reconciler.registry import db, store, tables

START = datetime(2023, 1, 1)
STEP = timedelta(minutes=7)
BATCH = 5000


class Workload(NamedTuple):
    """What to generate: models x versions each, events in all (at least those the versions'
    lifecycle needs), environments staging and production."""

    models: int
    versions: int
    events: int
    canary_every: int = 5  # every nth production version goes through a canary (0: none)
    environments: tuple[str, ...] = ("staging", "production")  # promoted in this order
    datasets: int = 0  # Dataset rows (versions v0...) for the lineage edges' sources


class Assignment(NamedTuple):
    """One stage assignment of the history: what bench/gto.py also writes as a tag."""

    model: str
    environment: str
    role: str
    version: str
    traffic: int | None
    start: datetime
    end: datetime | None


def model_name(index: int) -> str:
    """The name of model number index."""
    return f"model-{index:05d}"


def version_name(index: int) -> str:
    """Version number index (0-based) as GTO's semver: v1.0.0, v1.1.0, ..."""
    return f"1.{index}.0"


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def assignments(workload: Workload) -> Iterator[Assignment]:
    """Every stage assignment: each version to staging, then to production (every fifth through
    a 10% canary first); the previous one closes when the next opens."""
    for m in range(workload.models):
        name = model_name(m)
        last = len(workload.environments) - 1
        for index, env in enumerate(workload.environments):
            env_offset = round(index * 2 / max(last, 1))  # staging 0, production 2
            for v in range(workload.versions):
                start = START + STEP * (v * workload.models * 4 + m * 4 + env_offset)
                end = (START + STEP * ((v + 1) * workload.models * 4 + m * 4 + env_offset)
                       if v + 1 < workload.versions else None)
                every = workload.canary_every
                if index == last and every and v % every == every - 1:
                    yield Assignment(name, env, "canary", version_name(v), 10, start - STEP,
                                     start)
                yield Assignment(name, env, "primary", version_name(v), None, start, end)


def fill(engine: Engine, repo_name: str, workload: Workload, seed: int = 1) -> dict[str, int]:
    """Create the schema and write the workload; returns the row count of each table."""
    random.seed(seed)
    db.create_at_head(engine)
    repo_id = store.repository_id(repo_name)
    counts: dict[str, int] = {}
    with engine.begin() as connection:
        connection.execute(insert(tables.REPOSITORIES), [{"id": repo_id, "name": repo_name}])
        connection.execute(insert(tables.RECONCILE_CURSOR), [{
            "repository_id": repo_id, "commit_sha": _sha("head"), "generation": 1,
            "event_seq": 0, "last_hash": store.GENESIS, "updated_at": START}])
    for table, rows in _tables(repo_id, workload):
        counts[table.name] = counts.get(table.name, 0)
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                _write(engine, table, batch)
                counts[table.name] += len(batch)
                batch = []
        if batch:
            _write(engine, table, batch)
            counts[table.name] += len(batch)
    return counts


def _write(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(table), rows)


def _tables(repo_id: str, workload: Workload) -> Iterator[tuple[Any, Iterator[dict[str, Any]]]]:
    yield tables.MODELS, _models(repo_id, workload)
    yield tables.MODEL_VERSIONS, _versions(repo_id, workload)
    yield tables.ENVIRONMENTS, iter([
        {"repository_id": repo_id, "name": env, "namespace": f"ml-{env}", "target": "kserve",
         "spec": {"namespace": f"ml-{env}", "target": "kserve"}, "created_commit": _sha(env),
         "retired_commit": None} for env in workload.environments])
    yield tables.DATASETS, iter([
        {"repository_id": repo_id, "name": f"dataset-{d:03d}", "owner": "data@example.com",
         "description": None, "created_commit": _sha("d", d), "retired_commit": None}
        for d in range(workload.datasets)])
    yield tables.DATASET_VERSIONS, iter([
        {"repository_id": repo_id, "dataset": f"dataset-{d:03d}", "version": f"v{v}",
         "artifact": f"data/dataset-{d:03d}", "digest": "md5:" + hashlib.md5(
             f"d{d}/{v}".encode()).hexdigest(), "size": 10_000, "nfiles": None,
         "deprecated": False, "added_commit": _sha("d", d), "deprecated_commit": None,
         "removed_commit": None} for d in range(workload.datasets)
        for v in range(workload.versions)])
    yield tables.STAGE_ASSIGNMENTS, _assignment_rows(repo_id, workload)
    yield tables.LINEAGE_EDGES, _edges(repo_id, workload)
    yield tables.COMMITS, _commits(repo_id, workload)
    yield tables.COMMIT_PEOPLE, _people(repo_id, workload)
    yield tables.AUDIT_EVENTS, _events(repo_id, workload)


def _models(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    for m in range(workload.models):
        yield {"repository_id": repo_id, "name": model_name(m), "framework": "sklearn",
               "owner": f"team-{m % 20}@example.com", "description": None, "labels": None,
               "created_commit": _sha("m", m), "retired_commit": None}


def _versions(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    for m in range(workload.models):
        for v in range(workload.versions):
            yield {"repository_id": repo_id, "model": model_name(m), "version": version_name(v),
                   "artifact": f"models/{model_name(m)}.pkl",
                   "digest": "md5:" + hashlib.md5(f"{m}/{v}".encode()).hexdigest(),
                   "size": 1000 + v, "nfiles": None,
                   "parent": version_name(v - 1) if v else None,
                   "metrics": {"auc": round(0.8 + v / 1000, 4)}, "params": None,
                   "deprecated": False, "added_commit": _sha("v", m, v),
                   "deprecated_commit": None, "removed_commit": None}


def _assignment_rows(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    for a in assignments(workload):
        sha = _sha("a", a.model, a.environment, a.role, a.version)
        yield {"id": hashlib.sha256(sha.encode()).hexdigest(), "repository_id": repo_id,
               "model": a.model, "environment": a.environment, "role": a.role,
               "version": a.version, "traffic": a.traffic, "valid_from": a.start,
               "valid_from_commit": sha, "valid_to": a.end,
               "valid_to_commit": _sha("end", sha) if a.end else None}


def _edges(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    for m in range(workload.models):
        for v in range(workload.versions):
            sources = [("Dataset", f"dataset-{m % 50:03d}", f"v{v}", "trainedOn")]
            if v:
                sources.append(("Model", model_name(m), version_name(v - 1), "parent"))
            for kind, name, version, via in sources:
                yield {"id": hashlib.sha256(f"{m}/{v}/{kind}".encode()).hexdigest(),
                       "repository_id": repo_id, "source_kind": kind, "source_name": name,
                       "source_version": version, "target_name": model_name(m),
                       "target_version": version_name(v), "via": via,
                       "commit_sha": _sha("v", m, v)}


def _commits(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    for m in range(workload.models):
        for v in range(workload.versions):
            when = START + STEP * (v * workload.models * 4 + m * 4)
            yield {"repository_id": repo_id, "sha": _sha("v", m, v), "parent_sha": None,
                   "author_name": f"Author {m % 37}", "author_email": f"a{m % 37}@example.com",
                   "authored_at": when, "committer_name": "CI", "committer_email": "ci@example.com",
                   "committed_at": when, "message": f"Retrain {model_name(m)}"}


def _people(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    """Each commit a merge: its proposer, its merger and a reviewer (people.credited)."""
    for m in range(workload.models):
        for v in range(workload.versions):
            sha = _sha("v", m, v)
            for position, (role, person) in enumerate((
                    ("proposer", m % 37), ("merger", 100 + m % 5), ("reviewer", 200 + v % 7))):
                yield {"id": hashlib.sha256(f"{sha}/{role}".encode()).hexdigest(),
                       "repository_id": repo_id, "commit_sha": sha, "position": position,
                       "role": role, "name": f"Person {person}",
                       "email": f"p{person}@example.com"}


def _events(repo_id: str, workload: Workload) -> Iterator[dict[str, Any]]:
    """The lifecycle's events in time order, then metadata edits to reach workload.events."""
    lifecycle = []
    for m in range(workload.models):
        for v in range(workload.versions):
            when = START + STEP * (v * workload.models * 4 + m * 4)
            lifecycle.append((when, m, "version.added", version_name(v), None,
                              {"digest": "md5:...", "metrics": {"auc": 0.8}}))
    for a in assignments(workload):
        if a.role == "canary":
            kind, payload = "canary.changed", {"from": None, "to": {"version": a.version,
                                                                   "traffic": a.traffic}}
        else:
            kind, payload = "stage.assigned", {"from": None, "to": a.version,
                                               "kind": "promotion"}
        lifecycle.append((a.start, int(a.model.split("-")[1]), kind, a.version, a.environment,
                          payload))
    extra = max(0, workload.events - len(lifecycle))
    span = STEP * workload.versions * workload.models * 4
    for index in range(extra):
        lifecycle.append((START + span * index / max(extra, 1), index % workload.models,
                          "model.updated", None, None, {"description": {"from": "a", "to": "b"}}))
    lifecycle.sort(key=lambda e: (e[0], e[1]))
    for seq, (when, m, kind, version, env, payload) in enumerate(lifecycle, start=1):
        # A version's events came with the commit that added it; other edits, with one of
        # the model's commits: so a model's history names up to `versions` commits.
        v = int(version.split(".")[1]) if version else seq % workload.versions
        yield {"id": hashlib.sha256(f"e{seq}".encode()).hexdigest(), "repository_id": repo_id,
               "seq": seq, "commit_sha": _sha("v", m, v), "event_type": kind, "kind": "Model",
               "name": model_name(m), "version": version, "environment": env,
               "actor_name": f"Author {m % 37}", "actor_email": f"a{m % 37}@example.com",
               "occurred_at": when, "payload": payload, "prev_hash": "0" * 64,
               "hash": f"{random.getrandbits(256):064x}"}

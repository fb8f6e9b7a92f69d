"""The audit commands' questions as SQL over what apply wrote: the registry now, a model's
history, what served when, lineage, who did what, what changed between two moments, metrics
side by side. Read-only; every query filters on an indexed prefix (see bench/audit.py).

Times in and out are naive UTC datetimes (`times` converts what users type). Rows are plain
dicts so that `listing` can print them as a table, JSON or CSV.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Select, and_, func, or_, select, union_all

from reconciler.diagnostics import NotFound, ReconcilerError, printable
from reconciler.events import Event, describe
from reconciler.gcpause import paused_gc
from reconciler.limits import version_order
from reconciler.registry import db, store, tables

if TYPE_CHECKING:
    from reconciler.resolve import Recorded

MODELS = tables.MODELS
VERSIONS = tables.MODEL_VERSIONS
DATASETS = tables.DATASETS
DATASET_VERSIONS = tables.DATASET_VERSIONS
ENVIRONMENTS = tables.ENVIRONMENTS
ASSIGNMENTS = tables.STAGE_ASSIGNMENTS
EVENTS = tables.AUDIT_EVENTS
COMMITS = tables.COMMITS
EDGES = tables.LINEAGE_EDGES
PEOPLE = tables.COMMIT_PEOPLE
CURSOR = tables.RECONCILE_CURSOR

Row = dict[str, Any]
Key = TypeVar("Key", str, tuple[str, str, str])


@contextmanager
def reading(root: str, url: str | None) -> Iterator[tuple[Connection, str]]:
    """A connection to the database of root's registry and the repository's id in it; one
    clear error when there is no database, its schema is behind, or apply never ran."""
    from reconciler.registry.connect import open_registry

    # A query's rows are plain dicts and tuples, freed by reference counting; the cyclic
    # collector would only rescan the whole process while they are made (bench/audit.py,
    # docs/BENCHMARKS.md). The command line runs with it off already; library callers of api
    # get the same.
    with (open_registry(root, url, purpose="read") as database, paused_gc(),
          database.engine.connect() as connection):
        reconciled = connection.execute(select(CURSOR.c.commit_sha).where(
            CURSOR.c.repository_id == database.repo_id)).first()
        if reconciled is None or reconciled[0] is None:
            raise ReconcilerError(f"database {db.redacted(database.url)} has no history of "
                                  f"repository '{database.repository.name}': run "
                                  "`reconciler apply` in it")
        yield connection, database.repo_id


def subject(text: str, depth: int) -> tuple[str, str]:
    """(name, version) of a lineage subject NAME@VERSION, checked with its depth."""
    name, at, version = text.rpartition("@")
    if not at or not name or not version:
        raise ReconcilerError(f"'{printable(text)}' is not MODEL@VERSION")
    if depth < 1:
        raise ReconcilerError("--depth must be 1 or more")
    return name, version


def check_model(connection: Connection, repo_id: str, model: str | None) -> None:
    """Raise NotFound unless model is None or a model the registry has known."""
    _check_name(connection, MODELS, repo_id, "model", model)


def check_environment(connection: Connection, repo_id: str, env: str | None) -> None:
    """Raise NotFound unless env is None or an environment the registry has known."""
    _check_name(connection, ENVIRONMENTS, repo_id, "environment", env)


def _check_name(connection: Connection, table: Any, repo_id: str, what: str,
                name: str | None) -> None:
    if name is None:
        return
    found = connection.execute(select(table.c.name).where(
        table.c.repository_id == repo_id, table.c.name == name)).first()
    if found is None:
        raise NotFound(f"no {what} '{name}' in the registry"
                       f"{_known(connection, table, repo_id)}")


def _known(connection: Connection, table: Any, repo_id: str) -> str:
    names = list(connection.execute(select(table.c.name).where(
        table.c.repository_id == repo_id).order_by(table.c.name).limit(11)).scalars())
    if not names:
        return " (it is empty)"
    return f" (it has {', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"


def show(connection: Connection, repo_id: str, model: str | None, env: str | None
         ) -> list[Row]:
    """Per model: its versions (digest, size, metrics, deprecated) and what each environment
    serves of it now (version, digest, canary and traffic)."""
    check_model(connection, repo_id, model)
    check_environment(connection, repo_id, env)
    # The columns shown and no more: each JSON column is a json.loads per row (params, never
    # shown, was a third of them).
    model_columns = [MODELS.c[name] for name in ("name", "owner", "framework",
                                                 "retired_commit")]
    version_columns = [VERSIONS.c[name] for name in ("model", "version", "digest", "size",
                                                     "metrics", "deprecated", "added_commit",
                                                     "reproduction")]
    models = {row["name"]: row for row in connection.execute(
        _one_or_all(select(*model_columns), MODELS.c.name, repo_id, model)
        .order_by(MODELS.c.name)).mappings()}
    versions: dict[str, list[Row]] = {name: [] for name in models}
    for row in connection.execute(
            _one_or_all(select(*version_columns), VERSIONS.c.model, repo_id, model)
            .where(VERSIONS.c.removed_commit.is_(None))
            .order_by(VERSIONS.c.model, VERSIONS.c.version)).mappings():
        versions[row["model"]].append({
            "version": row["version"], "digest": row["digest"], "size": row["size"],
            "metrics": row["metrics"] or {}, "deprecated": bool(row["deprecated"]),
            "added_commit": row["added_commit"], "reproduction": row["reproduction"]})
    for listed in versions.values():  # 1.10.0 after 1.9.0, as compare orders them
        listed.sort(key=lambda v: version_order(v["version"]))
    serving = _serving_now(connection, repo_id, model, env)
    return [{"model": name, "owner": models[name]["owner"],
             "framework": models[name]["framework"],
             "retired": models[name]["retired_commit"] is not None,
             "versions": versions[name], "serving": serving.get(name, {})} for name in models]


def reconciled_reference(root: str, url: str | None, reference: str
                         ) -> tuple[str, Recorded | None]:
    """For MODEL[@VERSION|@ENV]: the commit the database was last reconciled to and, when ENV
    is an environment it knows, what the database records ENV serves of MODEL now (NotFound
    when it records none)."""
    from reconciler.resolve import Recorded, parse_reference

    model, which = parse_reference(reference)
    with reading(root, url) as (connection, repo_id):
        commit = reconciled_commit(connection, repo_id)
        known = connection.execute(select(ENVIRONMENTS.c.name).where(
            ENVIRONMENTS.c.repository_id == repo_id, ENVIRONMENTS.c.name == which)).first()
        if known is None:
            return commit, None
        check_model(connection, repo_id, model)
        serving = _serving_now(connection, repo_id, model, which).get(model, {}).get(which)
        if serving is None or serving["version"] is None:
            raise NotFound(f"the registry records no version of '{model}' served in '{which}'")
        return commit, Recorded(serving["version"], serving["digest"])


def reconciled_commit(connection: Connection, repo_id: str) -> str:
    """The commit of the registry branch the database was last reconciled to."""
    commit = connection.execute(select(CURSOR.c.commit_sha).where(
        CURSOR.c.repository_id == repo_id)).scalar_one()
    return str(commit).rstrip(" ")


def _one_or_all(query: Select[Any], column: Any, repo_id: str, value: str | None
                ) -> Select[Any]:
    query = query.where(column.table.c.repository_id == repo_id)
    return query if value is None else query.where(column == value)


def _serving_now(connection: Connection, repo_id: str, model: str | None, env: str | None
                 ) -> dict[str, dict[str, Row]]:
    """model -> environment -> what it serves now."""
    query = _assignments().where(ASSIGNMENTS.c.repository_id == repo_id,
                                 ASSIGNMENTS.c.valid_to.is_(None))
    if model is not None:
        query = query.where(ASSIGNMENTS.c.model == model)
    if env is not None:
        query = query.where(ASSIGNMENTS.c.environment == env)
    return _by_model_and_env(connection.execute(query).mappings().all())


def _assignments() -> Select[Any]:
    """Stage assignments with the digest of the version each names (by primary key)."""
    return select(ASSIGNMENTS, VERSIONS.c.digest).outerjoin(VERSIONS, and_(
        VERSIONS.c.repository_id == ASSIGNMENTS.c.repository_id,
        VERSIONS.c.model == ASSIGNMENTS.c.model, VERSIONS.c.version == ASSIGNMENTS.c.version))


def _by_model_and_env(rows: Sequence[Any]) -> dict[str, dict[str, Row]]:
    """Assignment rows folded into model -> environment -> {version, digest, since, canary}."""
    served: dict[str, dict[str, Row]] = {}
    for row in sorted(rows, key=lambda r: (r["model"], r["environment"], r["role"] != "primary")):
        where = served.setdefault(row["model"], {}).setdefault(
            row["environment"], {"version": None, "digest": None, "since": None,
                                 "commit": None, "canary": None})
        state = {"version": row["version"], "digest": row["digest"],
                 "since": row["valid_from"], "commit": row["valid_from_commit"]}
        if row["role"] == "primary":
            where.update(state)
        else:
            where["canary"] = {**state, "traffic": row["traffic"]}
    return served


def history(connection: Connection, repo_id: str, model: str, env: str | None,
            since: datetime | None, until: datetime | None) -> list[Row]:
    """Every event of a model in order, with its commit: when it landed and was authored, who
    authored and who committed it, and what changed."""
    check_environment(connection, repo_id, env)
    query = _events().where(EVENTS.c.repository_id == repo_id, EVENTS.c.kind == "Model",
                            EVENTS.c.name == model)
    if env is not None:
        query = query.where(EVENTS.c.environment == env)
    rows = _event_rows(connection, repo_id,
                       _between(query, since, until).order_by(EVENTS.c.seq))
    if not rows:  # checked only now: a model with events exists, and most histories have some
        check_model(connection, repo_id, model)
    return rows


def who(connection: Connection, repo_id: str, author: str | None, event_type: str | None,
        since: datetime | None, until: datetime | None) -> list[Row]:
    """Who did what across models: events by author email and type, in order."""
    query = _events().where(EVENTS.c.repository_id == repo_id)
    if author is not None:  # the author of record, or anyone credited with the commit
        credited = select(PEOPLE.c.commit_sha).where(PEOPLE.c.repository_id == repo_id,
                                                     PEOPLE.c.email == author)
        query = query.where(or_(EVENTS.c.actor_email == author,
                                EVENTS.c.commit_sha.in_(credited)))
    if event_type is not None:
        query = query.where(EVENTS.c.event_type == event_type)
    return _event_rows(connection, repo_id,
                       _between(query, since, until).order_by(EVENTS.c.seq))


def _events() -> Select[Any]:
    """The events' shown columns; their commits and people are read apart, by key."""
    # Only the columns shown: PyMySQL decodes every field in Python, and the chain's hashes made
    # a model's history several times slower on MariaDB than on SQLite (bench/audit.py).
    shown = [EVENTS.c[name] for name in ("seq", "occurred_at", "event_type", "kind", "name",
                                         "version", "environment", "actor_name", "actor_email",
                                         "commit_sha", "payload")]
    return select(*shown)


def _between(query: Select[Any], since: datetime | None, until: datetime | None
             ) -> Select[Any]:
    if since is not None:
        query = query.where(EVENTS.c.occurred_at >= since)
    if until is not None:
        query = query.where(EVENTS.c.occurred_at <= until)
    return query


def _event_rows(connection: Connection, repo_id: str, query: Select[Any]) -> list[Row]:
    # Three statements: the events, their commits with the people credited (a join of two
    # key lookups, one round trip), and the repository's history rewrites: fewer round trips
    # than asking for each apart (bench/audit.py).
    rows = []
    results = connection.execute(query).mappings().all()
    commits = _commits(connection, repo_id, {row["commit_sha"] for row in results})
    rewrites = _rewrites(connection, repo_id)
    for row in results:
        event = Event(row["event_type"], row["kind"], row["name"], row["version"],
                      row["environment"], row["payload"] or {})
        commit = commits.get(row["commit_sha"].rstrip(" "), _UNKNOWN_COMMIT)
        by_rewrite = row["seq"] >= rewrites.get(row["commit_sha"].rstrip(" "), row["seq"] + 1)
        rows.append({
            "seq": row["seq"], "landed": row["occurred_at"], "authored": commit.authored_at,
            "author_tz": _zone(commit.author_tz_offset),
            "event": row["event_type"], "model": row["name"], "kind": row["kind"],
            "version": row["version"], "environment": row["environment"],
            # Who the record credits: the commit's author, or for the events of a history
            # rewrite the one who pushed it.
            "change": describe(event), "author": row["actor_name"],
            "author_email": row["actor_email"],
            "committer": commit.committer_name, "commit": row["commit_sha"],
            # A history rewrite's events are recorded at the commit the database rewound to,
            # but are the pusher's (the author of record), not that commit's people.
            "people": {"pusher": [{"name": row["actor_name"], "email": row["actor_email"]}]}
            if by_rewrite else commit.people,
            "payload": row["payload"] or {}})
    return rows


def _rewrites(connection: Connection, repo_id: str) -> dict[str, int]:
    """commit -> seq of the first history rewrite recorded at it (events from there on at
    that commit are the rewrite's). One per force push: few, read from an index."""
    first = func.min(EVENTS.c.seq)
    return {sha.rstrip(" "): seq for sha, seq in connection.execute(
        select(EVENTS.c.commit_sha, first).where(
            EVENTS.c.repository_id == repo_id, EVENTS.c.event_type == "history.rewritten")
        .group_by(EVENTS.c.commit_sha))}


class _Commit(NamedTuple):
    authored_at: datetime | None
    author_tz_offset: int | None
    committer_name: str | None
    people: dict[str, list[dict[str, str]]]  # role -> [{name, email}] (people.credited)


_UNKNOWN_COMMIT = _Commit(None, None, None, {})


def _commits(connection: Connection, repo_id: str, commits: set[str]) -> dict[str, _Commit]:
    """commit -> when it was authored, in what zone, its committer and the people credited
    with it, in the order they were credited; by primary key, in one statement per batch."""
    found: dict[str, _Commit] = {}
    for batch in _batches(commits):
        for row in connection.execute(
                select(COMMITS.c.sha, COMMITS.c.authored_at, COMMITS.c.author_tz_offset,
                       COMMITS.c.committer_name, PEOPLE.c.role, PEOPLE.c.name, PEOPLE.c.email)
                .outerjoin(PEOPLE, and_(PEOPLE.c.repository_id == COMMITS.c.repository_id,
                                        PEOPLE.c.commit_sha == COMMITS.c.sha))
                .where(COMMITS.c.repository_id == repo_id, COMMITS.c.sha.in_(batch))
                .order_by(COMMITS.c.sha, PEOPLE.c.position)):
            sha = row.sha.rstrip(" ")
            if sha not in found:
                found[sha] = _Commit(row.authored_at, row.author_tz_offset, row.committer_name,
                                     {})
            if row.role is not None:
                found[sha].people.setdefault(row.role, []).append(
                    {"name": row.name, "email": row.email})
    return found


def _batches(keys: set[Key], size: int = store.BATCH_ROWS) -> Iterator[list[Key]]:
    """keys, sorted, in lists small enough for one statement (docs/ARCHITECTURE.md, rule 5)."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def _zone(minutes: int | None) -> str | None:
    """Minutes east of UTC as git writes a zone, +02:00 (None: not recorded)."""
    if minutes is None:
        return None
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def served_at(connection: Connection, repo_id: str, when: datetime, env: str | None,
              model: str | None) -> list[Row]:
    """What each environment served at a moment: one row per (environment, model)."""
    check_model(connection, repo_id, model)
    check_environment(connection, repo_id, env)
    query = _assignments().where(
        ASSIGNMENTS.c.repository_id == repo_id, ASSIGNMENTS.c.valid_from <= when,
        or_(ASSIGNMENTS.c.valid_to.is_(None), ASSIGNMENTS.c.valid_to > when))
    if env is not None:
        query = query.where(ASSIGNMENTS.c.environment == env)
    if model is not None:
        query = query.where(ASSIGNMENTS.c.model == model)
    served = _by_model_and_env(connection.execute(query).mappings().all())
    return [{"environment": e, "model": m, **state}
            for m, by_env in served.items() for e, state in by_env.items()
            if state["version"] is not None or state["canary"] is not None]


def served_diff(connection: Connection, repo_id: str, first: datetime, second: datetime,
                env: str | None) -> list[Row]:
    """What changed in what was served between two moments: (environment, model) pairs whose
    version or canary differ."""
    before = {(r["environment"], r["model"]): r
              for r in served_at(connection, repo_id, first, env, None)}
    after = {(r["environment"], r["model"]): r
             for r in served_at(connection, repo_id, second, env, None)}
    rows = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if _served_state(old) != _served_state(new):
            rows.append({"environment": key[0], "model": key[1], "before": old, "after": new})
    return rows


def _served_state(row: Row | None) -> tuple[Any, ...]:
    if row is None:
        return (None, None, None)
    canary = row["canary"] or {}
    return (row["version"], canary.get("version"), canary.get("traffic"))


def lineage(connection: Connection, repo_id: str, name: str, version: str, *,
            upstream: bool, depth: int) -> list[Row]:
    """The lineage edges reachable from name@version, breadth first, up to depth hops:
    upstream (what it was trained on and derived from) or downstream (what derives from it)."""
    kind = _subject_kind(connection, repo_id, name, version)
    frontier, seen, rows = {(kind, name, version)}, {(kind, name, version)}, []
    for hop in range(1, depth + 1):
        if not frontier:
            break
        found = _edges(connection, repo_id, frontier, upstream)
        frontier = set()
        for edge in found:
            nxt = ((edge["source_kind"], edge["source_name"], edge["source_version"]) if upstream
                   else ("Model", edge["target_name"], edge["target_version"]))
            rows.append({"depth": hop, "source_kind": edge["source_kind"],
                         "source": f"{edge['source_name']}@{edge['source_version']}",
                         "target": f"{edge['target_name']}@{edge['target_version']}",
                         "via": edge["via"], "commit": edge["commit_sha"]})
            if nxt not in seen:
                seen.add(nxt)
                frontier.add(nxt)
    return rows


def _subject_kind(connection: Connection, repo_id: str, name: str, version: str) -> str:
    for kind, table, column in (("Model", VERSIONS, VERSIONS.c.model),
                                ("Dataset", DATASET_VERSIONS, DATASET_VERSIONS.c.dataset)):
        if connection.execute(select(table.c.version).where(
                table.c.repository_id == repo_id, column == name,
                table.c.version == version)).first() is not None:
            return kind
    raise NotFound(f"no version '{version}' of a model or dataset '{name}' in the registry")


def _edges(connection: Connection, repo_id: str, nodes: set[tuple[str, str, str]],
           upstream: bool) -> list[Row]:
    """The edges into (upstream) or out of (downstream) the nodes, by index, in batches."""
    found: list[Row] = []
    # A dataset version has nothing upstream of it: only model versions are looked up there.
    wanted = {n for n in nodes if n[0] == "Model" or not upstream}
    # SQLite allows at most 500 terms in a compound SELECT (SQLITE_MAX_COMPOUND_SELECT).
    for batch in _batches(wanted, 200):
        # One SELECT per node, sent as one UNION ALL: each is an equality on a whole index
        # prefix, which SQLite plans right with or without statistics. Nodes OR-ed in one
        # WHERE (and an ORDER BY) let it scan the repository's edges instead (bench/audit.py,
        # no sqlite_stat1, as apply leaves it).
        found.extend(dict(row) for row in connection.execute(union_all(*(
            select(EDGES).where(*_edge_match(repo_id, node, upstream))
            for node in batch))).mappings())
    return sorted(found, key=lambda edge: (edge["source_kind"], edge["source_name"],
                                           edge["source_version"], edge["target_name"],
                                           edge["target_version"]))


def _edge_match(repo_id: str, node: tuple[str, str, str], upstream: bool) -> list[Any]:
    kind, name, version = node
    if upstream:
        return [EDGES.c.repository_id == repo_id, EDGES.c.target_name == name,
                EDGES.c.target_version == version]
    return [EDGES.c.repository_id == repo_id, EDGES.c.source_kind == kind,
            EDGES.c.source_name == name, EDGES.c.source_version == version]


def compare(connection: Connection, repo_id: str, model: str, versions: list[str],
            metric: str | None) -> list[Row]:
    """Metrics of a model's versions side by side (deltas against the previous row) and the
    environments that served each, and when."""
    check_model(connection, repo_id, model)
    query = select(VERSIONS).where(VERSIONS.c.repository_id == repo_id, VERSIONS.c.model == model)
    if versions:
        query = query.where(VERSIONS.c.version.in_(versions))
    rows = connection.execute(query.order_by(VERSIONS.c.version)).mappings().all()
    missing = set(versions) - {r["version"] for r in rows}
    if missing:
        raise NotFound(f"model '{model}' has no version {', '.join(sorted(missing))}")
    periods: dict[str, list[Row]] = {}
    for row in connection.execute(select(ASSIGNMENTS).where(
            ASSIGNMENTS.c.repository_id == repo_id, ASSIGNMENTS.c.model == model)
            .order_by(ASSIGNMENTS.c.valid_from, ASSIGNMENTS.c.environment,
                      ASSIGNMENTS.c.role)).mappings():
        periods.setdefault(row["version"], []).append({
            "environment": row["environment"], "role": row["role"],
            "from": row["valid_from"], "until": row["valid_to"]})
    ordered = sorted(rows, key=lambda r: version_order(r["version"]))
    result: list[Row] = []
    previous: dict[str, Any] = {}
    for row in ordered:
        metrics = {k: v for k, v in (row["metrics"] or {}).items()
                   if metric is None or k == metric}
        deltas = {k: v - previous[k] for k, v in metrics.items()
                  if isinstance(v, int | float) and isinstance(previous.get(k), int | float)}
        result.append({"version": row["version"], "digest": row["digest"], "metrics": metrics,
                       "deltas": deltas, "served": periods.get(row["version"], [])})
        previous = row["metrics"] or {}
    return result


class Registry(NamedTuple):
    """Everything the registry's pages show, read at once (the site): the rows `show` gives,
    every serving period, lineage edge, dataset version, environment and model event."""

    models: list[Row]  # as show gives them
    periods: list[Row]  # stage assignments, oldest first
    edges: list[Row]
    datasets: dict[str, list[Row]]  # dataset -> its versions
    environments: list[Row]
    events: list[Row]  # every model event, in chain order, as history gives them
    commit: str  # where the database was last reconciled
    descriptions: dict[str, str]  # model -> its description, where it has one
    subjects: dict[str, str]  # commit -> the first line of its message
    dataset_descriptions: dict[str, str]  # dataset -> its description, where it has one


def whole_registry(connection: Connection, repo_id: str) -> Registry:
    """The whole registry in a few statements, for pages of every model, environment and
    dataset (a query per page would be thousands of round trips)."""
    periods = [dict(row) for row in connection.execute(
        _assignments().where(ASSIGNMENTS.c.repository_id == repo_id)
        .order_by(ASSIGNMENTS.c.valid_from, ASSIGNMENTS.c.model, ASSIGNMENTS.c.environment))
        .mappings()]
    edges = [dict(row) for row in connection.execute(select(EDGES).where(
        EDGES.c.repository_id == repo_id).order_by(EDGES.c.target_name, EDGES.c.target_version,
                                                    EDGES.c.source_name)).mappings()]
    datasets: dict[str, list[Row]] = {
        name: [] for name in connection.execute(select(DATASETS.c.name).where(
            DATASETS.c.repository_id == repo_id).order_by(DATASETS.c.name)).scalars()}
    for row in connection.execute(select(DATASET_VERSIONS).where(
            DATASET_VERSIONS.c.repository_id == repo_id,
            DATASET_VERSIONS.c.removed_commit.is_(None))).mappings():
        datasets.setdefault(row["dataset"], []).append(dict(row))
    for listed in datasets.values():
        listed.sort(key=lambda v: version_order(v["version"]))
    environments = [dict(row) for row in connection.execute(select(ENVIRONMENTS).where(
        ENVIRONMENTS.c.repository_id == repo_id).order_by(ENVIRONMENTS.c.name)).mappings()]
    events = _event_rows(connection, repo_id, _events().where(
        EVENTS.c.repository_id == repo_id, EVENTS.c.kind == "Model",
        EVENTS.c.event_type.not_in(store.RENDER_EVENTS)).order_by(EVENTS.c.seq))
    descriptions = {name: text for name, text in connection.execute(
        select(MODELS.c.name, MODELS.c.description).where(
            MODELS.c.repository_id == repo_id, MODELS.c.description.is_not(None)))}
    dataset_descriptions = {name: text for name, text in connection.execute(
        select(DATASETS.c.name, DATASETS.c.description).where(
            DATASETS.c.repository_id == repo_id, DATASETS.c.description.is_not(None)))}
    subjects = {sha.rstrip(" "): (message or "").split("\n", 1)[0] for sha, message in
                connection.execute(select(COMMITS.c.sha, COMMITS.c.message).where(
                    COMMITS.c.repository_id == repo_id))}
    return Registry(show(connection, repo_id, None, None), periods, edges, datasets,
                    environments, events, reconciled_commit(connection, repo_id),
                    descriptions, subjects, dataset_descriptions)

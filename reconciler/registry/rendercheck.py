"""The renders half of the tamper check: what the database says was rendered, against the
hash chain and against rendering the recorded commits again.

apply records the configs it rendered at the commit it stopped at as changes (render.recorded,
render.removed), so after the render events of a commit the recorded state is exactly what
rendering that commit gives. Rendering each such commit again (and the cursor commit, whose
renders are written with the cursor's move) therefore catches a digest forged with the chain
recomputed, and render events deleted from the chain's tail with the cursor moved back.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from reconciler import __version__
from reconciler.diagnostics import ReconcilerError, printable
from reconciler.git.history import GitHistory
from reconciler.registry import store, tables


class Problem(NamedTuple):
    """Where the database stops matching what it should be."""

    where: str
    message: str


class RecordedRender(NamedTuple):
    """A config as the chain last recorded it, and which release of reconciler rendered it."""

    path: str
    digest: str
    renderer: str | None


Renders = dict[tuple[str, str], RecordedRender]  # (environment, model) -> the recorded config


class _RenderEvent(NamedTuple):
    commit: str
    removed: bool
    key: tuple[str, str]
    render: RecordedRender


def table_against_chain(engine: Engine, repo_id: str) -> list[Problem]:
    """The renders table against the render.recorded events of the (verified) chain."""
    renders, events = tables.RENDERS, tables.AUDIT_EVENTS
    with engine.connect() as connection:
        rows = {(r.commit_sha, r.environment, r.model, r.path, r.digest.rstrip(" "))
                for r in connection.execute(select(renders).where(
                    renders.c.repository_id == repo_id))}
        chained = set()
        for event in connection.execute(select(events).where(
                events.c.repository_id == repo_id, events.c.event_type == store.RENDER_EVENT)):
            payload = _payload(event.payload)
            chained.add((event.commit_sha.rstrip(" "), event.environment, event.name,
                         payload.get("path"), payload.get("digest")))
    missing, extra = chained - rows, rows - chained
    if missing or extra:
        return [Problem("renders", f"{len(missing)} rows missing and {len(extra)} unexpected, "
                                   "compared with the render.recorded events of the chain")]
    return []


def chain_against_git(root: str, engine: Engine, repo_id: str, cursor_commit: str
                      ) -> list[Problem]:
    """Render every commit the chain records renders at, and the cursor commit, again: the
    recorded state after each must be what rendering it gives. The first difference only."""
    history = GitHistory(root)
    recorded: Renders = {}
    last_commit = None
    for commit, events in groupby(_render_events(engine, repo_id), key=lambda e: e.commit):
        for event in events:
            if event.removed:
                recorded.pop(event.key, None)
            else:
                recorded[event.key] = event.render
        problems = _compare(root, history, commit, recorded, stopped_here=True)
        if problems:
            return problems
        last_commit = commit
    if cursor_commit != last_commit:
        # The cursor's move wrote its renders' changes, or there were none: the state recorded
        # before must be what the cursor commit renders (unless it rendered nothing then).
        return _compare(root, history, cursor_commit, recorded, stopped_here=False)
    return []


def _render_events(engine: Engine, repo_id: str) -> list[_RenderEvent]:
    events = tables.AUDIT_EVENTS
    with engine.connect() as connection:
        rows = connection.execute(select(
            events.c.commit_sha, events.c.event_type, events.c.environment, events.c.name,
            events.c.payload).where(events.c.repository_id == repo_id,
                                    events.c.event_type.in_(store.RENDER_EVENTS))
            .order_by(events.c.seq)).all()
    found = []
    for row in rows:
        payload = _payload(row.payload)
        renderer = payload.get(store.RENDERER_KEY)
        found.append(_RenderEvent(
            row.commit_sha.rstrip(" "), row.event_type == store.RENDER_REMOVED,
            (row.environment or "", row.name),
            RecordedRender(str(payload.get("path")), str(payload.get("digest")),
                           renderer if isinstance(renderer, str) else None)))
    return found


def _compare(root: str, history: GitHistory, commit: str, recorded: Renders,
             stopped_here: bool) -> list[Problem]:
    rendered = _render(root, history, commit, stopped_here)
    if rendered is None:  # it does not render: apply recorded nothing there either
        if not stopped_here:
            return []
        return [Problem("renders", f"commit {commit[:12]} has renders recorded, but it does not "
                                   "render now: they cannot be checked")]
    where = f"renders of commit {commit[:12]}"
    wrong = sorted(key for key in set(recorded) | set(rendered)
                   if _path_and_digest(recorded.get(key)) != rendered.get(key))
    if not wrong:
        return []
    environment, model = (printable(name) for name in wrong[0])
    first = recorded.get(wrong[0])
    if first is not None and first.renderer != __version__:
        by = (f"release {printable(first.renderer)}" if first.renderer is not None
              else "an earlier release")
        return [Problem(where, f"{model} in {environment} was rendered by {by} of reconciler, "
                               f"and this one ({__version__}) renders it otherwise: verify "
                               "with that release to check it")]
    missing = sum(1 for key in wrong if key not in recorded)
    return [Problem(where, f"{len(wrong)} configs differ from rendering the commit again "
                           f"({missing} of them not recorded), first {model} in {environment}")]


def _path_and_digest(render: RecordedRender | None) -> tuple[str, str] | None:
    return (render.path, render.digest) if render is not None else None


def _render(root: str, history: GitHistory, commit: str, stopped_here: bool
            ) -> dict[tuple[str, str], tuple[str, str]] | None:
    """(environment, model) -> (path, sha256) of every config the commit renders, as apply
    rendered it (None when it does not render).

    apply moves the cursor only to a commit that passed validate, so it is not run again: a
    third of the time per commit (bench/verify.py). Where renders were recorded they passed
    the schemas too, and are not checked against them again; elsewhere (the cursor commit
    with no change recorded) the schemas decide, as they decided whether apply recorded."""
    from reconciler import catalog as catalog_mod
    from reconciler.gcpause import paused_gc
    from reconciler.render import engine
    from reconciler.source import GitRevision

    if not history.has_commit(commit):
        raise ReconcilerError(
            f"cannot check the renders: commit {printable(commit)}, where apply recorded them, "
            f"is not in this repository: fetch it (git fetch origin {printable(commit)}) and "
            "verify again, or run `reconciler audit verify --chain-only`")
    with paused_gc():
        catalog = catalog_mod.build(GitRevision(root, commit))
        rendered, problems = engine.render_catalog(catalog, validate=not stopped_here)
    if problems:
        return None
    return {(r.environment, r.model): (r.path, r.digest) for r in rendered}


def _payload(stored: Any) -> dict[str, Any]:
    payload = json.loads(stored) if isinstance(stored, str) else stored
    return payload if isinstance(payload, dict) else {}

"""One commit's change as apply writes it: its events, with the rows of the entities they create
or update. Plain data: `replay` computes batches (maybe in a forked process, which pickles
them) and `registry/store` writes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only names in annotations: importing them would load the parser and models
    from reconciler.catalog import Snapshot
    from reconciler.events import Event
    from reconciler.git.objects import CommitInfo
    from reconciler.git.people import Person


@dataclass(frozen=True)
class CommitBatch:
    """One commit's events, with the entity values they need (plain data: it may be pickled
    from the process that computes batches to the one that writes them)."""

    info: CommitInfo
    events: list[Event]
    entities: dict[tuple[str, str], dict[str, Any]]
    actor: tuple[str, str] | None = None  # who to attribute to, when not the commit's author
    # When the events took effect, when not at the commit's own time (a history rewrite).
    landed_at: datetime | None = None
    people: tuple[Person, ...] = ()  # who proposed, merged and reviewed it (people.credited)

    @property
    def when(self) -> datetime:
        """When the events took effect: the commit's committer time unless landed_at."""
        return self.landed_at or self.info.committed_at


def commit_batch(info: CommitInfo, events: list[Event], snapshot: Snapshot,
                 actor: tuple[str, str] | None = None,
                 landed_at: datetime | None = None) -> CommitBatch:
    """A commit's events plus the rows of the entities they create or update, read from the
    snapshot the commit leads to."""
    from reconciler import serving  # here: the read commands load no parser (test_queries)

    entities: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if event.type in ("environment.created", "environment.updated"):
            env = snapshot.environments[event.name]
            entities[("Environment", event.name)] = {
                # NOT NULL columns: a stage that deploys nothing has "" for both.
                "namespace": env.spec.namespace or "", "target": env.spec.target or "",
                "spec": serving.environment_spec(env)}
        elif event.type in ("dataset.created", "dataset.updated"):
            meta = snapshot.datasets[event.name].metadata
            entities[("Dataset", event.name)] = {"owner": meta.owner,
                                                 "description": meta.description}
        elif event.type in ("model.created", "model.updated"):
            model = snapshot.models[event.name]
            entities[("Model", event.name)] = {
                "framework": model.spec.framework, "owner": model.metadata.owner,
                "description": model.metadata.description,
                "labels": dict(model.metadata.labels) or None}
    return CommitBatch(info, events, entities, actor, landed_at)

"""A GTO registry as GTO reads it: git tags as actions on artifacts, and what they add up to.
Pure: tag names and tag facts in, actions and states out.

The tag forms (GTO's documented conventions; an artifact name's `:` is written `=` in a tag):
`name@vX.Y.Z` registers a version, `name@vX.Y.Z!` deregisters it, `name#stage` and
`name#stage#N` assign a stage, `name#stage!#N` unassigns it, `name@deprecated` deprecates the
artifact. Any other tag is not GTO's and is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

REGISTER, DEREGISTER = "registration", "deregistration"
ASSIGN, UNASSIGN, DEPRECATE = "assignment", "unassignment", "deprecation"
# The order of actions that share a second, as `gto history` lists them.
_PRIORITY = {REGISTER: 3, DEREGISTER: 4, ASSIGN: 5, UNASSIGN: 6, DEPRECATE: 7}

_NAME = r"[a-zA-Z0-9](?:[a-zA-Z0-9/_-]*[a-zA-Z0-9])?"
_SEMVER = (r"v(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
           r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?")
_TAG = re.compile(
    rf"(?P<artifact>(?:[a-zA-Z0-9._/-]+=)?{_NAME})"
    rf"(?:@(?P<version>{_SEMVER})(?P<version_cancel>!?)"
    rf"|#(?P<stage>{_NAME})(?P<stage_cancel>!?)"
    r"|@(?P<deprecated>deprecated)|@(?P<created>created))"
    r"(?:#(?P<counter>[0-9]{1,9}))?")


class TagName(NamedTuple):
    """What a tag's name says: which artifact, which action, on what."""

    artifact: str
    action: str
    version: str | None
    stage: str | None
    counter: int | None


def parse_tag(name: str) -> TagName | None:
    """The action a GTO tag names, or None for any other tag."""
    match = _TAG.fullmatch(name)
    if match is None or match["created"]:
        return None
    counter = int(match["counter"]) if match["counter"] else None
    artifact = match["artifact"].replace("=", ":")
    if match["version"]:
        action = DEREGISTER if match["version_cancel"] else REGISTER
        return TagName(artifact, action, match["version"], None, counter)
    if match["stage"]:
        action = UNASSIGN if match["stage_cancel"] else ASSIGN
        return TagName(artifact, action, None, match["stage"], counter)
    return TagName(artifact, DEPRECATE, None, None, counter)


class Action(NamedTuple):
    """One tag as an action: what, on which commit, by whom (the tagger; for a lightweight
    tag the commit's author) and when (naive UTC)."""

    tag: str
    name: TagName
    commit: str
    who_name: str
    who_email: str
    when: datetime


def ordered(actions: Iterable[Action]) -> list[Action]:
    """Actions in the order they happened: by time, then as GTO orders one second's."""
    return sorted(actions, key=lambda a: (a.when, _PRIORITY[a.name.action],
                                          a.name.counter or 0, a.tag))


@dataclass
class ArtifactState:
    """An artifact after some actions: its versions (registration order) and commits, the
    deregistered ones, what each stage serves now, and whether it is deprecated."""

    versions: dict[str, str] = field(default_factory=dict)  # version -> registered commit
    deregistered: set[str] = field(default_factory=set)
    # stage -> version -> when it was last assigned there (None: unassigned since)
    assigned: dict[str, dict[str, datetime | None]] = field(default_factory=dict)
    deprecated: bool = False

    def serving(self, stage: str) -> str | None:
        """The version a stage serves: the newest assignment not undone, of a live version."""
        live = [(when, version) for version, when in self.assigned.get(stage, {}).items()
                if when is not None and version not in self.deregistered]
        return max(live)[1] if live and not self.deprecated else None

    def stages(self) -> dict[str, str]:
        """Every stage that serves a version now."""
        served = {stage: self.serving(stage) for stage in sorted(self.assigned)}
        return {stage: version for stage, version in served.items() if version is not None}


def apply_action(state: ArtifactState, action: Action) -> None:
    """Fold one action into an artifact's state."""
    name = action.name
    if name.action == REGISTER and name.version is not None:
        state.versions.setdefault(name.version, action.commit)
        state.deregistered.discard(name.version)
    elif name.action == DEREGISTER and name.version is not None:
        state.deregistered.add(name.version)
    elif name.action in (ASSIGN, UNASSIGN) and name.stage is not None:
        version = _version_of(state, action.commit)
        if version is not None:
            state.assigned.setdefault(name.stage, {})[version] = (
                action.when if name.action == ASSIGN else None)
    elif name.action == DEPRECATE:
        state.deprecated = True


def _version_of(state: ArtifactState, commit: str) -> str | None:
    """The version registered at commit (a stage tag points at its version's commit)."""
    return next((v for v, at in reversed(state.versions.items()) if at == commit), None)


def fold(actions: Iterable[Action]) -> dict[str, ArtifactState]:
    """Every artifact's state after all its actions."""
    states: dict[str, ArtifactState] = {}
    for action in ordered(actions):
        apply_action(states.setdefault(action.name.artifact, ArtifactState()), action)
    return states

"""The registry's policy: what a change is, and whether it may land. Pure: no I/O.

`rules` (the validator) and `diff` (the audit trail) both decide with these functions, so what
validate calls a rollback is what apply records as one, and a gate judges the same numbers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from reconciler import spec

INITIAL, PROMOTION, ROLLBACK = "initial", "promotion", "rollback"


def assignment_kind(order: Sequence[str], before: str | None, after: str) -> str:
    """How a stage moved from version before to after, versions listed oldest first: a first
    assignment is initial, a move back to an earlier version a rollback, any other a promotion."""
    if before is None:
        return INITIAL
    if before in order and after in order and order.index(after) < order.index(before):
        return ROLLBACK
    return PROMOTION


def served_in(model: spec.Model | None) -> dict[str, set[str]]:
    """version -> the environments that serve it (as their version or their canary)."""
    served: dict[str, set[str]] = {}
    for env_name, stage in (model.spec.stages if model else {}).items():
        served.setdefault(stage.version, set()).add(env_name)
        if stage.canary is not None:
            served.setdefault(stage.canary.version, set()).add(env_name)
    return served


def skips_required_stage(required: str | None, served_in: set[str]) -> bool:
    """Whether a version arrives without serving, at the base, where the environment requires
    first (`promotion.from`). Not yet a violation: a version that served there earlier, or a
    return to one this environment served earlier (a rollback), is exempt, and only the
    registry branch's history can tell (servinghistory), whatever order the versions are
    listed in."""
    return required is not None and required not in served_in


# ">= 0.9": an operator and a number, with optional spaces.
_REQUIREMENT = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)\s*")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
    ">": operator.gt, "<": operator.lt}


class Requirement(NamedTuple):
    """One metric requirement of an environment, e.g. auc >= 0.9."""

    metric: str
    op: str
    threshold: float


def requirement(metric: str, expression: str) -> Requirement | None:
    """The requirement an expression states, or None when it is not understood (POL003)."""
    match = _REQUIREMENT.fullmatch(expression)
    return Requirement(metric, match.group(1), float(match.group(2))) if match else None


def unmet(required: dict[str, str], metrics: dict[str, float]
          ) -> list[tuple[Requirement, float | None]]:
    """The requirements metrics do not meet, each with the value found (None: missing)."""
    failing = []
    for metric, expression in sorted(required.items()):
        wanted = requirement(metric, expression)
        if wanted is None:
            continue  # reported as POL003 where the environment states it
        value = metrics.get(metric)
        if value is None or not _COMPARE[wanted.op](value, wanted.threshold):
            failing.append((wanted, value))
    return failing


def landed_metrics(landed: Sequence[spec.ModelVersion], current: Sequence[spec.ModelVersion]
                   ) -> dict[str, dict[str, float]]:
    """Each version's metrics as a gate judges them: what it had when it landed (an edit of a
    landed version does not pass a gate), and a new version's own."""
    before = {v.version: v.metrics for v in landed}
    return {v.version: before.get(v.version, v.metrics) for v in current}


class Violation(NamedTuple):
    """A version arriving in an environment against its promotion policy."""

    environment: str
    version: str
    canary: bool  # it arrives as the stage's canary (else as the stage's version)
    rule: str  # POL001: skips the required environment; POL002: a metric falls short
    required_stage: str | None = None  # POL001
    requirement: Requirement | None = None  # POL002
    value: float | None = None  # POL002: what the version has (None: missing)


def violations(before: spec.Model | None, after: spec.Model,
               environments: dict[str, spec.Environment], *,
               base_on_registry: bool = True) -> list[Violation]:
    """Every version the change from before to after brings into an environment whose
    promotion policy it breaks; a version that already served there is not judged again.
    POL001 is judged at the base only: the caller asks the registry branch's history too
    (servinghistory), where a version rolled back since has served, or one this environment
    served before (a rollback) is found. With base_on_registry
    False (the base is a commit of a pull request's own branch), what the base serves proves
    nothing, and every arrival is left for that history to judge."""
    served_before = served_in(before)
    metrics = landed_metrics(before.spec.versions if before else [], after.spec.versions)
    found = []
    for env_name, stage in sorted(after.spec.stages.items()):
        env = environments.get(env_name)
        promotion = env.spec.promotion if env else None
        if promotion is None:
            continue
        arriving = [(stage.version, False)] + ([(stage.canary.version, True)]
                                               if stage.canary else [])
        for version, canary in arriving:
            served = served_before.get(version, set())
            if env_name in served:
                continue  # already served here before this change
            if skips_required_stage(promotion.from_, served if base_on_registry else set()):
                found.append(Violation(env_name, version, canary, "POL001",
                                       required_stage=promotion.from_))
            found += [Violation(env_name, version, canary, "POL002", requirement=wanted,
                                value=value)
                      for wanted, value in unmet(promotion.require_metrics,
                                                 metrics.get(version, {}))]
    return found


def content_changes(landed: spec.ArtifactVersion, now: spec.ArtifactVersion
                    ) -> dict[str, dict[str, Any]]:
    """{field: {"from": landed, "to": now}} for each field of what a version is (its digest,
    artifact, metrics, params, lineage) that changed: none may, once it has landed."""
    before, after = spec.content(landed), spec.content(now)
    return {key: {"from": before[key], "to": after[key]}
            for key in sorted(before) if before[key] != after[key]}

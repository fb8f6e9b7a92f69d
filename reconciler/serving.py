"""What each environment serves: said in the Environment's `serves`, read as the model's stages.

An Environment's file says what it serves (`spec.serves`, model name -> stage), so that a change
of it needs the review of the people who own that file, the environment's approvers
(CODEOWNERS). Everything downstream (the rules, the diff, the renders) reads it as the model's
`spec.stages`, the form it had before: `fold` puts each environment's entries there. A Model
may still say its stages itself (the earlier layout, which history holds and `reconciler
migrate` moves); when both say the same environment, the environment's file wins. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import spec


def served_by(environments: Mapping[str, spec.Environment]) -> dict[str, dict[str, spec.Stage]]:
    """model name -> environment name -> what that environment's file says it serves."""
    found: dict[str, dict[str, spec.Stage]] = {}
    for env_name, env in sorted(environments.items()):
        for model_name, stage in env.spec.serves.items():
            found.setdefault(model_name, {})[env_name] = stage
    return found


def with_stages(model: spec.Model, served: Mapping[str, spec.Stage]) -> spec.Model:
    """model with the stages its environments' files give it (over any it says itself)."""
    if not served:
        return model
    stages = {**model.spec.stages, **served}
    return model.model_copy(update={"spec": model.spec.model_copy(update={"stages": stages})})


def fold(models: Mapping[str, spec.Model], environments: Mapping[str, spec.Environment]
         ) -> dict[str, spec.Model]:
    """Every model with its stages as the environments' files and its own file say them."""
    served = served_by(environments)
    return {name: with_stages(model, served.get(name, {})) for name, model in models.items()}


def environment_spec(env: spec.Environment) -> dict[str, Any]:
    """An Environment's spec as the audit trail records it: all but `serves`, which it records
    as the models' stages (so moving a stage between files changes no record)."""
    return env.spec.model_dump(mode="json", by_alias=True, exclude={"serves"})

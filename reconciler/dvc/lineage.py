"""What a DVC-tracked artifact was made from, followed through `dvc.lock` stage by stage.
Pure: outputs in, lineage out.

The outs of one stage are the deps of the next, so from the stage that produced a model file
the walk goes up through every stage (a dep inside an output directory leads to the stage that
produced the directory) to the inputs no stage produced: raw data (often brought in by
`dvc import`), code and configuration.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from reconciler.dvc.records import ImportSource, Output
from reconciler.limits import NAME_CHARS

MAX_STAGES = 64  # a walk deeper than any real pipeline: dvc.lock is the pull request's text


class Upstream(NamedTuple):
    """An input the artifact was made from: its path and digest, the stages between it and
    the artifact (nearest the input first), and its import source if `dvc import` brought it."""

    path: str
    digest: str | None
    stages: tuple[str, ...]
    source: ImportSource | None


def upstream(output: Output, outputs: Mapping[str, Output]) -> Iterator[Upstream]:
    """Every dependency of output's stage and of the stages before it, each once (the
    shortest path of stages wins), nearest first."""
    if output.lineage is None:
        return
    seen: set[tuple[str, str | None]] = set()
    # Each stage is walked once: thousands of deps inside one folder output all lead to the
    # stage that produced it, which would otherwise be walked once per dep (quadratic).
    walked = {(output.recorded_in, output.path)}
    frontier: list[tuple[Output, tuple[str, ...]]] = [(output, ())]
    while frontier:
        following: list[tuple[Output, tuple[str, ...]]] = []
        for current, after in frontier:
            assert current.lineage is not None
            stages = (current.lineage.stage, *after)
            for dep in current.lineage.deps:
                if (dep.path, dep.digest) in seen:
                    continue
                seen.add((dep.path, dep.digest))
                producer = producer_of(dep.path, outputs.get)
                yield Upstream(dep.path, dep.digest, stages,
                               producer.source if producer is not None else None)
                if (producer is not None and producer.lineage is not None
                        and (producer.recorded_in, producer.path) not in walked
                        and len(stages) < MAX_STAGES):
                    walked.add((producer.recorded_in, producer.path))
                    following.append((producer, stages))
        frontier = following


def producer_of(path: str, lookup: Callable[[str], Output | None]) -> Output | None:
    """The output DVC records for path, or for the directory output that holds it."""
    while path and path != ".":
        found = lookup(path)
        if found is not None:
            return found
        path = posixpath.dirname(path)
    return None


def via(lock_path: str, stages: tuple[str, ...]) -> str:
    """How an edge was found, as lineage_edges.via records it: `dvc.lock:prepare>train`."""
    text = f"{lock_path}:{'>'.join(stages)}"
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 3] + "..."  # a VARCHAR


def reproduction(output: Output) -> dict[str, Any] | None:
    """What reproducing a version takes, as dvc.lock records it when the version lands: the
    producing stage, its command, its params as locked, and every dependency's digest (code,
    configuration, data)."""
    stage = output.lineage
    if stage is None:
        return None
    return {"lockFile": stage.lock_path, "stage": stage.stage, "cmd": stage.cmd,
            "params": stage.params,
            "deps": [{"path": dep.path, "digest": dep.digest} for dep in stage.deps]}

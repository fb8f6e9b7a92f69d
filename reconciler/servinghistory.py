"""Whether an environment served a version at some moment of the registry branch's history.

`promotion.from: staging` means "must have served in staging", at any commit of the registry
branch's first-parent history before, not only at the base of the change: a version rolled
back in staging has served there, and one that served only on a pull request's own branch has
not. Only the commits whose change to the files that say it (the Environment's file, and the
Model's for the earlier layout) adds or removes a line naming the version or the model can
start such a moment (`git log -G`), so only their files are read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator
from contextlib import closing
from dataclasses import replace

from reconciler import loader, spec
from reconciler.events import Event
from reconciler.git.plumbing import ChangedFile, commits_changing, read_small_blobs
from reconciler.limits import MAX_FILE_BYTES
from reconciler.paths import MANIFEST_DIR, is_manifest_path, unreadable_name

# What POSIX extended regular expressions (git log -G) read as other than the character: each
# is put in a bracket expression, where it is literal, except these two.
_ERE_SPECIAL = re.compile(r"[.$|?*+()\[\]{}]")
_ERE_ESCAPED = {"^": "\\^", "\\": "\\\\"}


def _literal(text: str) -> str:
    """An extended regular expression matching text itself."""
    return "".join(_ERE_ESCAPED.get(c) or (f"[{c}]" if _ERE_SPECIAL.fullmatch(c) else c)
                   for c in text)


# Commits whose changed files are read at once: a version that served recently (a rollback)
# is found in the first batch, and git is stopped there (bench/promotion.py).
BATCH_COMMITS = 64


# plan asks twice for one violation (its rules, and the events diff made): one search each.
@functools.lru_cache(maxsize=256)
def served_earlier(root: str, rev: str, model: str, environments: tuple[str, ...],
                   version: str) -> bool:
    """Whether one of environments served version of model (as its version or its canary)
    at some commit of rev's first-parent history, as its manifests said it then."""
    if any(ord(c) < 32 for c in model + version):
        return False  # no manifest line holds it
    pattern = f"{_literal(version)}|{_literal(model)}"
    with closing(_batches(root, rev, pattern)) as batches:
        return any(_any_served(root, batch, model, environments, version) for batch in batches)


def _batches(root: str, rev: str, pattern: str | None) -> Generator[list[ChangedFile], None, None]:
    """The manifests each first-parent commit of rev's history changed (with pattern, in a
    line matching it) and left in place, newest first, BATCH_COMMITS commits at a time: each
    batch is read in one round trip, and git stops when the consumer does."""
    batch: list[ChangedFile] = []
    commits, last = 0, ""
    with closing(commits_changing(root, rev, [MANIFEST_DIR], pattern)) as changes:
        for changed in changes:
            if changed.commit != last:
                commits, last = commits + 1, changed.commit
                if commits > BATCH_COMMITS:
                    yield batch
                    batch, commits = [], 1
            if _readable(changed):
                batch.append(changed)
    yield batch


def _readable(changed: ChangedFile) -> bool:
    """Whether a changed file is a manifest a commit left in place, read as the catalog reads
    one (a name that is not plain UTF-8 is refused there, so it says nothing here)."""
    return (changed.blob is not None and is_manifest_path(changed.path)
            and not unreadable_name(changed.path))


def _any_served(root: str, changed: list[ChangedFile], model: str,
                environments: tuple[str, ...], version: str) -> bool:
    """Whether one of the files says one of environments served version of model, the newest
    first; a file that does not name both is not parsed."""
    blobs = read_small_blobs(root, [c.blob for c in changed if c.blob], MAX_FILE_BYTES)
    needles = (version.encode("utf-8"), model.encode("utf-8"))
    for file in changed:
        raw = blobs.get(file.blob or "")
        if raw is not None and all(needle in raw for needle in needles) and any(
                version in (stage.version, stage.canary.version if stage.canary else None)
                for stage in _stages_said(file.path, raw, model, environments)):
            return True
    return False


def _stages_said(path: str, raw: bytes, model: str,
                 environments: tuple[str, ...]) -> list[spec.Stage]:
    """The stages the file gives model in environments: an Environment's `serves` entry, or
    the Model's own `stages` (the earlier layout); none from a file that does not load."""
    stages: list[spec.Stage | None] = []
    for document in loader.load(path, raw).documents:
        manifest = spec.parse(document.data)
        if isinstance(manifest, spec.Environment) and manifest.metadata.name in environments:
            stages.append(manifest.spec.serves.get(model))
        elif isinstance(manifest, spec.Model) and manifest.metadata.name == model:
            stages += [manifest.spec.stages.get(env) for env in environments]
    return [stage for stage in stages if stage is not None]


def confirmed(root: str, events: list[Event], known: set[tuple[str, str, str]],
              before: str | None) -> list[Event]:
    """events as history shows them (diff judges at the base only): no POL001 where the
    version served in the required environment, or in this one (a return to it), at some
    moment; and no rollback where this environment never served the version (a promotion,
    listed below the one it replaces). A moment is known ((model, environment, version) in
    known), or found on before's first-parent history (None: nothing before is asked)."""
    found = []
    for event in events:
        if (event.type == "policy.violated" and event.payload.get("rule") == "POL001"
                and event.version is not None and event.environment is not None
                and served(root, known, before, event.name,
                           (str(event.payload["requires"]), event.environment), event.version)):
            continue
        if (event.type == "stage.assigned" and event.payload.get("kind") == "rollback"
                and event.version is not None and event.environment is not None
                and not served(root, known, before, event.name, (event.environment,),
                               event.version)):
            event = replace(event, payload={**event.payload, "kind": "promotion"})
        found.append(event)
    return found


def served(root: str, known: set[tuple[str, str, str]], before: str | None, model: str,
           environments: tuple[str, ...], version: str) -> bool:
    """Whether one of environments served version of model: known ((model, environment,
    version) in known), or found on before's first-parent history (None: nothing asked)."""
    return any((model, env, version) in known for env in environments) or (
        before is not None and served_earlier(root, before, model, environments, version))


def served_before(root: str, rev: str, model: str, env: str, current: str) -> str | None:
    """The version env served of model before current, on rev's first-parent history (what a
    rollback returns to); None when it served no other. Read newest first, a batch of commits
    at a time, each file that changed and names the model parsed once."""
    with closing(_batches(root, rev, None)) as batches:
        for batch in batches:
            found = _other_version(root, batch, model, env, current)
            if found is not None:
                return found
    return None


def _other_version(root: str, changed: list[ChangedFile], model: str, env: str,
                   current: str) -> str | None:
    """The first version other than current that one of the files (newest first) says env
    serves of model."""
    blobs = read_small_blobs(root, [c.blob for c in changed if c.blob], MAX_FILE_BYTES)
    for file in changed:
        raw = blobs.get(file.blob or "")
        if raw is None or model.encode("utf-8") not in raw:
            continue
        for stage in _stages_said(file.path, raw, model, (env,)):
            if stage.version != current:
                return stage.version
    return None

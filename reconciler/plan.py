"""`plan`: what merging a pull request will do, computed as apply and validate compute it.

The changes are apply's own events (`diff` between the merge base and the head, with the
registry branch's history deciding what is a rollback), the violations are validate's own
diagnostics, the approvals are what each changed environment names in `spec.approvers` at the
base, and the config diffs are render's output at both. How a plan reads is report/plan.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError, sort_key
from reconciler.events import Event
from reconciler.gcpause import paused_gc
from reconciler.git.history import GitHistory
from reconciler.git.plumbing import changed_paths, registry_branch
from reconciler.paths import is_dvc_file, is_manifest_path
from reconciler.source import GitRevision, Source, open_source
from reconciler.validate import checks

if TYPE_CHECKING:
    from reconciler.catalog import Catalog
    from reconciler.render.engine import Rendered


class Plan(NamedTuple):
    """A pull request's effect: base and head, violations, changes, approvals, config diffs."""

    base: str
    head: str  # a commit, or "the work tree"
    diagnostics: list[Diagnostic]
    events: list[Event]
    approvals: dict[str, list[str]]  # environment -> who must approve
    render_diffs: dict[str, list[str]]  # environment -> unified diffs of its configs
    metrics: dict[str, dict[str, dict[str, float]]]  # model -> version -> metrics, at head

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)

    @property
    def changed(self) -> bool:
        """Whether merging changes anything in the registry or in what is deployed."""
        return bool(self.events or any(self.render_diffs.values()))


def approvals(events: Sequence[Event], head: Catalog, base: Catalog | None
              ) -> dict[str, list[str]]:
    """Per environment whose serving the events change, who must approve (may be nobody):
    the base's approvers where the environment exists there, as GitHub and GitLab read
    CODEOWNERS from the target branch (a change cannot choose its own reviewers)."""
    approvers = {name: list(e.manifest.spec.approvers)
                 for catalog in (head, base) if catalog is not None
                 for name, e in catalog.environments.items()}
    touched = sorted({e.environment for e in events if e.environment is not None}
                     | {e.name for e in events if e.kind == "Environment"})
    return {env: list(approvers.get(env, [])) for env in touched}



def plan(root: str, *, base: str | None = None, head: str = "HEAD",
         worktree: bool = False) -> Plan:
    """What merging head (or the work tree) into base does: the change from their merge base
    as apply will record it, every violation, the approvals it needs, the config diffs."""
    from reconciler import catalog as catalog_mod
    from reconciler import servinghistory
    from reconciler.diff import diff
    from reconciler.render import engine as render_mod

    history = GitHistory(root)
    base_ref = base or registry_branch(root)
    head_commit = None if worktree else history.resolve(head)
    merge_base = history.merge_base(history.resolve(base_ref), head_commit or "HEAD")
    if merge_base is None:
        raise ReconcilerError(f"{base_ref} and {head_commit or 'the work tree'} share no "
                              "history: nothing to plan against")
    with paused_gc():
        head_source = open_source(root, head_commit)
        base_source = GitRevision(root, merge_base)
        changed = changed_files(root, head_source, base_source)
        current, before, only = plan_catalogs(head_source, base_source, changed)
        before.registry_rev = base_ref
        checked = checks(root, current, before, only, head_commit)
        events = servinghistory.confirmed(root, diff(catalog_mod.snapshot(before),
                                                     catalog_mod.snapshot(current)), set(),
                                          base_ref)
        touched = touched_models(changed, events, current)
        new, problems = render_mod.render_catalog(current, only_models=touched)
        # The base's configs are only compared, and their problems are not this change's.
        old, _ = render_mod.render_catalog(before, only_models=touched, validate=False)
    metrics = {name: {v.version: dict(v.metrics) for v in entry.manifest.spec.versions}
               for name, entry in current.models.items()
               if name in {e.name for e in events if e.kind == "Model"}}
    return Plan(merge_base, head_commit or "the work tree",
                sorted(set(checked.diagnostics + problems), key=sort_key), events,
                approvals(events, current, before), config_diffs(old, new), metrics)


def changed_files(root: str, head: Source, base: GitRevision) -> set[str]:
    """The files that differ between base and head (a commit, or the work tree)."""
    assert base.rev is not None, "a commit"
    changed = set(changed_paths(root, base.rev, head.rev))
    # An untracked file in the work tree is part of the change, which git diff omits.
    changed |= set(head.manifest_paths()) ^ set(base.manifest_paths())
    return changed | (set(head.dvc_paths()) ^ set(base.dvc_paths()))


def changes_every_config(path: str) -> bool:
    """Whether a change to path may change any model's pins or configs: a DVC file, the DVC
    config (remotes) or a template."""
    return path.startswith("templates/") or path == ".dvc/config" or is_dvc_file(path)


def plan_catalogs(head: Source, base: GitRevision, changed: set[str]
                  ) -> tuple[Catalog, Catalog, list[str] | None]:
    """The catalogs at head and base, read as far as the change can matter, and the manifests
    checked in full (None: all of them).

    A change to manifests only is checked as pre-commit checks it: the changed files in full,
    with every Dataset and Environment and, when one of those changed, every model that may
    refer to it. Files the change leaves alone hold at base what they hold at head, so they
    add no change and no error of this change's. A DVC file, template or DVC config may change
    any model, and a Dataset or Environment removed may leave any model dangling: then every
    manifest is read at both, as it is when a model is defined twice. Reading only the change
    roughly halves a plan of a large registry (bench/plan.py, docs/BENCHMARKS.md)."""
    from reconciler import catalog as catalog_mod

    if any(changes_every_config(p) for p in changed):
        return *full_catalogs(head, base), None
    only = sorted(p for p in changed if is_manifest_path(p) and head.exists(p))
    current = catalog_mod.build(head, only)
    before = catalog_mod.build_base(base, current, changed)
    before.dvc = current.dvc  # no DVC file changed: what DVC records is the same at both
    # A model also defined in a file left unread (a duplicate) would be compared with the
    # wrong one of its definitions.
    if (current.scanned_models.keys() & (before.models.keys() | current.models.keys())
            or before.datasets.keys() - current.datasets.keys()
            or before.environments.keys() - current.environments.keys()):
        base.prefetch(None)
        return *full_catalogs(head, base), None
    return current, before, only


def full_catalogs(head: Source, base: Source) -> tuple[Catalog, Catalog]:
    """Every manifest read at head and at base."""
    from reconciler import catalog as catalog_mod

    current = catalog_mod.build(head)
    return current, catalog_mod.build(base, known=current)


def touched_models(changed: set[str], events: list[Event], current: Catalog) -> set[str] | None:
    """The models whose configs may differ between base and head (None: all of them): those
    that changed and those served in an environment that changed."""
    if any(changes_every_config(p) for p in changed):
        return None
    envs = {e.name for e in events if e.kind == "Environment"}
    models = {e.name for e in events if e.kind == "Model"}
    models |= {name for name, entry in current.models.items()
               if envs & set(entry.manifest.spec.stages)}
    return models


def config_diffs(old: list[Rendered], new: list[Rendered]) -> dict[str, list[str]]:
    """Per environment, unified diffs of the configs that change (headers aside)."""
    from reconciler.render.engine import body
    from reconciler.render.folder import unified_diff

    before = {r.path: body(r.text) for r in old}
    after = {r.path: body(r.text) for r in new}
    diffs: dict[str, list[str]] = {}
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) != after.get(path):
            diffs.setdefault(path.split("/", 1)[0], []).append(
                unified_diff(before.get(path), after.get(path), path))
    return diffs

"""Everything the command line does, callable from Python. The CLI only parses and prints.

Each function imports the layers its command needs when it runs: start-up is most of a small
command's time, and an apply with nothing new to do never loads the manifest parser or models.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError, printable, sort_key
from reconciler.extras import require
from reconciler.files import check_writable, write_all, write_atomically
from reconciler.gcpause import paused_gc
from reconciler.git.history import GitHistory
from reconciler.git.plumbing import changed_paths, has_head, registry_branch, staged_deletions
from reconciler.paths import (
    MANIFEST_DIR,
    escapes,
    find_root,
    is_dvc_file,
    is_manifest_path,
    repo_path,
)
from reconciler.source import GitRevision, Source, WorkTree, open_source
from reconciler.times import parse_moment, parse_zone

if TYPE_CHECKING:
    from reconciler.catalog import Catalog, Entry
    from reconciler.listing import Listing
    from reconciler.pin import Edit
    from reconciler.scaffold import InitResult


class Result(NamedTuple):
    """Diagnostics of a run and how many manifest files it checked."""

    diagnostics: list[Diagnostic]
    files: int
    note: str = ""  # something to tell the user that is not a diagnostic

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)


class PinResult(NamedTuple):
    """Files pin rewrote, and diagnostics for what it could not pin."""

    changed: list[str]
    diagnostics: list[Diagnostic]
    files: int


class MigrateResult(NamedTuple):
    """What migrate moved: (model, environment) of each stage, the files it rewrote, or the
    diagnostics that stopped it (then nothing was written)."""

    moved: list[tuple[str, str]]
    changed: list[str]
    diagnostics: list[Diagnostic]


def validate(repo: str = ".", paths: list[str] | None = None, rev: str | None = None,
             base: str | None = None, check_remote: bool = False,
             no_base: bool = False, staged: bool = False) -> Result:
    """Check the manifests of repo (working tree or rev); with paths, just those files. The
    work tree is checked as a change from HEAD (immutability, promotion policy) unless
    no_base, so pre-commit enforces the policy on every commit. staged (the hook): paths are
    what pre-commit passes, none meaning nothing to check, unless the staged change deletes
    a registry file, which may break any manifest: then every one."""
    if check_remote:
        require("validate --check-remote", "dvc")
    root = find_root(repo)
    if staged and rev is None:
        if staged_deletions(root):
            paths = None
        elif not paths:
            return Result([], 0, "")
    if base is None and rev is None and not no_base and has_head(root):
        base = "HEAD"
    with paused_gc():
        return _checked_catalog(root, _only(root, paths), rev, base, check_remote)[1]


def _checked_catalog(root: str, only: list[str] | None, rev: str | None, base: str | None = None,
                     check_remote: bool = False) -> tuple[Catalog, Result]:
    current, base_catalog = _catalogs(root, only, rev, base)
    return current, _checks(root, current, base_catalog, only, rev, check_remote)


def _catalogs(root: str, only: list[str] | None, rev: str | None,
              base: str | None) -> tuple[Catalog, Catalog | None]:
    """The catalog at rev (the work tree when None) and, when base is given, at base."""
    from reconciler import catalog as catalog_mod

    current = catalog_mod.build(open_source(root, rev), only)
    # In paths mode the base needs only the passed files' models and datasets as they were
    # (what immutability and the promotion gates compare): 3 files of 1,000 models checked
    # against HEAD in 0.23 s instead of 0.35 s with the rest read and loaded too (0.19 s with
    # --no-base). Files with the same bytes at both are parsed once.
    base_catalog = (catalog_mod.build(open_source(root, base, only), only, rest=False,
                                      known=current) if base else None)
    if base_catalog is not None:
        base_catalog.registry_rev = _registry_rev(root)
    return current, base_catalog


def _registry_rev(root: str) -> str | None:
    """The registry branch, whose history promotion.from is judged on; None when this
    repository has none of the usual names (then the base's own history is)."""
    try:
        return registry_branch(root)
    except ReconcilerError:
        return None


def _checks(root: str, current: Catalog, base_catalog: Catalog | None, only: list[str] | None,
            rev: str | None, check_remote: bool) -> Result:
    """Every diagnostic of the files checked, against base_catalog when there is one."""
    from reconciler import rules

    found = rules.check_change(current, base_catalog)
    if check_remote:
        found += _remote_check(root, current)
    note = ""
    if only is None and not current.source.manifest_paths():
        note = (f"no manifests under {MANIFEST_DIR}/ "
                f"{'at ' + rev if rev else 'in ' + root}: nothing to check (add Model, Dataset "
                "and Environment specs there as YAML; `reconciler schema` prints their format)")
    return Result(sorted(set(found), key=sort_key), len(current.checked), note)


def _only(root: str, paths: list[str] | None) -> list[str] | None:
    """The manifests to check in full; None (everything) when a DVC file is among the paths,
    since any manifest may pin the artifact it records."""
    if not paths:
        return None
    relative = [repo_path(root, p) for p in paths]
    return None if any(is_dvc_file(p) for p in relative) else relative


def _remote_check(root: str, current: Catalog) -> list[Diagnostic]:
    from reconciler.catalog import versions
    from reconciler.dvc.remotes import missing_from_remote

    pinned = [(entry, index, version.digest)
              for entry in current.versioned() if entry.path in current.checked
              for index, version in enumerate(versions(entry)) if version.digest]
    missing = missing_from_remote(root, sorted({digest for _, _, digest in pinned}))
    return [entry.at(("spec", "versions", index, "digest"), "ART006",
                     f"the DVC remote has no object for {digest}",
                     "run `dvc push` for the revision that produced these bytes")
            for entry, index, digest in pinned if digest in missing]


def pin(repo: str = ".", paths: list[str] | None = None) -> PinResult:
    """Write DVC's digest into each version that is being added and has none pinned."""
    from reconciler import catalog as catalog_mod
    from reconciler import pin as pin_mod

    root = find_root(repo)
    only = _only(root, paths)
    with paused_gc():
        current = catalog_mod.build(WorkTree(root), only)
    edits: dict[str, list[Edit]] = {}
    for entry in current.versioned():
        if entry.path in current.checked:
            for edit in _pin_edits(current, entry):
                edits.setdefault(entry.path, []).append(edit)
    changed = []
    refused = []
    for path, file_edits in sorted(edits.items()):
        # Through a symlink, edit the file it leads to (inside the repository, or the catalog
        # would have refused to read it), so the link stays a link.
        full = os.path.realpath(os.path.join(current.source.root, path))
        with open(full, encoding="utf-8", newline="") as handle:
            original = handle.read()
        edited = pin_mod.apply_edits(original, file_edits)
        if not pin_mod.still_valid(path, edited):
            refused.append(Diagnostic(path, 1, 1, "YML001",
                                      "pin could not edit this file safely; nothing written",
                                      "add the digest by hand"))
            continue
        write_atomically(full, edited)
        changed.append(path)
    # What is still wrong after pinning, checked exactly as validate checks it (as a change
    # from HEAD): a retrain-only commit that validate accepts, pin accepts too.
    _, remaining = _checked_catalog(root, only, None, "HEAD" if has_head(root) else None)
    return PinResult(changed, sorted(set(remaining.diagnostics + refused), key=sort_key),
                     len(current.checked))


def _recorded_fields(current: Catalog, entry: Entry[Any], index: int,
                     output: Any) -> dict[str, Any]:
    """What DVC records for a model version that says none of it: metrics from its stage's
    metrics files, params from dvc.lock (a field the version says is left as it is)."""
    import yaml

    from reconciler import spec
    from reconciler.dvc import metrics as dvcmetrics

    if not isinstance(entry.manifest, spec.Model):
        return {}
    node = entry.doc.node_at(("spec", "versions", index))
    keys = {k.value for k, _ in node.value} if isinstance(node, yaml.MappingNode) else set()
    fields: dict[str, Any] = {}
    metrics = current.recorded_metrics(output)
    if metrics and "metrics" not in keys:
        fields["metrics"] = dict(metrics)
    params = dvcmetrics.recorded_params(output.lineage)
    if params and "params" not in keys:
        fields["params"] = params
    return fields


def _pin_edits(current: Catalog, entry: Entry[Any]) -> list[Edit]:
    from reconciler import pin as pin_mod
    from reconciler.catalog import versions

    listed = versions(entry)
    newest = {version.artifact: index for index, version in enumerate(listed)
              if version.rev is None}
    edits = []
    for path, index in newest.items():
        output = current.output(path)
        if listed[index].digest is None and output is not None:
            fields = _recorded_fields(current, entry, index, output)
            edit = pin_mod.digest_edit(entry.doc, index, "versions", output.digest,
                                       fields=fields)
            if edit is not None:
                edits.append(edit)
    for index, version in enumerate(listed):  # older versions, from the revision each names
        if version.rev is not None and version.digest is None and not escapes(version.artifact):
            try:
                _, output = current.output_at(version.rev, version.artifact)
            except ReconcilerError:
                continue  # validate says so (ART008)
            if output is not None:
                edit = pin_mod.digest_edit(entry.doc, index, "versions", output.digest,
                                           None if version.size is not None else output.size)
                if edit is not None:
                    edits.append(edit)
    return edits


def init(folder: str = ".", *, ci: str = "github", target: str = "kserve",
         force: bool = False, templates: bool = False) -> InitResult:
    """Scaffold a model repository: example manifests, hooks, CI recipes, CODEOWNERS."""
    from reconciler import scaffold as scaffold_mod

    return scaffold_mod.init(folder, ci=ci, target=target, force=force, templates=templates)


class GtoImport(NamedTuple):
    """What `import gto` found and did: manifests (written, or to write), what it left out,
    names it changed to DNS-1123 labels, and the events it imported into the database."""

    manifests: dict[str, str]
    written: list[str]
    skipped: list[str]
    renamed: dict[str, str]
    events: int | None


def migrate(repo: str = ".", *, dry_run: bool = False) -> MigrateResult:
    """Move every Model's stages into its Environments' `serves` (see reconciler.migrate)."""
    from reconciler import migrate as migrate_mod
    from reconciler.files import write_all

    root = find_root(repo)
    with paused_gc():
        moved = migrate_mod.plan_move(migrate_mod.catalog_of(root))
    if isinstance(moved, list):
        return MigrateResult([], [], sorted(moved, key=sort_key))
    if not dry_run:
        write_all([(os.path.join(root, path), text) for path, text in sorted(moved.files.items())])
    return MigrateResult(moved.stages, sorted(moved.files), [])


def import_gto(repo: str = ".", db: str | None = None, *, write: bool = False,
               target: str = "kserve", force: bool = False, history: bool = False
               ) -> GtoImport:
    """Turn the GTO registry of repo into manifests (written with write) and, with history,
    its whole history into the database at db (before the first apply)."""
    if history:
        require("import gto --db", "apply")
    from reconciler.gto import importer as gtoimport

    root = find_root(repo)
    imported = gtoimport.read_registry(
        root, target=target,  # naive UTC, as every time read from git is
        read_at=datetime.now(UTC).replace(microsecond=0, tzinfo=None))
    problems = gtoimport.checked(imported)
    if problems:
        raise ReconcilerError(f"the imported manifests would not validate: {problems[0]}")
    written: list[str] = []
    if write:
        check_writable(root, list(imported.manifests), force=force)
        write_all([(os.path.join(root, path), text)
                   for path, text in sorted(imported.manifests.items())])
        written = sorted(imported.manifests)
    events = None
    if history:
        from reconciler import reconcile

        events = reconcile.import_history(root, db, imported)
    return GtoImport(imported.manifests, written, imported.skipped, imported.renamed, events)


def schema() -> dict[str, Any]:
    """The JSON Schema of manifests (format v1)."""
    from reconciler import spec

    return spec.json_schema()


class ApplyOutcome(NamedTuple):
    """Validation of the target, what apply wrote (None when validation stopped it), and the
    configs rendered at the target (their digests recorded in the database)."""

    validation: Result
    applied: Any  # reconcile.ApplyResult; Any keeps SQLAlchemy out of this module's imports
    rendered: list[str]
    render_problems: list[Diagnostic]


def apply(repo: str = ".", db: str | None = None, to: str = "HEAD", dry_run: bool = False,
          progress: Any = None, out: str | None = None,
          reset_history: bool = False, branch: str | None = None) -> ApplyOutcome:
    """Validate the target revision, reconcile the database with history up to it, then render
    the target's deployment configs and record their digests (written to out when given).
    The target must be on the registry branch (by default the one plan compares with)."""
    require("apply", "apply", "render")
    from reconciler import reconcile

    started = time.perf_counter()
    root = find_root(repo)
    with paused_gc(), reconcile.open_database(root, db, dry_run=dry_run, at=to) as database:
        planned = reconcile.plan(database, to, reset_history=reset_history,
                                 registry_branch=branch or registry_branch(root))
        if planned.walk is None and out is None:  # up to date: no parser, models or templates
            return ApplyOutcome(Result([], 0), reconcile.up_to_date(database, planned), [], [])
        reader = reconcile.start_reader(database, planned) if planned.walk else None
        try:
            from reconciler.render import engine as render_mod

            target, checked = _checked_catalog(root, None, planned.target)
            if not checked.ok:
                return ApplyOutcome(checked, None, [], [])
            rendered, problems = render_mod.render_catalog(target) if not dry_run else ([], [])
            if planned.walk is None:
                applied = reconcile.up_to_date(database, planned)
            else:
                chunks = reader or reconcile.read_history(database, planned, target)
                # Recorded with the cursor's move to the target: only a render that worked.
                renders = None if dry_run or problems else [
                    (r.environment, r.model, r.path, r.digest) for r in rendered]
                applied = reconcile.write(database, planned, chunks, progress, target,
                                          reset_history, renders)
        finally:
            if reader is not None:
                reconcile.close_history(reader)
    applied.seconds = time.perf_counter() - started  # validate, sync, render: all of it
    if dry_run:
        return ApplyOutcome(checked, applied, [], [])
    if problems:
        return ApplyOutcome(checked, applied, [], sorted(problems, key=sort_key))
    if out is not None:
        from reconciler.render import folder as output

        try:
            output.Plan(root, out, rendered, None).write()
        except output.Unsafe as unsafe:
            return ApplyOutcome(checked, applied, [], [_unsafe(root, unsafe)])
    return ApplyOutcome(checked, applied, [r.path for r in rendered], [])


def plan(repo: str = ".", base: str | None = None, head: str = "HEAD",
         worktree: bool = False) -> Any:
    """What merging head (or the work tree) into base does: the change from their merge base
    as apply will record it, every violation, the approvals it needs, the config diffs."""
    require("plan", "render")
    from reconciler import catalog as catalog_mod
    from reconciler import plan as plan_mod
    from reconciler import servinghistory
    from reconciler.diff import diff
    from reconciler.render import engine as render_mod

    root = find_root(repo)
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
        changed = _changed_paths(root, head_source, base_source)
        current, before, only = _plan_catalogs(head_source, base_source, changed)
        before.registry_rev = base_ref
        checked = _checks(root, current, before, only, head_commit, False)
        events = servinghistory.confirmed(root, diff(catalog_mod.snapshot(before),
                                                     catalog_mod.snapshot(current)), set(),
                                          base_ref)
        touched = _touched_models(changed, events, current)
        new, problems = render_mod.render_catalog(current, only_models=touched)
        # The base's configs are only compared, and their problems are not this change's.
        old, _ = render_mod.render_catalog(before, only_models=touched, validate=False)
    # The base's approvers where the environment exists there: GitHub and GitLab read
    # CODEOWNERS from the target branch, so a pull request cannot choose its own reviewers.
    approvers = {name: list(e.manifest.spec.approvers)
                 for catalog in (current, before) for name, e in catalog.environments.items()}
    metrics = {name: {v.version: dict(v.metrics) for v in entry.manifest.spec.versions}
               for name, entry in current.models.items()
               if name in {e.name for e in events if e.kind == "Model"}}
    return plan_mod.Plan(merge_base, head_commit or "the work tree",
                         sorted(set(checked.diagnostics + problems), key=sort_key), events,
                         plan_mod.approvals(events, approvers), _config_diffs(old, new), metrics)


def _changed_paths(root: str, head: Source, base: GitRevision) -> set[str]:
    """The files that differ between base and head (a commit, or the work tree)."""
    assert base.rev is not None, "a commit"
    changed = set(changed_paths(root, base.rev, head.rev))
    # An untracked file in the work tree is part of the change, which git diff omits.
    changed |= set(head.manifest_paths()) ^ set(base.manifest_paths())
    return changed | (set(head.dvc_paths()) ^ set(base.dvc_paths()))


def _changes_every_config(path: str) -> bool:
    """Whether a change to path may change any model's pins or configs: a DVC file, the DVC
    config (remotes) or a template."""
    return path.startswith("templates/") or path == ".dvc/config" or is_dvc_file(path)


def _plan_catalogs(head: Source, base: GitRevision, changed: set[str]
                   ) -> tuple[Catalog, Catalog, list[str] | None]:
    """The catalogs at head and base, read as far as the change can matter, and the manifests
    checked in full (None: all of them).

    A change to manifests only is checked as pre-commit checks it: the changed files in full,
    with every Dataset and Environment and, when one of those changed, every model that may
    refer to it. Files the change leaves alone hold at base what they hold at head, so they
    add no change and no error of this change's. A DVC file, template or DVC config may change
    any model, and a Dataset or Environment removed may leave any model dangling: then every
    manifest is read at both, as it is when a model is defined twice.

    Measured on bench/plan.py (1,000 models, packed), interleaved with every manifest read:
    a PR touching one model 0.81 s against 1.78 s, touching 50 0.92 s against 1.93 s; the
    imports alone take 0.51 s there."""
    from reconciler import catalog as catalog_mod

    if any(_changes_every_config(p) for p in changed):
        return *_full_catalogs(head, base), None
    only = sorted(p for p in changed if is_manifest_path(p) and head.exists(p))
    current = catalog_mod.build(head, only)
    at_base = sorted(p for p in current.read_in_full | changed
                     if is_manifest_path(p) and base.exists(p))
    base.prefetch(at_base)
    before = catalog_mod.build(base, at_base, rest=False, known=current)
    before.dvc = current.dvc  # no DVC file changed: what DVC records is the same at both
    # A model also defined in a file left unread (a duplicate) would be compared with the
    # wrong one of its definitions.
    if (current.scanned_models.keys() & (before.models.keys() | current.models.keys())
            or before.datasets.keys() - current.datasets.keys()
            or before.environments.keys() - current.environments.keys()):
        base.prefetch(None)
        return *_full_catalogs(head, base), None
    return current, before, only


def _full_catalogs(head: Source, base: Source) -> tuple[Catalog, Catalog]:
    from reconciler import catalog as catalog_mod

    current = catalog_mod.build(head)
    return current, catalog_mod.build(base, known=current)


def _touched_models(changed: set[str], events: list[Any], current: Catalog) -> set[str] | None:
    """The models whose configs may differ between base and head (None: all of them): those
    that changed and those served in an environment that changed."""
    if any(_changes_every_config(p) for p in changed):
        return None
    envs = {e.name for e in events if e.kind == "Environment"}
    models = {e.name for e in events if e.kind == "Model"}
    models |= {name for name, entry in current.models.items()
               if envs & set(entry.manifest.spec.stages)}
    return models


def _config_diffs(old: list[Any], new: list[Any]) -> dict[str, list[str]]:
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


def db_upgrade(repo: str = ".", db: str | None = None) -> tuple[str, str]:
    """Migrate the database schema to the newest revision; returns (database, revision)."""
    require("db upgrade", "apply")
    from reconciler.registry import db as database

    root = find_root(repo)
    url = database.database_url(root, db)
    engine = database.open_database(url, migrate=True)
    try:
        return database.shown(url), database.schema_state(engine)[0] or ""
    finally:
        engine.dispose()


def audit_verify(repo: str = ".", db: str | None = None, against_git: bool = True) -> list[Any]:
    """Tamper check of the audit chain, then the database against a rebuild from git."""
    require("audit verify", "apply")
    from reconciler.registry import verify as audit

    return audit.verify(find_root(repo), db, against_git)


def show(repo: str = ".", db: str | None = None, model: str | None = None,
         env: str | None = None, tz: str | None = None) -> Listing:
    """The registry now, from the database: per model its versions and what each
    environment serves; with model, that model's versions in full."""
    require("show", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.show(connection, repo_id, model, env)
    return listing.show_listing(rows, parse_zone(tz), model is not None)


def audit_history(repo: str = ".", db: str | None = None, *, model: str,
                  env: str | None = None, since: str | None = None, until: str | None = None,
                  tz: str | None = None) -> Listing:
    """Every event of a model in order: when, who, which commit, what changed."""
    require("audit history", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    first, last = _moment(since), _moment(until)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.history(connection, repo_id, model, env, first, last)
    return listing.events_listing("audit history", rows, parse_zone(tz))


def audit_who(repo: str = ".", db: str | None = None, *, author: str | None = None,
              event: str | None = None, since: str | None = None, until: str | None = None,
              tz: str | None = None) -> Listing:
    """Who did what across models (by author email, event type, time)."""
    require("audit who", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    first, last = _moment(since), _moment(until)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.who(connection, repo_id, author, event, first, last)
    return listing.events_listing("audit who", rows, parse_zone(tz))


def audit_at(repo: str = ".", db: str | None = None, *, when: str, env: str | None = None,
             model: str | None = None, tz: str | None = None) -> Listing:
    """What each environment served at a moment."""
    require("audit at", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    moment = parse_moment(when)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.served_at(connection, repo_id, moment, env, model)
    return listing.served_listing(rows, parse_zone(tz))


def audit_diff(repo: str = ".", db: str | None = None, *, first: str, second: str,
               env: str | None = None, tz: str | None = None) -> Listing:
    """What changed in what was served between two moments."""
    require("audit diff", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    start, end = parse_moment(first), parse_moment(second)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.served_diff(connection, repo_id, start, end, env)
    return listing.diff_listing(rows, parse_zone(tz))


def audit_lineage(repo: str = ".", db: str | None = None, *, subject: str,
                  downstream: bool = False, depth: int = 5, tz: str | None = None) -> Listing:
    """The lineage of MODEL@VERSION (or DATASET@VERSION): upstream by default, transitive."""
    require("audit lineage", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    name, at, version = subject.rpartition("@")
    if not at or not name or not version:
        raise ReconcilerError(f"'{printable(subject)}' is not MODEL@VERSION")
    if depth < 1:
        raise ReconcilerError("--depth must be 1 or more")
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.lineage(connection, repo_id, name, version, upstream=not downstream,
                               depth=depth)
    return listing.lineage_listing(rows, parse_zone(tz))


def audit_compare(repo: str = ".", db: str | None = None, *, model: str,
                  versions: list[str] | None = None, metric: str | None = None,
                  tz: str | None = None) -> Listing:
    """Metrics of a model's versions side by side, and where and when each served."""
    require("audit compare", "apply")
    from reconciler import listing
    from reconciler.registry import queries

    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.compare(connection, repo_id, model, versions or [], metric)
    return listing.compare_listing(rows, parse_zone(tz))


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_moment(text)


class RenderResult(NamedTuple):
    """What render wrote (or, with check, how the output folder differs), or why it could not."""

    diagnostics: list[Diagnostic]
    files: list[str]        # output files rendered, relative to the output folder
    touched: list[str]      # files written or removed (check: none)
    diffs: list[str]        # check: unified diffs of what is stale

    @property
    def ok(self) -> bool:
        """No errors and, for a check, nothing stale."""
        return not any(d.is_error for d in self.diagnostics) and not self.diffs


def render(repo: str = ".", rev: str | None = None, out: str = "deploy",
           env: str | None = None, check: bool = False) -> RenderResult:
    """Render every environment's deployment configs (validated) into out, or check them."""
    require("render", "render")

    root = find_root(repo)
    with paused_gc():
        return _render(root, rev, out, env, check)


def _render(root: str, rev: str | None, out: str, env: str | None, check: bool
            ) -> RenderResult:
    from reconciler.render import engine as render_mod

    current, checked = _checked_catalog(root, None, rev)
    if not checked.ok:
        return RenderResult(checked.diagnostics, [], [], [])
    if env is not None and env not in current.environments:
        raise ReconcilerError(f"--env: no environment '{env}' (known: "
                              f"{', '.join(sorted(current.environments)) or 'none'})")
    rendered, problems = render_mod.render_catalog(current, env)
    if problems:
        return RenderResult(sorted(problems, key=sort_key), [], [], [])
    from reconciler.render import folder as output

    try:
        plan = output.Plan(root, out, rendered, env)
        files = [item.path for item in plan.rendered]
        if check:
            return RenderResult(checked.diagnostics, files, [], plan.changes())
        return RenderResult(checked.diagnostics, files, plan.write(), [])
    except output.Unsafe as unsafe:
        return RenderResult([_unsafe(root, unsafe)], [], [], [])


def _unsafe(root: str, unsafe: Any) -> Diagnostic:
    """An output.Unsafe as the diagnostic that reports it (where, relative to the repository)."""
    where = os.path.relpath(unsafe.path, root) if unsafe.path.startswith(root) else unsafe.path
    return Diagnostic(where.replace(os.sep, "/"), 1, 1, "RND004", unsafe.message,
                      "remove it from the output folder; render writes only the files it owns")

"""Everything the command line does, callable from Python: one function per command, each with
keyword options, delegating to the one module that does the work. The CLI only parses and
prints; result types live with the modules that make them. Every function raises
ReconcilerError (one line, for the user) for bad input or an unusable environment.

Each function imports the layers its command needs when it runs: start-up is most of a small
command's time, and an apply with nothing new to do never loads the manifest parser or models.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.diagnostics import ReconcilerError as ReconcilerError  # what every function raises
from reconciler.extras import require
from reconciler.paths import find_root
from reconciler.times import parse_moment, parse_zone

if TYPE_CHECKING:
    from reconciler.edit.change import Change
    from reconciler.edit.migrate import MigrateResult
    from reconciler.edit.pin import PinResult
    from reconciler.gto.importer import GtoImport
    from reconciler.plan import Plan
    from reconciler.reconcile import ApplyOutcome
    from reconciler.registry.rendercheck import Problem
    from reconciler.render.deploy import RenderResult
    from reconciler.report.listing import Listing
    from reconciler.resolve import Recorded, Resolved
    from reconciler.scaffold import InitResult
    from reconciler.site.build import SiteResult
    from reconciler.validate import Result


def validate(repo: str = ".", paths: list[str] | None = None, *, rev: str | None = None,
             base: str | None = None, check_remote: bool = False, no_base: bool = False,
             staged: bool = False) -> Result:
    """Check the manifests of repo (working tree or rev); with paths, just those files, as a
    change from base (HEAD by default for the work tree; see reconciler.validate)."""
    if check_remote:
        require("validate --check-remote", "dvc")
    from reconciler import validate as validation

    return validation.validate(find_root(repo), paths, rev=rev, base=base,
                               check_remote=check_remote, no_base=no_base, staged=staged)


def pin(repo: str = ".", paths: list[str] | None = None) -> PinResult:
    """Write DVC's digest into each version that is being added and has none pinned."""
    from reconciler.edit import pin as pinning

    return pinning.pin(find_root(repo), paths)


def init(folder: str = ".", *, ci: str = "github", target: str = "kserve",
         force: bool = False, templates: bool = False) -> InitResult:
    """Scaffold a model repository: example manifests, hooks, CI recipes, CODEOWNERS."""
    from reconciler import scaffold

    return scaffold.init(folder, ci=ci, target=target, force=force, templates=templates)


def migrate(repo: str = ".", *, dry_run: bool = False) -> MigrateResult:
    """Move every Model's stages into its Environments' `serves` (see reconciler.edit.migrate)."""
    from reconciler.edit import migrate as migration

    return migration.migrate(find_root(repo), dry_run=dry_run)


def register(repo: str, model: str, *, artifact: str | None = None, version: str | None = None,
             bump: str = "patch", parent: str | None = None,
             trained_on: list[str] | None = None, description: str | None = None,
             framework: str | None = None, commit: bool = False, dry_run: bool = False
             ) -> Change:
    """Add a version of model pinned to what DVC records for its artifact (digest; metrics and
    params from a dvc.yaml stage); a new model with framework. See reconciler.edit.models."""
    from reconciler.edit import models

    return models.register(find_root(repo), model, artifact=artifact, version=version,
                           bump=bump, parent=parent, trained_on=trained_on,
                           description=description, framework=framework, commit=commit,
                           dry_run=dry_run)


def register_dataset(repo: str, dataset: str, *, artifact: str | None = None,
                     version: str | None = None, bump: str = "patch",
                     description: str | None = None, commit: bool = False,
                     dry_run: bool = False) -> Change:
    """Add a version of dataset pinned to what DVC records for its artifact (a new Dataset
    when there is none)."""
    from reconciler.edit import models

    return models.register_dataset(find_root(repo), dataset, artifact=artifact,
                                   version=version, bump=bump, description=description,
                                   commit=commit, dry_run=dry_run)


def promote(repo: str, model: str, version: str, *, to: str, canary: int | None = None,
            commit: bool = False, dry_run: bool = False) -> Change:
    """Serve version of model in environment `to` (with canary: as its canary, at that
    percent of the traffic), checked before it is written."""
    from reconciler.edit import serving

    return serving.promote(find_root(repo), model, version, to=to, canary=canary,
                           commit=commit, dry_run=dry_run)


def rollback(repo: str, model: str, *, env: str, to: str | None = None, commit: bool = False,
             dry_run: bool = False) -> Change:
    """Serve again, in env, the version of model it served before (or `to`)."""
    from reconciler.edit import serving

    return serving.rollback(find_root(repo), model, env=env, to=to, commit=commit,
                            dry_run=dry_run)


def deprecate(repo: str, model: str, version: str, *, commit: bool = False,
              dry_run: bool = False) -> Change:
    """Mark a version of model deprecated (it may no longer be promoted)."""
    from reconciler.edit import models

    return models.deprecate(find_root(repo), model, version, commit=commit, dry_run=dry_run)


def retire(repo: str, model: str, *, commit: bool = False, dry_run: bool = False) -> Change:
    """Retire model: its Model file is deleted; its history and bytes stay."""
    from reconciler.edit import models

    return models.retire(find_root(repo), model, commit=commit, dry_run=dry_run)


def resolve(model: str, *, env: str | None = None, version: str | None = None,
            repo: str = ".", rev: str = "HEAD", db: str | None = None) -> Resolved:
    """The version of model that env serves (or the version named; neither: the newest) at
    rev: version, digest, size, storage URI and metrics (repo: a folder or a URL). With db,
    at the commit the database was last reconciled to, as the database records env serves."""
    from reconciler import resolve as resolving

    with resolving.repository(repo) as root:
        rev, recorded = _reconciled(root, db, f"{model}@{env}" if env else model, rev)
        return resolving.resolve(root, model, env=env, version=version, rev=rev,
                                 recorded=recorded)


def locate(reference: str, *, repo: str = ".", rev: str = "HEAD",
           db: str | None = None) -> Resolved:
    """What MODEL, MODEL@VERSION or MODEL@ENV names at rev (or, with db, as reconciled), as
    resolve gives it."""
    from reconciler import resolve as resolving

    with resolving.repository(repo) as root:
        rev, recorded = _reconciled(root, db, reference, rev)
        return resolving.locate(root, reference, rev=rev, recorded=recorded)


def get(reference: str, *, out: str | None = None, repo: str = ".", rev: str = "HEAD",
        force: bool = False, db: str | None = None) -> str:
    """Fetch the bytes MODEL, MODEL@VERSION or MODEL@ENV names (at rev, or with db as
    reconciled) into out (default: the artifact's file name here), checked against the
    pinned digest; the path written."""
    from reconciler import resolve as resolving

    with resolving.repository(repo) as root:
        rev, recorded = _reconciled(root, db, reference, rev)
        return resolving.get(root, reference, out=out, rev=rev, force=force, recorded=recorded)


def _reconciled(root: str, db: str | None, reference: str, rev: str
                ) -> tuple[str, Recorded | None]:
    """rev, or with db the commit the database was reconciled to and what it records."""
    if db is None:
        return rev, None
    if rev != "HEAD":
        raise ReconcilerError("--rev and --db each say which revision to read: give one")
    require("get --db", "apply")
    from reconciler.registry import queries

    return queries.reconciled_reference(root, db, reference)


def site(repo: str = ".", db: str | None = None, *, out: str = "site",
         commit_url: str | None = None) -> SiteResult:
    """Build the registry's static pages from the database into out (relative to the
    repository), replacing a site built there before whole."""
    require("site", "apply")
    from reconciler.site import build

    root = find_root(repo)
    return build.build(root, db, os.path.join(root, out), commit_url=commit_url)


def import_gto(repo: str = ".", db: str | None = None, *, write: bool = False,
               target: str | None = None, force: bool = False, history: bool = False
               ) -> GtoImport:
    """Turn the GTO registry of repo into manifests (written with write) and, with history,
    its whole history into the database at db (before the first apply)."""
    if history:
        require("import gto --db", "apply")
    from reconciler.gto import importer

    return importer.import_registry(find_root(repo), db, write=write, target=target,
                                    force=force, history=history)


def schema() -> dict[str, object]:
    """The JSON Schema of manifests (format v1)."""
    from reconciler import spec

    return spec.json_schema()


def apply(repo: str = ".", db: str | None = None, *, to: str = "HEAD", dry_run: bool = False,
          progress: Callable[[int, int], None] | None = None, out: str | None = None,
          reset_history: bool = False, branch: str | None = None) -> ApplyOutcome:
    """Validate the target revision, reconcile the database with history up to it, then render
    the target's deployment configs and record their digests (written to out when given).
    The target must be on the registry branch (by default the one plan compares with)."""
    require("apply", "apply", "render")
    from reconciler import reconcile

    return reconcile.apply(find_root(repo), db, to=to, dry_run=dry_run, progress=progress,
                           out=out, reset_history=reset_history, branch=branch)


def plan(repo: str = ".", *, base: str | None = None, head: str = "HEAD",
         worktree: bool = False) -> Plan:
    """What merging head (or the work tree) into base does: the change from their merge base
    as apply will record it, every violation, the approvals it needs, the config diffs."""
    require("plan", "render")
    from reconciler import plan as planning

    return planning.plan(find_root(repo), base=base, head=head, worktree=worktree)


def render(repo: str = ".", *, rev: str | None = None, out: str = "deploy",
           env: str | None = None, check: bool = False) -> RenderResult:
    """Render every environment's deployment configs (validated) into out, or check them."""
    require("render", "render")
    from reconciler.render import deploy

    return deploy.render(find_root(repo), rev=rev, out=out, env=env, check=check)


def db_upgrade(repo: str = ".", db: str | None = None) -> tuple[str, str]:
    """Migrate the database schema to the newest revision; returns (database, revision)."""
    require("db upgrade", "apply")
    from reconciler.registry import db as database

    return database.upgrade_database(find_root(repo), db)


def audit_verify(repo: str = ".", db: str | None = None, *, against_git: bool = True
                 ) -> list[Problem]:
    """Tamper check of the audit chain, then the database against a rebuild from git."""
    require("audit verify", "apply")
    from reconciler.registry import verify

    return verify.verify(find_root(repo), db, against_git)


def show(repo: str = ".", db: str | None = None, *, model: str | None = None,
         env: str | None = None, tz: str | None = None) -> Listing:
    """The registry now, from the database: per model its versions and what each
    environment serves; with model, that model's versions in full."""
    require("show", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.show(connection, repo_id, model, env)
    return listing.show_listing(rows, parse_zone(tz), model is not None)


def audit_history(repo: str = ".", db: str | None = None, *, model: str,
                  env: str | None = None, since: str | None = None, until: str | None = None,
                  tz: str | None = None) -> Listing:
    """Every event of a model in order: when, who, which commit, what changed."""
    require("audit history", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    first, last = _moment(since), _moment(until)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.history(connection, repo_id, model, env, first, last)
    return listing.events_listing("audit history", rows, parse_zone(tz))


def audit_who(repo: str = ".", db: str | None = None, *, author: str | None = None,
              event: str | None = None, since: str | None = None, until: str | None = None,
              tz: str | None = None) -> Listing:
    """Who did what across models (by author email, event type, time)."""
    require("audit who", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    first, last = _moment(since), _moment(until)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.who(connection, repo_id, author, event, first, last)
    return listing.events_listing("audit who", rows, parse_zone(tz))


def audit_at(repo: str = ".", db: str | None = None, *, when: str, env: str | None = None,
             model: str | None = None, tz: str | None = None) -> Listing:
    """What each environment served at a moment."""
    require("audit at", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    moment = parse_moment(when)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.served_at(connection, repo_id, moment, env, model)
    return listing.served_listing(rows, parse_zone(tz))


def audit_diff(repo: str = ".", db: str | None = None, *, first: str, second: str,
               env: str | None = None, tz: str | None = None) -> Listing:
    """What changed in what was served between two moments."""
    require("audit diff", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    start, end = parse_moment(first), parse_moment(second)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.served_diff(connection, repo_id, start, end, env)
    return listing.diff_listing(rows, parse_zone(tz))


def audit_lineage(repo: str = ".", db: str | None = None, *, subject: str,
                  downstream: bool = False, depth: int = 5, tz: str | None = None) -> Listing:
    """The lineage of MODEL@VERSION (or DATASET@VERSION): upstream by default, transitive."""
    require("audit lineage", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    name, version = queries.subject(subject, depth)
    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.lineage(connection, repo_id, name, version, upstream=not downstream,
                               depth=depth)
    return listing.lineage_listing(rows, parse_zone(tz))


def audit_compare(repo: str = ".", db: str | None = None, *, model: str,
                  versions: list[str] | None = None, metric: str | None = None,
                  tz: str | None = None) -> Listing:
    """Metrics of a model's versions side by side, and where and when each served."""
    require("audit compare", "apply")
    from reconciler.registry import queries
    from reconciler.report import listing

    with queries.reading(find_root(repo), db) as (connection, repo_id):
        rows = queries.compare(connection, repo_id, model, versions or [], metric)
    return listing.compare_listing(rows, parse_zone(tz))


def _moment(text: str | None) -> datetime | None:
    return None if text is None else parse_moment(text)

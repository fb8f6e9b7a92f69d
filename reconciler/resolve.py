"""`get` and `resolve`: the exact bytes of a model version, named by version or by the
environment that serves it, read from the repository at a revision (no database needed), or
at the commit the database was last reconciled to, where it must agree with what the database
records an environment serves (`--db`: what the registry branch serves now).

A version is its content: the bytes come by content address from the DVC remote (or, for an
artifact committed to git, from git objects), checked against the pinned digest before the
file appears, so a partial or wrong download leaves nothing behind. No DVC cache is read or
filled: a fresh clone (a batch job's) is enough.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.limits import version_order

if TYPE_CHECKING:
    from reconciler.catalog import Catalog


class Resolved(NamedTuple):
    """A model version as a program needs it: what it is, where its bytes are, how good."""

    model: str
    version: str
    environment: str | None  # the environment asked for, when named that way
    artifact: str
    digest: str
    size: int | None
    storage_uri: str | None  # in the environment's DVC remote (else DVC's default)
    metrics: dict[str, float]
    rev: str  # the commit the manifests were read at
    remote: str | None  # the DVC remote's name (None: DVC's default)
    in_git: tuple[str, str] | None  # (commit, path) when git itself holds the bytes


class Recorded(NamedTuple):
    """What the database says an environment serves (the version and its digest) as of the
    commit it was last reconciled to: the manifests there must say the same."""

    version: str
    digest: str | None


def resolve(root: str, model: str, *, env: str | None = None, version: str | None = None,
            rev: str = "HEAD", recorded: Recorded | None = None) -> Resolved:
    """The version of model that env serves at rev (or the version named; neither: the newest
    version), with its digest, size, storage URI and metrics."""
    commit, current = _catalog_at(root, rev)
    return _agreeing(_resolved(current, commit, model, env, version), recorded)


def get(root: str, reference: str, *, out: str | None = None, rev: str = "HEAD",
        force: bool = False, recorded: Recorded | None = None) -> str:
    """Fetch the bytes that MODEL[@VERSION|@ENV] names at rev into out (default: the
    artifact's file name, here; a folder: into it), checked against the pinned digest before
    the file appears; the path written. A file already there is replaced only with force."""
    from reconciler.dvc.fetch import fetch_object

    found = locate(root, reference, rev=rev, recorded=recorded)
    target = os.path.abspath(out or os.path.basename(found.artifact))
    if os.path.isdir(target):
        target = os.path.join(target, os.path.basename(found.artifact))
    fetch_object(root, found.digest, target, remote=found.remote, in_git=found.in_git,
                 replace=force)
    return target


def locate(root: str, reference: str, *, rev: str = "HEAD",
           recorded: Recorded | None = None) -> Resolved:
    """What MODEL, MODEL@VERSION or MODEL@ENV names at rev (an environment when one has that
    name, else a version)."""
    model, which = parse_reference(reference)
    commit, current = _catalog_at(root, rev)
    if which in current.environments:
        return _agreeing(_resolved(current, commit, model, which, None), recorded)
    return _resolved(current, commit, model, None, which or None)


def parse_reference(reference: str) -> tuple[str, str]:
    """MODEL[@VERSION|@ENV] as (model, what follows the @, "" when nothing does)."""
    model, at, which = reference.partition("@")
    if not model or (at and not which):
        raise ReconcilerError(f"'{printable(reference)}' is not MODEL, MODEL@VERSION or "
                              "MODEL@ENVIRONMENT")
    return model, which


def _agreeing(found: Resolved, recorded: Recorded | None) -> Resolved:
    """found, when the database's record of what its environment serves says the same."""
    if recorded is None or (found.version, found.digest) == recorded:
        return found
    raise ReconcilerError(
        f"the database records {found.model} {printable(recorded.version)} "
        f"({printable(str(recorded.digest))}) served in {found.environment}, but the manifests "
        f"at {found.rev[:12]}, where it was reconciled, say {found.version} ({found.digest}): "
        "run `reconciler audit verify`; nothing was fetched")


@contextmanager
def repository(repo: str) -> Iterator[str]:
    """The root of repo: a folder inside a clone, or a URL cloned into a temporary folder for
    the time of the call (`git clone`: no DVC cache comes with it)."""
    from reconciler.git.plumbing import clone
    from reconciler.paths import find_root

    if not _is_url(repo):
        yield find_root(repo)
        return
    with tempfile.TemporaryDirectory(prefix="reconciler-get-") as scratch:
        yield clone(repo, os.path.join(scratch, "repo"))


def _is_url(repo: str) -> bool:
    """Whether repo names a remote repository (`https://...`, `ssh://...`, `git@host:path`)."""
    return "://" in repo or (":" in repo.split("/", 1)[0] and not os.path.exists(repo))


def _catalog_at(root: str, rev: str) -> tuple[str, Catalog]:
    from reconciler import catalog as catalog_mod
    from reconciler.gcpause import paused_gc
    from reconciler.git.plumbing import resolve_commit
    from reconciler.source import GitRevision

    commit = resolve_commit(root, rev)
    with paused_gc():
        return commit, catalog_mod.build(GitRevision(root, commit))


def _resolved(current: Catalog, commit: str, model: str, env: str | None,
              version: str | None) -> Resolved:
    from reconciler.catalog import model_named
    from reconciler.dvc.records import IN_GIT
    from reconciler.dvc.remotes import ConfigError, remote_of, storage_uri

    entry = model_named(current, model, f" at {commit[:12]}")
    listed = {v.version: v for v in entry.manifest.spec.versions}
    remote = None
    if env is not None:
        stage = entry.manifest.spec.stages.get(env)
        if stage is None:
            raise ReconcilerError(f"'{printable(env)}' serves no '{model}' at {commit[:12]}")
        version, remote = stage.version, current.environments[env].manifest.spec.remote
    chosen = listed.get(version or max(listed, key=version_order))
    if chosen is None:
        raise ReconcilerError(f"model '{model}' has no version '{printable(version or '')}' "
                              f"at {commit[:12]}")
    if chosen.digest is None:
        raise ReconcilerError(f"{model} {chosen.version} pins no digest: nothing to fetch")
    recorded = current.output(chosen.artifact)
    in_git = ((chosen.rev or commit, chosen.artifact)
              if recorded is not None and recorded.recorded_in == IN_GIT else None)
    try:
        location = remote_of(current.source, remote)
    except ConfigError as error:
        raise ReconcilerError(f".dvc/config:{error.line}: unreadable DVC config: "
                              f"{error.message}") from None
    return Resolved(model, chosen.version, env, chosen.artifact, chosen.digest, chosen.size,
                    storage_uri(location, chosen.digest) if location is not None else None,
                    dict(chosen.metrics), commit, remote, in_git)

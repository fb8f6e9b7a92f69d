"""`validate`: the catalog of a revision (or the work tree) and of its base, and every diagnostic.

One check serves every door: pre-commit (the staged files against HEAD), `pin` (what is still
wrong after pinning), `render` and `apply` (the target must validate) and `plan` (the change
from the merge base), so they never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError, sort_key
from reconciler.gcpause import paused_gc
from reconciler.git.plumbing import has_head, registry_branch, staged_deletions
from reconciler.paths import MANIFEST_DIR, is_dvc_file, repo_path
from reconciler.source import open_source

if TYPE_CHECKING:
    from reconciler.catalog import Catalog


class Result(NamedTuple):
    """Diagnostics of a run and how many manifest files it checked."""

    diagnostics: list[Diagnostic]
    files: int
    note: str = ""  # something to tell the user that is not a diagnostic

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)


def validate(root: str, paths: list[str] | None = None, *, rev: str | None = None,
             base: str | None = None, check_remote: bool = False, no_base: bool = False,
             staged: bool = False) -> Result:
    """Check the manifests of root (working tree or rev); with paths, just those files. The
    work tree is checked as a change from HEAD (immutability, promotion policy) unless
    no_base, so pre-commit enforces the policy on every commit. staged (the hook): paths are
    what pre-commit passes, none meaning nothing to check, unless the staged change deletes
    a registry file, which may break any manifest: then every one."""
    if staged and rev is None:
        if staged_deletions(root):
            paths = None
        elif not paths:
            return Result([], 0, "")
    if base is None and rev is None and not no_base and has_head(root):
        base = "HEAD"
    with paused_gc():
        return checked_catalog(root, manifests_to_check(root, paths), rev, base,
                               check_remote=check_remote)[1]


def checked_catalog(root: str, only: list[str] | None, rev: str | None, base: str | None = None,
                    *, check_remote: bool = False) -> tuple[Catalog, Result]:
    """The catalog at rev (the work tree when None) and its diagnostics, as a change from base
    when base is given."""
    current, at_base = catalogs(root, only, rev, base)
    return current, checks(root, current, at_base, only, rev, check_remote=check_remote)


def catalogs(root: str, only: list[str] | None, rev: str | None,
             base: str | None) -> tuple[Catalog, Catalog | None]:
    """The catalog at rev (the work tree when None) and, when base is given, at base."""
    from reconciler import catalog as catalog_mod

    current = catalog_mod.build(open_source(root, rev), only)
    return current, base_catalog(root, base, only, current, registry_rev(root)) if base else None


def base_catalog(root: str, base: str, only: list[str] | None, current: Catalog,
                 registry: str | None) -> Catalog:
    """The catalog at base that current is checked as a change from, its promotion rules
    judged on registry's history. In paths mode it needs only what current read in full, as
    it was (catalog.build_base; bench/validate.py, docs/BENCHMARKS.md)."""
    from reconciler import catalog as catalog_mod
    from reconciler.source import GitRevision

    found = catalog_mod.build_base(GitRevision(root, base, only=[]), current, only)
    found.registry_rev = registry
    return found


def registry_rev(root: str) -> str | None:
    """The registry branch, whose history promotion.from is judged on; None when this
    repository has none of the usual names (then the base's own history is)."""
    try:
        return registry_branch(root)
    except ReconcilerError:
        return None


def checks(root: str, current: Catalog, at_base: Catalog | None, only: list[str] | None,
           rev: str | None, *, check_remote: bool = False) -> Result:
    """Every diagnostic of the files checked, against at_base when there is one."""
    from reconciler import rules

    found = rules.check_change(current, at_base)
    if check_remote:
        from reconciler.dvc.remotes import unpushed_versions

        found += unpushed_versions(root, current)
    note = ""
    if only is None and not current.source.manifest_paths():
        note = (f"no manifests under {MANIFEST_DIR}/ "
                f"{'at ' + rev if rev else 'in ' + root}: nothing to check (add Model, Dataset "
                "and Environment specs there as YAML; `reconciler schema` prints their format)")
    return Result(sorted(set(found), key=sort_key), len(current.checked), note)


def manifests_to_check(root: str, paths: list[str] | None) -> list[str] | None:
    """The manifests to check in full; None (everything) when a DVC file is among the paths,
    since any manifest may pin the artifact it records."""
    if not paths:
        return None
    relative = [repo_path(root, p) for p in paths]
    return None if any(is_dvc_file(p) for p in relative) else relative

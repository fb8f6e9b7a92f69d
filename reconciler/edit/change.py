"""A registry action's change (register, promote, rollback, deprecate, retire): the edited files
checked as validate checks them against the registry branch, shown as plan shows a change, then
written all or nothing, and committed when asked.

Nothing is written when the check finds an error: the diagnostics say why, as pre-commit would
have said it of the same edit made by hand.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError, sort_key
from reconciler.edit.text import still_valid
from reconciler.events import Event
from reconciler.files import write_all
from reconciler.gcpause import paused_gc
from reconciler.git.plumbing import commit_paths, has_head
from reconciler.source import FileProblem, WorkTree
from reconciler.validate import base_catalog, checks, registry_rev

if TYPE_CHECKING:
    from reconciler.catalog import Catalog


class Change(NamedTuple):
    """What an action did, or would do: its message (the commit's), the files, the change as
    apply will record it, what the check found, who must approve, and the commit made."""

    message: str
    files: list[str]  # repository-relative; written unless refused (or a dry run)
    events: list[Event]
    diagnostics: list[Diagnostic]
    approvals: dict[str, list[str]]  # environment -> who must approve
    written: bool
    commit: str | None = None

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)


class EditedTree(WorkTree):
    """The work tree as it will be once the edits are written (None: the file deleted)."""

    def __init__(self, root: str, edited: dict[str, str | None]):
        super().__init__(root)
        self.edited = edited

    def manifest_paths(self) -> list[str]:
        """The work tree's manifests, the edited ones added and the deleted ones left out."""
        paths = set(super().manifest_paths()) | {p for p, t in self.edited.items() if t}
        return sorted(p for p in paths if self.edited.get(p, "") is not None)

    def exists(self, path: str) -> bool:
        """Whether the file is there once the edits are written."""
        if path in self.edited:
            return self.edited[path] is not None
        return super().exists(path)

    def read(self, path: str) -> bytes:
        """The file's bytes once the edits are written."""
        if path in self.edited:
            text = self.edited[path]
            if text is None:
                raise FileProblem("FIL004", f"no file '{path}' once the change is written")
            return text.encode("utf-8")
        return super().read(path)


def work_tree(root: str) -> Catalog:
    """The catalog of the work tree, as an action reads it before editing."""
    from reconciler import catalog as catalog_mod

    with paused_gc():
        return catalog_mod.build(WorkTree(root))


def finish(root: str, before: Catalog, edited: dict[str, str | None], message: str, *,
           commit: bool = False, dry_run: bool = False, check_all: bool = False) -> Change:
    """Check the edited files (with check_all, every manifest: a file deleted may leave any
    dangling) against the registry branch, then write them (all or none) and, with commit,
    commit them with message; with dry_run, only say what would be done. Edits that leave
    every file as it is are no change: no files, nothing checked or written."""
    from reconciler import catalog as catalog_mod
    from reconciler import servinghistory
    from reconciler.diff import diff
    from reconciler.plan import approvals

    for path, text in edited.items():
        if text is not None and not still_valid(path, text):
            raise ReconcilerError(f"{path}: the edit would not load; nothing was written "
                                  "(edit this file by hand)")
    # An edit that leaves a file as it is changes nothing: already so, nothing to check or write.
    edited = {path: text for path, text in edited.items()
              if text is None or not os.path.exists(os.path.join(root, path))
              or file_text(root, path) != text}
    if not edited:
        return Change(message, [], [], [], {}, False)
    only = sorted(edited)
    base_rev = registry_rev(root) or ("HEAD" if has_head(root) else None)
    with paused_gc():
        tree = EditedTree(root, edited)
        after = catalog_mod.build(tree, known=before)
        scope = None if check_all else [p for p in only if edited[p] is not None]
        checked_files = after if scope is None else catalog_mod.build(tree, scope, known=before)
        base = base_catalog(root, base_rev, scope, after, base_rev) if base_rev else None
        checked = checks(root, checked_files, base, scope, None)
        events = servinghistory.confirmed(
            root, diff(catalog_mod.snapshot(before), catalog_mod.snapshot(after)), set(),
            base_rev)
    found = sorted(set(checked.diagnostics), key=sort_key)
    change = Change(message, only, events, found, approvals(events, after, base), False)
    if not change.ok or dry_run:
        return change
    write_all([(os.path.join(root, p), text) for p, text in edited.items() if text is not None])
    for path, text in edited.items():
        if text is None:
            os.remove(os.path.join(root, path))
    made = commit_paths(root, only, message) if commit else None
    return change._replace(written=True, commit=made)


def file_text(root: str, path: str) -> str:
    """The text of a manifest in the work tree, read as pin reads it (line endings kept)."""
    with open(os.path.join(root, path), encoding="utf-8", newline="") as handle:
        return handle.read()

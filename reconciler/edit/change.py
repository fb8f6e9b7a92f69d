"""A registry action's change (register, promote, rollback, deprecate, retire): checked as the
pre-commit hook checks the changed model's file against the registry branch, shown as plan
shows a change, then written all or nothing, and committed when asked.

An action changes one model: its file, or its entry in an Environment's `serves`. It is read
and checked as validate reads a model's file passed alone: that file, every Dataset and
Environment, the other models scanned for their names. The entries of the other models an
Environment serves are left as they were, so they are not parsed: an action on a registry of
hundreds of models costs about what one model does (bench/gto.py).

Nothing is written when the check finds an error: the diagnostics say why, as pre-commit would
have said it of the same edit made by hand.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError
from reconciler.edit.text import still_valid
from reconciler.events import Event
from reconciler.files import write_all
from reconciler.gcpause import paused_gc
from reconciler.git.plumbing import commit_paths, has_head, uncommitted
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


def work_tree(root: str, model: str | None = None) -> Catalog:
    """The catalog of the work tree as an action reads it before editing: with model, as
    pre-commit reads that model's file (it and every Dataset and Environment in full, the
    other models scanned for their names: see catalog); else every manifest in full."""
    from reconciler import catalog as catalog_mod

    with paused_gc():
        source = WorkTree(root)
        if model is None:
            return catalog_mod.build(source)
        shared = catalog_mod.build(source, [])
        path = catalog_mod.path_of(shared, model)
        if path is None:
            return shared
        found = catalog_mod.build(source, [path], known=shared)
        unloaded = [d for d in found.diagnostics if d.path == path and d.is_error]
        if model not in found.models and unloaded:  # why, rather than "no model"
            first = unloaded[0]
            raise ReconcilerError(f"{first.path}:{first.line}:{first.col}: {first.code} "
                                  f"{first.message} (the file of '{model}' does not load: "
                                  "fix it first)")
        return found


def finish(root: str, before: Catalog, edited: dict[str, str | None], message: str, *,
           checked: list[str] | None, commit: bool = False, dry_run: bool = False) -> Change:
    """Check the change as pre-commit checks it, against the registry branch: checked names
    the files checked in full (the changed model's, with what every Environment says of it:
    before must have been read the same way), None every manifest (a file deleted may leave
    any dangling). Then write the edited files (all or none) and, with commit, commit them
    with message; with dry_run, only say what would be done. Edits that leave every file as
    it is are no change: no files, nothing checked or written."""
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
        # A file the user had edited too is checked whole: the action writes (and with
        # commit, commits) what else it says, which no hook has checked yet. Without a
        # commit to compare with, nothing has been checked.
        edited_by_hand = [path for path in (uncommitted(root, only) if base_rev else only)
                          if edited.get(path)]
        if checked is not None and set(edited_by_hand) - set(checked):
            checked = sorted({*checked, *edited_by_hand})
            before = catalog_mod.build(WorkTree(root), checked, known=before)
        after = catalog_mod.build(EditedTree(root, edited), checked, known=before)
        base = base_catalog(root, base_rev, checked, after, base_rev) if base_rev else None
        found = checks(root, after, base, checked, None).diagnostics
        events = servinghistory.confirmed(
            root, diff(catalog_mod.snapshot(before), catalog_mod.snapshot(after)), set(),
            base_rev)
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

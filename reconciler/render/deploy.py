"""`render`: a revision's deployment configs, validated first, written to the output folder or
checked against it (`--check`)."""

from __future__ import annotations

from typing import NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError, printable, some_of, sort_key
from reconciler.gcpause import paused_gc
from reconciler.render.folder import OutputFolder, Unsafe, unsafe_diagnostic
from reconciler.validate import checked_catalog


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


def render(root: str, *, rev: str | None = None, out: str = "deploy", env: str | None = None,
           check: bool = False) -> RenderResult:
    """Render every environment's deployment configs (validated) into out, or check them."""
    with paused_gc():
        return _render(root, rev, out, env, check)


def _render(root: str, rev: str | None, out: str, env: str | None, check: bool
            ) -> RenderResult:
    from reconciler.render import engine

    current, checked = checked_catalog(root, None, rev)
    if not checked.ok:
        return RenderResult(checked.diagnostics, [], [], [])
    if env is not None and env not in current.environments:
        raise ReconcilerError(f"--env: no environment '{printable(env)}' (known: "
                              f"{some_of(current.environments)})")
    rendered, problems = engine.render_catalog(current, env)
    if problems:
        return RenderResult(sorted(problems, key=sort_key), [], [], [])
    try:
        folder = OutputFolder(root, out, rendered, env)
        files = [item.path for item in folder.rendered]
        if check:
            return RenderResult(checked.diagnostics, files, [], folder.changes())
        return RenderResult(checked.diagnostics, files, folder.write(), [])
    except Unsafe as unsafe:
        return RenderResult([unsafe_diagnostic(root, unsafe)], [], [], [])

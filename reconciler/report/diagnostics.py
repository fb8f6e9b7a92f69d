"""Diagnostics for people and machines: text, JSON, GitHub workflow annotations, Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.diagnostics import Diagnostic, markdown_text, printable
from reconciler.report import jsonout

FORMAT_VERSION = 1
FORMATS = ("text", "json", "github")


def summary_line(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """'2 errors, 1 warning in 40 files' or 'ok: 40 files, no problems'."""
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    if not diagnostics:
        return f"ok: {files} file{'s' * (files != 1)} checked, no problems"
    return (f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
            f"in {files} file{'s' * (files != 1)} checked")


def text(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """`path:line:col: CODE message` lines, each followed by its hint, then a summary."""
    lines = []
    for d in diagnostics:
        severity = "" if d.is_error else "warning: "
        lines.append(f"{printable(d.path)}:{d.line}:{d.col}: {d.code} {severity}"
                     f"{printable(d.message)}")
        if d.hint:
            lines.append(f"    hint: {printable(d.hint)}")
    lines.append(summary_line(diagnostics, files))
    return "\n".join(lines)


def as_json(command: str, diagnostics: Sequence[Diagnostic], files: int) -> str:
    """A stable JSON document; format_version changes only when fields change meaning."""
    errors = sum(d.is_error for d in diagnostics)
    document = {
        "format_version": FORMAT_VERSION,
        "command": command,
        "ok": errors == 0,
        "summary": {"files": files, "errors": errors, "warnings": len(diagnostics) - errors},
        "diagnostics": [
            {"path": d.path, "line": d.line, "col": d.col, "code": d.code,
             "severity": d.severity, "message": d.message, "hint": d.hint}
            for d in diagnostics
        ],
    }
    return jsonout.dumps(document, indent=2, sort_keys=False)


def github(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """GitHub Actions workflow commands: one ::error / ::warning annotation per diagnostic."""
    lines = []
    for d in diagnostics:
        message = printable(d.message) + (f"\nhint: {printable(d.hint)}" if d.hint else "")
        lines.append(f"::{d.severity} file={_property(printable(d.path))},line={d.line},"
                     f"col={d.col},"
                     f"title={_property(d.code)}::{_data(message)}")
    lines.append(summary_line(diagnostics, files))
    return "\n".join(lines)


def markdown(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """A Markdown table for a job's step summary or a pull-request comment."""
    lines = ["### reconciler validate", "", summary_line(diagnostics, files)]
    if diagnostics:
        lines += ["", "| where | code | message |", "| --- | --- | --- |"]
        for d in diagnostics:  # messages quote the input: text, never markup
            message = markdown_text(d.message) + (f" <br>*hint:* {markdown_text(d.hint)}"
                                                  if d.hint else "")
            lines.append(f"| {markdown_text(d.path)}&#58;{d.line}&#58;{d.col} | {d.code} | "
                         f"{message} |")
    return "\n".join(lines) + "\n"


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


def apply_text(result: Any, rendered: Sequence[str] = ()) -> str:
    """The one-screen summary of an apply."""
    verb = "would write" if result.dry_run else "wrote"
    start = result.start[:12] if result.start else "the beginning"
    if result.walked == 0 and not rendered:
        return f"apply: {result.database} is up to date at {result.target[:12]}"
    lines = [f"apply: {result.walked} commit{'s' * (result.walked != 1)} from {start} to "
             f"{result.target[:12]}, {result.changed} of them changed the registry; "
             f"into {result.database} in {result.seconds:.2f} s"]
    if result.rewritten:
        lines.append("  history was rewritten since the last apply: recorded history.rewritten, "
                     "continued from the merge base")
    total = sum(result.events.values())
    lines.append(f"  {verb} {total} event{'s' * (total != 1)}")
    for event_type, count in sorted(result.events.items(), key=lambda i: (-i[1], i[0])):
        lines.append(f"    {count:6d}  {event_type}")
    violations = result.events.get("policy.violated", 0)
    if violations:
        lines.append(f"  {violations} change{'s' * (violations != 1)} landed although "
                     "validate refuses them (a rule or a promotion policy): recorded as "
                     "policy.violated")
    for commit, path in result.skipped:
        lines.append(f"  skipped {printable(path)} at {commit[:12]}: it did not load; its previous "
                     "content was kept")
    if result.retries:
        lines.append(f"  {result.retries} transaction{'s' * (result.retries != 1)} retried")
    if rendered:
        changed = result.events.get("render.recorded", 0) + result.events.get("render.removed", 0)
        lines.append(f"  rendered {len(rendered)} deployment configs at {result.target[:12]}; "
                     + (f"{changed} changed since the last record, recorded in renders"
                        if changed else "none changed since the last record"))
    return "\n".join(lines)


def apply_json(result: Any, rendered: Sequence[str] = ()) -> str:
    """An apply result for machines."""
    return jsonout.dumps({
        "format_version": FORMAT_VERSION, "command": "apply", "ok": True,
        "database": result.database, "dry_run": result.dry_run, "from": result.start,
        "to": result.target, "commits": result.commits, "walked": result.walked,
        "changed": result.changed, "events": dict(sorted(
            result.events.items())), "rewritten": result.rewritten, "retries": result.retries,
        "skipped": [{"commit": c, "path": p} for c, p in result.skipped],
        "rendered": list(rendered),
        "seconds": round(result.seconds, 3)}, indent=2)

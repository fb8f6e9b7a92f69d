"""How a plan reads: a line for a terminal, a pull-request comment (Markdown, cut to fit), JSON
for CI checks. Pure: a Plan in, text out; every value from the pull request is escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.diagnostics import markdown_text, printable
from reconciler.events import Event, describe
from reconciler.plan import Plan
from reconciler.report import jsonout

FORMAT_VERSION = 1
MARKDOWN_LIMIT = 60 * 1024  # GitHub refuses comments over 65,536 characters
# Events a reviewer needs to see; the rest (lineage, metadata) are in the JSON.
_HEADLINE = {"model.created", "model.retired", "version.added", "version.deprecated",
             "version.undeprecated", "version.removed", "version.updated", "stage.assigned",
             "stage.removed", "canary.changed", "stage.updated", "policy.violated",
             "environment.created", "environment.updated", "environment.retired"}



def summary(plan: Plan) -> str:
    """One line: how many changes, errors and approvals."""
    errors = sum(d.is_error for d in plan.diagnostics)
    models = len({e.name for e in plan.events if e.kind == "Model"})
    needed = sorted({who for names in plan.approvals.values() for who in names})
    parts = [f"{len(plan.events)} change{'s' * (len(plan.events) != 1)} to {models} "
             f"model{'s' * (models != 1)}"]
    parts.append(f"{errors} error{'s' * (errors != 1)}" if errors else "valid")
    if needed:
        parts.append("needs approval from " + ", ".join(needed))
    return f"plan {plan.base[:12]}..{plan.head[:12]}: " + "; ".join(parts)


def text(plan: Plan) -> str:
    """For a terminal: violations first, then changes per model."""
    # Every line is escaped whole: names and approvers come from the pull request, and a line
    # starting `::` would be a workflow command in the github format.
    return "\n".join([printable(summary(plan)), *change_lines(plan)])


def change_lines(plan: Plan) -> list[str]:
    """The violations, then the changes per model, then the approvals, a line each (what a
    registry action prints under its own first line)."""
    lines = []
    for d in plan.diagnostics:
        lines.append(printable(f"  {d.path}:{d.line}:{d.col}: {d.code} {d.message}"))
    for model, events in _by_model(plan.events).items():
        lines.append(printable(f"  {model}:"))
        for event in events:
            where = f"[{event.environment}] " if event.environment else ""
            lines.append(printable(f"    {where}{describe(event, plan.metrics)}"))
    for event in plan.events:
        if event.kind == "Environment" and event.type in _HEADLINE:
            lines.append(printable(f"  {describe(event)}"))
    for env, names in plan.approvals.items():
        if names:
            lines.append(printable(f"  {env} needs approval from {', '.join(names)}"))
    return lines


def as_json(plan: Plan) -> str:
    """A documented, stable structure (format_version) for CI checks."""
    return jsonout.dumps({
        "format_version": FORMAT_VERSION, "command": "plan", "ok": plan.ok,
        "changed": plan.changed, "base": plan.base, "head": plan.head,
        "diagnostics": [{"path": d.path, "line": d.line, "col": d.col, "code": d.code,
                         "severity": d.severity, "message": d.message, "hint": d.hint}
                        for d in plan.diagnostics],
        "changes": [{"type": e.type, "kind": e.kind, "name": e.name, "version": e.version,
                     "environment": e.environment, "payload": e.payload}
                    for e in plan.events],
        "approvals": plan.approvals,
        "render_diffs": plan.render_diffs,
    }, indent=2)


def markdown(plan: Plan) -> str:
    """A pull-request comment: summary, violations, a table per environment, lineage as a
    Mermaid diagram, config diffs folded; cut to MARKDOWN_LIMIT with a note of what was left."""
    parts = [f"### reconciler plan\n\n{markdown_text(summary(plan))}\n"]
    if plan.diagnostics:
        parts.append("| where | code | message |\n| --- | --- | --- |\n" + "".join(
            f"| {markdown_text(d.path)}&#58;{d.line} | {d.code} | {markdown_text(d.message)} |\n"
            for d in plan.diagnostics))
    for env, events in _by_environment(plan.events).items():
        rows = "".join(f"| {markdown_text(e.name)} | {markdown_text(describe(e, plan.metrics))} |\n"
                       for e in events)
        needed = plan.approvals.get(env) or []
        approval = (f"\nNeeds approval from {markdown_text(', '.join(needed))}.\n"
                    if needed else "")
        parts.append(f"#### {markdown_text(env)}\n\n| model | change |\n| --- | --- |\n"
                     f"{rows}{approval}")
    other = [e for e in plan.events if e.environment is None and e.type in _HEADLINE]
    if other:
        parts.append("#### versions, models and environments\n\n| name | change |\n"
                     "| --- | --- |\n" + "".join(
            f"| {markdown_text(e.name)} | {markdown_text(describe(e))} |\n" for e in other))
    lineage = mermaid(plan.events)
    if lineage:
        parts.append(f"<details><summary>lineage</summary>\n\n```mermaid\n{lineage}```\n\n"
                     "</details>\n")
    for env, diffs in plan.render_diffs.items():
        if diffs:
            body = "".join(diffs).replace("```", "` ` `")
            parts.append(f"<details><summary>{markdown_text(env)}: deployment configs</summary>\n\n"
                         f"```diff\n{body}```\n\n</details>\n")
    return _bounded(parts)


def _bounded(parts: list[str]) -> str:
    """The parts that fit in MARKDOWN_LIMIT, in order: a table that does not fit keeps the rows
    that do, and a note counts what was left out."""
    kept, size = [], 0
    for index, part in enumerate(parts):
        room = MARKDOWN_LIMIT - 400 - size  # what the notes need is kept free
        if len(part) > room:
            rows = _rows_that_fit(part, room)
            if rows:
                kept.append(rows)
            left = len(parts) - index - (1 if rows else 0)
            if left:
                kept.append(f"\n*{left} more section{'s' * (left != 1)} left out: the comment "
                            "would pass GitHub's limit. `reconciler plan --format json` has "
                            "all.*\n")
            break
        kept.append(part)
        size += len(part)
    return "\n".join(kept)


def _rows_that_fit(part: str, room: int) -> str:
    """As many rows of a table part as fit in room, with a count of the rows left out; "" for
    a part that is not a table or whose header does not fit."""
    lines = part.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if line.startswith("| --- ")), None)
    if header is None:
        return ""
    text, size = lines[:header + 1], sum(map(len, lines[:header + 1]))
    rows = [line for line in lines[header + 1:] if line.startswith("| ")]
    fitted = 0
    for row in rows:
        if size + len(row) > room - 100:
            break
        text.append(row)
        size += len(row)
        fitted += 1
    if size > room - 100:
        return ""
    return "".join(text) + f"\n*{len(rows) - fitted} more rows left out.*\n"


_NODE = re.compile(r"[^A-Za-z0-9_]")


def mermaid(events: Sequence[Event]) -> str:
    """A flowchart of the lineage the change adds: each source version -> model version."""
    edges = sorted({(f"{e.payload.get('source')}@{e.payload.get('sourceVersion')}",
                     f"{e.name}@{e.version}") for e in events if e.type == "lineage.added"})
    if not edges:
        return ""
    nodes = sorted({node for edge in edges for node in edge})
    ids = {node: f"n{index}_{_NODE.sub('_', node)[:40]}" for index, node in enumerate(nodes)}
    lines = ["flowchart LR"]
    lines += [f'  {ids[node]}["{_label(node)}"]' for node in nodes]
    lines += [f"  {ids[source]} --> {ids[target]}" for source, target in edges]
    return "\n".join(lines) + "\n"


def _label(node: str) -> str:
    return re.sub(r'["\\\[\]<>`]', "_", printable(node))


def _by_model(events: Sequence[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        if event.kind == "Model" and event.type in _HEADLINE:
            grouped.setdefault(event.name, []).append(event)
    return grouped


def _by_environment(events: Sequence[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        if event.environment is not None and event.type in _HEADLINE:
            grouped.setdefault(event.environment, []).append(event)
    return dict(sorted(grouped.items()))

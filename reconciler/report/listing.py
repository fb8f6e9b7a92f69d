"""How the audit commands print what `queries` found: a table on a terminal (rich), plain
columns when piped, JSON (with format_version) or CSV.

Each `*_listing` function turns one query's rows into a Listing: the columns of the table and
CSV, and the JSON document. Everything printed as text is escaped (`printable`): names, author
lines and messages come from commits anyone could have made.
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple

from reconciler.diagnostics import printable
from reconciler.report import jsonout
from reconciler.times import shown

FORMAT_VERSION = 1
FORMATS = ("text", "json", "csv")


class Listing(NamedTuple):
    """A command's answer: a table (columns and cells) and the same as JSON data."""

    command: str
    columns: list[str]
    cells: list[list[str]]
    data: Any  # the query's rows; JSON shows their times in zone
    empty: str = "nothing found"  # what text says when there is no row
    zone: tzinfo = UTC


def jsonable(value: Any, zone: tzinfo) -> Any:
    """value with datetimes as ISO-8601 strings in zone, for JSON."""
    if isinstance(value, datetime):
        return shown(value, zone)
    if isinstance(value, dict):
        return {k: jsonable(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, zone) for v in value]
    return value


def formatted(listing: Listing, fmt: str, *, terminal: bool | None = None,
              width: int | None = None) -> str:
    """The listing as text, json or csv (a terminal's text fits width, by default its own)."""
    if fmt == "json":
        # Converted only here, as text and CSV never need it (docs/BENCHMARKS.md).
        return jsonout.dumps({"format_version": FORMAT_VERSION, "command": listing.command,
                           "rows": jsonable(listing.data, listing.zone)}, indent=2,
                          sort_keys=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(listing.columns)
        writer.writerows([[_csv_cell(c) for c in row] for row in listing.cells])
        return out.getvalue().rstrip("\n")
    if not listing.cells:
        return listing.empty
    if terminal if terminal is not None else sys.stdout.isatty():
        return _rich_table(listing, width)
    return _plain_table(listing)


def _csv_cell(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    if cell[:1] in ("=", "+", "@", "\t", "\r") or (cell[:1] == "-" and not _number(cell)):
        return "'" + cell
    return cell


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _plain_table(listing: Listing) -> str:
    rows = [listing.columns, *[[printable(c) for c in row] for row in listing.cells]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(listing.columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                        strict=True)).rstrip()
                     for row in rows)


# Columns a terminal shows whole or not at all, as `git log` and `kubectl get` do: a time, a
# commit or a name cut short reads as nonsense. The others wrap.
WHOLE = {"landed", "authored", "commit", "version", "digest", "environment", "model", "name",
         "depth", "size", "latest", "versions", "before", "after"}
# What goes first when the whole columns do not fit the terminal: the least needed.
LEAST_NEEDED = ("reviewed by", "merged by", "authored", "owner", "size", "digest", "via",
                "proposed by", "metrics", "status", "canary")
GAP = 2  # between columns


def _rich_table(listing: Listing, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    width = width or Console().width
    cells = [[printable(c) for c in row] for row in listing.cells]
    shown = _columns_that_fit(listing.columns, cells, width)
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, GAP // 2))
    for name in shown:
        whole = name in WHOLE
        table.add_column(name, no_wrap=whole, overflow="fold",
                         min_width=_widest(listing.columns, cells, name) if whole else None)
    for row in cells:
        table.add_row(*[row[listing.columns.index(name)] for name in shown])
    console = Console(file=io.StringIO(), force_terminal=True, highlight=False, markup=False,
                      width=width)
    console.print(table)
    left_out = [name for name in listing.columns if name not in shown]
    if left_out:
        console.print(f"({', '.join(left_out)} left out to fit {width} columns: widen the "
                      "terminal, pipe it, or use --format csv or json for every column)")
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue().rstrip("\n")


def _widest(columns: list[str], cells: list[list[str]], name: str) -> int:
    index = columns.index(name)
    return max([len(name), *(len(row[index]) for row in cells)])


def _columns_that_fit(columns: list[str], cells: list[list[str]], width: int) -> list[str]:
    """The columns to show: all of them unless the whole ones (and a few characters of each
    other) are wider than the terminal; then the least needed go, one at a time."""
    shown = list(columns)
    for name in LEAST_NEEDED:
        need = sum(_widest(columns, cells, c) if c in WHOLE else min(8, _widest(columns, cells, c))
                   for c in shown) + GAP * (len(shown) - 1)
        if need <= width:
            break
        if name in shown and len(shown) > 1:
            shown.remove(name)
    return shown


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}"
                     for k, v in sorted(metrics.items()))


def _serving(state: dict[str, Any] | None) -> str:
    """What an environment serves of a model: `1.0.0 + canary 1.1.0 at 20%`."""
    if state is None or (state["version"] is None and not state.get("canary")):
        return "(nothing)"
    canary = _canary(state)
    return (state["version"] or "(none)") + (f" + canary {canary}" if canary else "")


def show_listing(rows: list[dict[str, Any]], zone: tzinfo, one_model: bool) -> Listing:
    """`show`: a row per model, or for one model a row per version."""
    if one_model:
        model = rows[0]
        served: dict[str, list[str]] = {}
        for env, state in model["serving"].items():
            if state["version"]:
                served.setdefault(state["version"], []).append(env)
            if state.get("canary"):
                served.setdefault(state["canary"]["version"], []).append(
                    f"{env} (canary {state['canary']['traffic']}%)")
        cells = [[v["version"], v["digest"] or "", "" if v["size"] is None else str(v["size"]),
                  _metrics(v["metrics"]), "deprecated" if v["deprecated"] else "",
                  ", ".join(served.get(v["version"], []))] for v in model["versions"]]
        return Listing("show", ["version", "digest", "size", "metrics", "status", "serving"],
                       cells, rows, f"model {model['model']} has no versions", zone)
    cells = [[r["model"], r["owner"] or "", str(len(r["versions"])),
              r["versions"][-1]["version"] if r["versions"] else "",
              "; ".join(f"{env}: {_serving(state)}" for env, state in r["serving"].items()),
              "retired" if r["retired"] else ""] for r in rows]
    return Listing("show", ["model", "owner", "versions", "latest", "serving", "status"],
                   cells, rows, "the registry has no models", zone)


def events_listing(command: str, rows: list[dict[str, Any]], zone: tzinfo) -> Listing:
    """`audit history` and `audit who`: a row per event."""
    cells = [[shown(r["landed"], zone), shown(r["authored"], zone), r["model"],
              r["environment"] or "", r["change"], *_credited(r), r["commit"][:12]]
             for r in rows]
    return Listing(command, ["landed", "authored", "name", "environment", "change",
                             "proposed by", "merged by", "reviewed by", "commit"],
                   cells, rows, "no events", zone)


def _credited(row: dict[str, Any]) -> list[str]:
    """Who proposed, merged and reviewed (or approved) an event's change: a history rewrite's
    are the pusher's; events recorded before schema 0004 credit the commit's author."""
    people = row["people"]
    if "pusher" in people:
        pusher = _who(people["pusher"][0]["name"], people["pusher"][0]["email"])
        return [pusher, pusher, ""]
    if not people:
        return [_who(row["author"], row["author_email"]), row["committer"] or "", ""]
    return [", ".join(_who(p["name"], p["email"]) for p in people.get(role, []))
            for role in ("proposer", "merger")] + [", ".join(
                _who(p["name"], p["email"]) for role in ("reviewer", "approver")
                for p in people.get(role, []))]


def _who(name: str, email: str) -> str:
    return f"{name} <{email}>" if name and email else name or f"<{email}>"


def served_listing(rows: list[dict[str, Any]], zone: tzinfo) -> Listing:
    """`audit at`: a row per environment and model."""
    cells = [[r["environment"], r["model"], r["version"] or "", r["digest"] or "",
              _canary(r), shown(r["since"], zone), (r["commit"] or "")[:12]] for r in rows]
    return Listing("audit at", ["environment", "model", "version", "digest", "canary",
                                "since", "commit"], cells, rows,
                   "nothing was served at that moment", zone)


def _canary(state: dict[str, Any]) -> str:
    canary = state.get("canary")
    return f"{canary['version']} at {canary['traffic']}%" if canary else ""


def diff_listing(rows: list[dict[str, Any]], zone: tzinfo) -> Listing:
    """`audit diff`: a row per environment and model whose serving changed."""
    cells = [[r["environment"], r["model"], _serving(r["before"]), _serving(r["after"])]
             for r in rows]
    return Listing("audit diff", ["environment", "model", "before", "after"], cells, rows,
                   "nothing served changed between those moments", zone)


def lineage_listing(rows: list[dict[str, Any]], zone: tzinfo) -> Listing:
    """`audit lineage`: a row per edge, nearest first."""
    cells = [[str(r["depth"]), r["source"], r["target"], r["via"], r["commit"][:12]]
             for r in rows]
    return Listing("audit lineage", ["depth", "source", "target", "via", "commit"], cells,
                   rows, "no lineage recorded", zone)


def compare_listing(rows: list[dict[str, Any]], zone: tzinfo) -> Listing:
    """`audit compare`: a row per version, metrics with deltas, where and when it served."""
    cells = []
    for r in rows:
        metrics = ", ".join(
            f"{k} {v:g}" + (f" ({r['deltas'][k]:+.4g})" if k in r["deltas"] else "")
            if isinstance(v, int | float) else f"{k} {v}" for k, v in sorted(r["metrics"].items()))
        served = "; ".join(f"{p['environment']}{' canary' if p['role'] == 'canary' else ''} "
                           f"{shown(p['from'], zone)} .. {shown(p['until'], zone) or 'now'}"
                           for p in r["served"])
        cells.append([r["version"], r["digest"] or "", metrics, served])
    return Listing("audit compare", ["version", "digest", "metrics", "served"], cells,
                   rows, "no versions", zone)


def lineage_graph(rows: list[dict[str, Any]], fmt: str) -> str:
    """`audit lineage` as a Mermaid flowchart or a Graphviz digraph."""
    nodes = sorted({r["source"] for r in rows} | {r["target"] for r in rows})
    ids = {node: f"n{index}" for index, node in enumerate(nodes)}
    if fmt == "mermaid":
        lines = ["flowchart LR", *(f'  {ids[n]}["{_mermaid_quoted(n)}"]' for n in nodes),
                 *(f"  {ids[r['source']]} --> {ids[r['target']]}" for r in rows)]
    else:
        lines = ["digraph lineage {", "  rankdir=LR;",
                 *(f'  {ids[n]} [label="{_dot_quoted(n)}"];' for n in nodes),
                 *(f"  {ids[r['source']]} -> {ids[r['target']]};" for r in rows), "}"]
    return "\n".join(lines)


def _mermaid_quoted(text: str) -> str:
    """A Mermaid label that cannot close its quotes (Mermaid's own entity for ")."""
    return printable(text).replace('"', "#quot;")


def _dot_quoted(text: str) -> str:
    """A DOT label that cannot close its quotes."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')

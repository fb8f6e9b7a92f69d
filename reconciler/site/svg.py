"""Charts, serving timelines and lineage graphs as SVG markup made at build time.

Drawn here rather than by a JavaScript library: the pages stay static files that open offline
and with scripts off, weigh a few kilobytes each, and depend on nothing to keep up to date.
Every text in them is escaped (names, versions and metric keys come from pull requests), and
each figure carries its text alternative in <title> and <desc>; the page beside it holds the
same numbers in a table.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import NamedTuple

WIDTH = 640
LANE = 26  # height of one timeline lane or graph row


class Period(NamedTuple):
    """A version served in an environment from start until end (None: still)."""

    version: str
    start: datetime
    end: datetime | None
    canary_traffic: int | None  # the percent a canary takes; None for the primary
    rollback: bool


def _figure(label: str, description: str, height: int, body: list[str]) -> str:
    return (f'<svg class="figure" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
            f"<title>{escape(label)}</title><desc>{escape(description)}</desc>"
            + "".join(body) + "</svg>")


def metric_chart(metric: str, points: list[tuple[str, float]]) -> str:
    """One metric across versions, in version order: a line through a dot per version."""
    height, left, right, top, bottom = 170, 56, 16, 14, 40
    values = [value for _, value in points]
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    low, high = low - span * 0.1, high + span * 0.1
    step = (WIDTH - left - right) / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    coords = [(left + i * step, y(value)) for i, (_, value) in enumerate(points)]
    body = [f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{WIDTH - right}" '
            f'y2="{height - bottom}"/>',
            f'<text class="tick" x="{left - 6}" y="{y(max(values)) + 4:.1f}" '
            f'text-anchor="end">{max(values):.4g}</text>',
            f'<text class="tick" x="{left - 6}" y="{y(min(values)) + 4:.1f}" '
            f'text-anchor="end">{min(values):.4g}</text>']
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{v:.1f}" for x, v in coords)
        body.append(f'<polyline class="series" points="{path}"/>')
    every = max(1, len(points) // 12)  # version labels that still fit
    for index, ((version, value), (x, v)) in enumerate(zip(points, coords, strict=True)):
        body.append(f'<circle class="dot" cx="{x:.1f}" cy="{v:.1f}" r="3.5">'
                    f"<title>{escape(version)}: {value:.6g}</title></circle>")
        if index % every == 0 or index == len(points) - 1:
            body.append(f'<text class="tick" x="{x:.1f}" y="{height - bottom + 16}" '
                        f'text-anchor="middle">{escape(_short(version, 12))}</text>')
    description = ", ".join(f"{version}: {value:.6g}" for version, value in points)
    return _figure(f"{metric} by version", description, height, body)


def timeline(environment: str, periods: list[Period], now: datetime) -> str:
    """What an environment served of a model over time: a bar per period (canaries on a lane
    of their own, rollbacks marked)."""
    starts = [p.start for p in periods]
    first, last = min(starts), max([now, *starts])
    total = (last - first).total_seconds() or 1.0
    left, right = 8, 8

    def x(moment: datetime) -> float:
        return left + (moment - first).total_seconds() / total * (WIDTH - left - right)

    lanes = {"primary": 0, "canary": 1}
    used = {"canary" if p.canary_traffic is not None else "primary" for p in periods}
    height = LANE * len(used) + 34
    body = []
    for period in periods:
        lane = lanes["canary"] if period.canary_traffic is not None and len(used) > 1 else 0
        start, end = x(period.start), x(period.end or now)
        width = max(end - start, 2.0)
        kind = ("canary" if period.canary_traffic is not None
                else "rollback" if period.rollback else "primary")
        label = period.version + (f" ({period.canary_traffic}%)"
                                  if period.canary_traffic is not None else "")
        label += " rollback" if period.rollback else ""
        until = period.end.isoformat(sep=" ", timespec="minutes") if period.end else "now"
        body.append(
            f'<g class="{kind}"><rect x="{start:.1f}" y="{4 + lane * LANE}" '
            f'width="{width:.1f}" height="{LANE - 6}" rx="3"><title>{escape(label)}: '
            f"{period.start.isoformat(sep=' ', timespec='minutes')} to {until}</title></rect>"
            + (f'<text x="{start + 4:.1f}" y="{4 + lane * LANE + 14}">'
               f"{escape(_short(label, int(width / 7)))}</text>" if width > 28 else "")
            + "</g>")
    body.append(f'<text class="tick" x="{left}" y="{height - 8}">'
                f"{first.date().isoformat()}</text>")
    body.append(f'<text class="tick" x="{WIDTH - right}" y="{height - 8}" text-anchor="end">'
                f"{last.date().isoformat()}</text>")
    description = "; ".join(_said(p) for p in periods)
    return _figure(f"what {environment} served over time", description, height, body)


def _said(period: Period) -> str:
    """A period in words, for the timeline's text alternative."""
    role = (f" canary {period.canary_traffic}%" if period.canary_traffic is not None else "")
    until = period.end.isoformat(sep=" ", timespec="minutes") if period.end else "now"
    return (f"{period.version}{role}{' (rollback)' if period.rollback else ''} from "
            f"{period.start.isoformat(sep=' ', timespec='minutes')} to {until}")


class Edge(NamedTuple):
    """A source (a dataset version or another model version) a version was made from."""

    source: str  # shown as NAME@VERSION
    source_kind: str
    target: str  # a version of the model
    via: str


def lineage_graph(model: str, versions: list[str], edges: list[Edge]) -> str:
    """Datasets and other models' versions (left) to this model's versions (right), a line
    per edge; a version derived from another of this model is linked on the right."""
    sources = sorted({e.source for e in edges if e.source not in _own(model, versions)})
    rows = max(len(sources), len(versions), 1)
    height = rows * LANE + 10
    left_x, right_x, box = 8, WIDTH - 208, 200
    position = {name: 5 + i * LANE for i, name in enumerate(sources)}
    own = {f"{model}@{v}": 5 + i * LANE for i, v in enumerate(versions)}
    body = []
    for edge in edges:
        target = own.get(f"{model}@{edge.target}")
        if target is None:
            continue
        said = (f"<title>{escape(edge.source)} -&gt; {escape(model)}@{escape(edge.target)} "
                f"({escape(edge.via)})</title>")
        if edge.source in own:  # derived from another version of this model
            start, bend = own[edge.source], right_x + box + 24
            body.append(f'<path class="edge derived" d="M{right_x + box},{start + 10} '
                        f'C{bend},{start + 10} {bend},{target + 10} {right_x + box},'
                        f'{target + 10}">{said}</path>')
        elif edge.source in position:
            start = position[edge.source]
            body.append(f'<line class="edge" x1="{left_x + box}" y1="{start + 10}" '
                        f'x2="{right_x}" y2="{target + 10}">{said}</line>')
    for name, y in position.items():
        body.append(f'<g class="node source"><rect x="{left_x}" y="{y}" width="{box}" '
                    f'height="20" rx="3"/><text x="{left_x + 6}" y="{y + 14}">'
                    f"{escape(_short(name, 27))}</text></g>")
    for name, y in own.items():
        body.append(f'<g class="node version"><rect x="{right_x}" y="{y}" width="{box}" '
                    f'height="20" rx="3"/><text x="{right_x + 6}" y="{y + 14}">'
                    f"{escape(_short(name, 27))}</text></g>")
    description = "; ".join(f"{e.source} -> {model}@{e.target} ({e.via})" for e in edges) or (
        "no lineage recorded")
    return _figure(f"lineage of {model}", description, height, body)


def _own(model: str, versions: list[str]) -> set[str]:
    return {f"{model}@{v}" for v in versions}


def _short(text: str, room: int) -> str:
    """text cut to room characters, an ellipsis saying so (the full text is in the title)."""
    room = max(room, 2)
    return text if len(text) <= room else text[:room - 1] + "…"

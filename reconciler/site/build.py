"""`reconciler site`: the registry's pages, built from the database with the queries `audit`
uses, written all or nothing.

The pages are static files: no server, nothing fetched from elsewhere when they are viewed,
one stylesheet and one script shared by all (the index's search; every table reads without
it). Charts, timelines and lineage graphs are SVG drawn here (see svg.py). Everything a pull
request wrote (names, descriptions, metric keys, commit messages, authors) goes through
Jinja2's autoescaping: text on the page, never markup.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from typing import Any, NamedTuple

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.files import put_in_place
from reconciler.site import svg
from reconciler.times import parse_moment

MARKER = ".reconciler-site"  # in every folder this writes: only such a folder is replaced
STATIC = ("site.css", "search.js")
_PAGE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,200}")
_SHA = re.compile(r"[0-9a-f]{7,64}")


class SiteResult(NamedTuple):
    """Where the site was written, its pages, its size and its largest page."""

    out: str
    pages: int
    total_bytes: int
    largest: tuple[str, int]


class Check(NamedTuple):
    """The tamper check's result at build time, as the pages say it."""

    ok: bool
    text: str


def build(root: str, url: str | None, out: str, *, commit_url: str | None = None) -> SiteResult:
    """Build the site of root's registry from the database at url into out (replaced whole,
    and only if it is a site this built or an empty folder)."""
    from reconciler.registry import queries
    from reconciler.registry.verify import verify

    if commit_url is not None and not re.match(r"https?://", commit_url):
        raise ReconcilerError(f"--commit-url '{printable(commit_url)}' is not an http(s) URL "
                              "template (e.g. https://github.com/org/repo/commit/{sha})")
    out = os.path.abspath(out)
    _check_replaceable(out)
    problems = verify(root, url, against_git=False)
    check = Check(not problems, "ok: the hash chain is whole" if not problems else
                  f"FAILED at {problems[0].where}: {problems[0].message}")
    with queries.reading(root, url) as (connection, repo_id):
        registry = queries.whole_registry(connection, repo_id)
    files = pages(registry, check, commit_url, parse_moment("now"))
    return _write(out, files)


HISTORY_ROWS = 500  # serving periods per page of an environment's history (pages < 500 KB)
LOG_ROWS = 500  # events per page of a model's audit log


def pages(registry: Any, check: Check, commit_url: str | None, built: datetime
          ) -> Iterator[tuple[str, bytes]]:
    """Every file of the site (relative path, bytes) for the registry's rows, one at a time
    (a thousand models' pages are tens of megabytes: written as they come)."""
    jinja = _environment(commit_url)
    site = {"check": check, "commit": registry.commit, "built": built,
            "subjects": registry.subjects}
    model_pages = {m["model"]: page_name(m["model"]) for m in registry.models}
    env_names = sorted({e["name"] for e in registry.environments}
                       | {p["environment"] for p in registry.periods})
    env_pages = {name: page_name(name) for name in env_names}
    dataset_pages = {name: page_name(name) for name in registry.datasets}
    periods = _periods(registry.periods, _rollbacks(registry.events))
    events = defaultdict(list)
    for event in registry.events:
        events[event["model"]].append(event)
    edges = defaultdict(list)
    for edge in registry.edges:
        edges[edge["target_name"]].append(edge)

    yield _page(jinja, site, "index.html", "index.html", title="Models", section="models",
                environments=env_names, models=[
                    _index_row(m, model_pages, events.get(m["model"], []))
                    for m in registry.models])
    for model in registry.models:
        name = model["model"]
        yield from _with_older_pages(
            jinja, site, f"models/{model_pages[name]}", "model.html", "audit-log.html",
            events.get(name, [])[::-1], LOG_ROWS, name=name, what="audit log",
            section="models", model=model, env_pages=env_pages,
            description=registry.descriptions.get(name),
            **_model_context(model, periods.get(name, {}), edges.get(name, []), model_pages,
                             dataset_pages, built))
    serving_now = _serving_by_environment(registry.models, model_pages)
    environments = [_environment_row(e, env_pages, serving_now, periods, model_pages)
                    for e in _all_environments(registry.environments, env_names)]
    yield _page(jinja, site, "environments.html", "environments.html", title="Environments",
                section="environments", environments=environments)
    for env in environments:
        yield from _with_older_pages(
            jinja, site, f"environments/{env['page']}", "environment.html", "periods.html",
            env["periods"][::-1], HISTORY_ROWS, name=env["name"], what="history",
            section="environments", env=env)
    datasets = [_dataset_row(name, versions, dataset_pages, registry.edges, model_pages)
                for name, versions in registry.datasets.items()]
    yield _page(jinja, site, "datasets.html", "datasets.html", title="Datasets",
                section="datasets", datasets=datasets)
    for dataset in datasets:
        yield _page(jinja, site, f"datasets/{dataset['page']}", "dataset.html",
                    title=dataset["name"], section="datasets", dataset=dataset,
                    description=registry.dataset_descriptions.get(dataset["name"]))
    for name in STATIC:
        yield f"static/{name}", resources.files("reconciler.site").joinpath(
            "static", name).read_bytes()
    yield MARKER, b"written by `reconciler site`: the whole folder is replaced on each build\n"


def _with_older_pages(jinja: Any, site: dict[str, Any], path: str, template: str,
                      table: str, rows: list[Any], size: int, *, name: str, what: str,
                      **context: Any) -> Iterator[tuple[str, bytes]]:
    """The page at path showing the first size rows (newest first) in table, and a page of
    each older size rows, linked from it: history/<its name>/<n>.html beside it."""
    parts = [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]
    kind, page = path.split("/")
    folder = f"history/{page.removesuffix('.html')}"
    yield _page(jinja, site, path, template, title=name, what=what, rows=parts[0],
                older=[f"{folder}/{n}.html" for n in range(2, len(parts) + 1)], **context)
    for number, part in enumerate(parts[1:], start=2):
        yield _page(jinja, site, f"{kind}/{folder}/{number}.html", "older-page.html",
                    title=f"{name}: {what}, page {number}", name=name, what=what, table=table,
                    back=path, rows=part, number=number, pages=len(parts), **context)


def _page(jinja: Any, site: dict[str, Any], path: str, template: str, **context: Any
          ) -> tuple[str, bytes]:
    """One page: its path and its bytes, with links relative to where it is."""
    root = "../" * path.count("/")
    return path, jinja.get_template(template).render(root=root, **site, **context).encode()


def page_name(name: str) -> str:
    """The file of a name's page: the name itself when it is a plain file name (names are
    DNS labels), else a digest of it (a name from history may be anything)."""
    if _PAGE_NAME.fullmatch(name) and not name.endswith("."):
        return f"{name}.html"
    return "n-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24] + ".html"


def _environment(commit_url: str | None) -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup, escape

    jinja = Environment(loader=PackageLoader("reconciler.site", "templates"),
                        autoescape=True, undefined=StrictUndefined, trim_blocks=False)

    def commit_link(sha: Any) -> Markup:
        sha = str(sha or "").strip()
        short = escape(sha[:12])
        if commit_url is None or not _SHA.fullmatch(sha):
            return Markup(f"<code>{short}</code>")
        href = escape(commit_url.replace("{sha}", sha))
        return Markup(f'<a href="{href}"><code>{short}</code></a>')

    jinja.globals["commit_link"] = commit_link
    jinja.filters["when"] = _when
    jinja.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True,
                                                              default=str)
    return jinja


def _when(moment: Any) -> str:
    if not isinstance(moment, datetime):
        return ""
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes") + " UTC"


def _index_row(model: dict[str, Any], model_pages: dict[str, str],
               events: list[dict[str, Any]]) -> dict[str, Any]:
    serving = {env: s["version"] + (f" (+{s['canary']['version']} {s['canary']['traffic']}%)"
                                    if s.get("canary") else "")
               for env, s in model["serving"].items() if s.get("version")}
    versions = [v["version"] for v in model["versions"]]
    newest = versions[-1] if versions else None
    words = [model["model"], model["owner"] or "", model["framework"], *versions]
    return {"name": model["model"], "page": model_pages[model["model"]],
            "owner": model["owner"], "retired": model["retired"], "newest": newest,
            "serving": serving, "search": " ".join(words).lower(),
            "served_in": " ".join(sorted(serving)),
            "last_change": events[-1]["landed"] if events else None}


def _rollbacks(events: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(model, environment, version, commit) of every assignment recorded as a rollback."""
    return {(e["model"], e["environment"], e["version"], str(e["commit"]).rstrip(" "))
            for e in events if e["event"].startswith("stage.") and isinstance(
                e["payload"], dict) and e["payload"].get("kind") == "rollback"}


def _periods(rows: list[dict[str, Any]], rollbacks: set[tuple[str, str, str, str]]
             ) -> dict[str, dict[str, list[svg.Period]]]:
    """model -> environment -> its serving periods, oldest first."""
    found: dict[str, dict[str, list[svg.Period]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        commit = str(row["valid_from_commit"]).rstrip(" ")
        found[row["model"]][row["environment"]].append(svg.Period(
            row["version"], row["valid_from"], row["valid_to"],
            row["traffic"] if row["role"] != "primary" else None,
            (row["model"], row["environment"], row["version"], commit) in rollbacks))
    return found


def _model_context(model: dict[str, Any], periods: dict[str, list[svg.Period]],
                   edges: list[dict[str, Any]], model_pages: dict[str, str],
                   dataset_pages: dict[str, str], built: datetime) -> dict[str, Any]:
    versions = model["versions"]
    keys = sorted({key for v in versions for key in (v["metrics"] or {})})
    charts = []
    for key in keys:
        points = [(v["version"], float(v["metrics"][key])) for v in versions
                  if isinstance((v["metrics"] or {}).get(key), int | float)]
        if points:
            charts.append({"metric": key, "svg": svg.metric_chart(key, points)})
    timelines = [{"environment": env, "periods": listed,
                  "svg": svg.timeline(env, listed, built.replace(tzinfo=None))}
                 for env, listed in sorted(periods.items())]
    shown = [{"source": f"{e['source_name']}@{e['source_version']}",
              "target": e["target_version"], "via": e["via"],
              "page": (f"datasets/{dataset_pages[e['source_name']]}"
                       if e["source_kind"] == "Dataset" and e["source_name"] in dataset_pages
                       else f"models/{model_pages[e['source_name']]}"
                       if e["source_kind"] == "Model" and e["source_name"] in model_pages
                       else None)} for e in edges]
    graph = svg.lineage_graph(model["model"], [v["version"] for v in versions],
                              [svg.Edge(e["source"], "", e["target"], e["via"]) for e in shown])
    return {"metric_keys": keys, "charts": charts, "timelines": timelines, "edges": shown,
            "lineage_svg": graph}


def _serving_by_environment(models: list[dict[str, Any]], model_pages: dict[str, str]
                            ) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in models:
        for env, serving in sorted(model["serving"].items()):
            if serving.get("version") or serving.get("canary"):
                found[env].append({"model": model["model"], "page": model_pages[model["model"]],
                                   **serving})
    return found


def _all_environments(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """The environments the database knows, and any named only by a serving period."""
    known = {row["name"]: row for row in rows}
    return [known.get(name, {"name": name, "namespace": None, "target": None, "spec": {},
                             "retired_commit": None}) for name in names]


def _environment_row(row: dict[str, Any], env_pages: dict[str, str],
                     serving_now: dict[str, list[dict[str, Any]]],
                     periods: dict[str, dict[str, list[svg.Period]]],
                     model_pages: dict[str, str]) -> dict[str, Any]:
    name = row["name"]
    spec = row["spec"] if isinstance(row["spec"], dict) else {}
    listed = spec.get("approvers")
    approvers = listed if isinstance(listed, list) else []
    history = sorted(({"model": model, "page": model_pages.get(model, page_name(model)),
                       **period._asdict()}
                      for model, by_env in periods.items() for period in by_env.get(name, [])),
                     key=lambda p: (p["start"], p["model"]))
    return {"name": name, "page": env_pages[name], "target": row["target"] or None,
            "namespace": row["namespace"] or None, "approvers": [str(a) for a in approvers],
            "retired": row["retired_commit"] is not None, "serves": serving_now.get(name, []),
            "periods": history}


def _dataset_row(name: str, versions: list[dict[str, Any]], dataset_pages: dict[str, str],
                 edges: list[dict[str, Any]], model_pages: dict[str, str]) -> dict[str, Any]:
    trained: dict[str, list[dict[str, str]]] = defaultdict(list)
    for edge in edges:
        if edge["source_kind"] == "Dataset" and edge["source_name"] == name:
            trained[edge["source_version"]].append({
                "model": edge["target_name"], "version": edge["target_version"],
                "page": model_pages.get(edge["target_name"], page_name(edge["target_name"]))})
    return {"name": name, "page": dataset_pages[name],
            "versions": [{**v, "models": trained.get(v["version"], [])} for v in versions]}


def _check_replaceable(out: str) -> None:
    """out is replaced whole: only a site this wrote, an empty folder, or nothing."""
    if os.path.islink(out) or (os.path.exists(out) and not os.path.isdir(out)):
        raise ReconcilerError(f"{out} is not a folder: nothing was written")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, MARKER)):
        raise ReconcilerError(f"{out} holds files `reconciler site` did not write: name an "
                              "empty or new folder with --out; nothing was written")


def _write(out: str, files: Iterator[tuple[str, bytes]]) -> SiteResult:
    """Write every file into a folder beside out, then put it in out's place."""
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    made = tempfile.mkdtemp(prefix=".reconciler-site-", dir=parent)
    count, total, largest = 0, 0, ("", 0)
    try:
        for relative, data in files:
            path = os.path.join(made, *relative.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "xb") as handle:
                handle.write(data)
            total += len(data)
            if relative.endswith(".html"):
                count += 1
                largest = max(largest, (relative, len(data)), key=lambda item: item[1])
        os.chmod(made, 0o755)  # mkdtemp's 0700 would keep a web server out
        put_in_place(made, out, replace=True)
    except OSError as error:
        raise ReconcilerError(f"cannot write the site to {out}: {error.strerror or error}; "
                              "nothing was written") from None
    finally:
        if os.path.isdir(made):
            shutil.rmtree(made, ignore_errors=True)
    return SiteResult(out, count, total, largest)

"""show and audit ... on a real reconciled history, on every back end, with known answers.

The history (tests/test_apply.build_history, then a merge and a force push), for fraud in
production: 1.0.0 from 2024-06-01T10:00Z; a canary of 1.1.0 at 20% from 07-02 10:00; 1.1.0
from 07-03 10:00; rolled back to 1.0.0 07-04 03:00; 1.1.0 again by a --no-ff merge landed
07-09 10:00 (proposed by Frank, merged by Carol); that merge force-pushed away and replaced
by 1.0.0 with a canary of 1.1.0 at 5%, landed 07-10 08:00. churn served staging from 07-05
12:00 until its retirement 07-06 12:00.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from reconciler import api, reconcile
from reconciler.diagnostics import NotFound, ReconcilerError
from reconciler.registry import db, queries, store, tables
from reconciler.report import listing
from tests.conftest import PROJECT, Registry, _scratch_database, copy_registry, server_url
from tests.test_apply import AUTHORS, FRAUD, build_history

FRANK = "Frank Proposer <frank@example.com>"
MERGE_DATE = "2024-07-09T10:00:00+00:00"
REVIEWER = "Erin Review <erin@example.com>"


def _fraud(registry: Registry, production: str, staging: str = "1.1.0",
           extra_versions: str = "") -> None:
    """fraud with 1.0.0 (deprecated) and 1.1.0, plus extra_versions, serving as given."""
    old, new = _digests(registry)
    registry.write(FRAUD, f"""\
apiVersion: reconciler/v1
kind: Model
metadata:
  name: fraud
  owner: ml@example.com
spec:
  framework: sklearn
  versions:
    - version: "1.0.0"
      deprecated: true
      artifact: models/fraud.pkl
      digest: {old}
      metrics: {{auc: 0.93}}
    - version: "1.1.0"
      artifact: models/fraud.pkl
      digest: {new}
      metrics: {{auc: 0.93}}
{extra_versions.format(digest=new)}  stages:
    staging: {{version: "{staging}"}}
    production:
{production}      replicas: {{min: 2, max: 4}}
""")


def _digests(registry: Registry) -> tuple[str, str]:
    text = (registry.root / FRAUD).read_text()
    digests = [line.split("digest: ")[1] for line in text.splitlines() if "digest: " in line]
    return digests[0], digests[1]


CHAIN = """\
    - version: "1.2.0"
      artifact: models/fraud.pkl
      digest: {digest}
      parent: "1.1.0"
      metrics: {{auc: 0.95}}
    - version: "1.3.0"
      artifact: models/fraud.pkl
      digest: {digest}
      parent: "1.2.0"
      trainedOn: [{{dataset: transactions, version: "2024-06"}}]
      metrics: {{auc: 0.97}}
"""


@pytest.fixture(scope="module")
def merged_template(registry_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build_history, then a pull request by Frank merged with --no-ff by Carol."""
    base = tmp_path_factory.mktemp("audited")
    registry = copy_registry(registry_template, base)
    build_history(registry)
    registry.repo.git.checkout("-q", "-b", "feature")
    _fraud(registry, '      version: "1.1.0"\n')
    registry.commit("Promote fraud 1.1.0 again", FRANK, "2024-07-08T09:00:00+02:00")
    registry.repo.git.checkout("-q", "main")
    env = {**os.environ, "GIT_AUTHOR_DATE": MERGE_DATE, "GIT_COMMITTER_DATE": MERGE_DATE}
    subprocess.run(["git", "-c", "user.name=Carol Ops", "-c", "user.email=carol@example.com",
                    "merge", "-q", "--no-ff", "feature", "-m", "Merge pull request #7", "-m",
                    f"Reviewed-by: {REVIEWER}\nApproved-by: grace@example.com"],
                   cwd=registry.root, env=env, check=True)
    registry.repo.close()
    return base


@pytest.fixture(scope="module", params=["sqlite", "mariadb", "postgresql"])
def audited(request: pytest.FixtureRequest, merged_template: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, str]]:
    """The history applied up to the merge, then force-pushed over and applied again."""
    registry = copy_registry(merged_template, tmp_path_factory.mktemp(request.param))
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{registry.root.parent / 'registry.sqlite'}"
    else:
        url, drop = _scratch_database(server_url(request.param))
    try:
        api.db_upgrade(str(registry.root), url)
        reconcile.sync(str(registry.root), url, "HEAD")
        registry.repo.git.reset("--hard", "HEAD~1")  # the merge is force-pushed away
        _fraud(registry, '      version: "1.0.0"\n      canary: {version: "1.1.0", traffic: 5}\n',
               staging="1.3.0", extra_versions=CHAIN)
        registry.commit("Canary 1.1.0 again; 1.2.0 and 1.3.0", AUTHORS["dave"],
                        "2024-07-10T08:00:00+00:00")
        assert reconcile.sync(str(registry.root), url, "HEAD").rewritten
        yield registry, url
    finally:
        registry.repo.close()
        if drop is not None:
            drop()


def _rows(found: listing.Listing) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(listing.formatted(found, "json"))["rows"]
    return data


def _served(registry: Registry, url: str, when: str, env: str = "production"
            ) -> list[tuple[str, str | None, Any]]:
    rows = _rows(api.audit_at(str(registry.root), url, when=when, env=env))
    return [(r["model"], r["version"], r["canary"] and (r["canary"]["version"],
                                                        r["canary"]["traffic"])) for r in rows]


@pytest.mark.parametrize("when, expected", [
    ("2024-06-15T00:00:00Z", [("fraud", "1.0.0", None)]),
    ("2024-07-02T12:00:00Z", [("fraud", "1.0.0", ("1.1.0", 20))]),  # the canary
    ("2024-07-03T10:00:00Z", [("fraud", "1.1.0", None)]),  # the moment it landed
    ("2024-07-04T02:59:59Z", [("fraud", "1.1.0", None)]),
    ("2024-07-04T03:00:00Z", [("fraud", "1.0.0", None)]),  # the rollback
    ("2024-07-09T12:00:00Z", [("fraud", "1.1.0", None)]),  # the merge (force-pushed later)
    ("2024-07-11T00:00:00Z", [("fraud", "1.0.0", ("1.1.0", 5))]),
    ("2024-05-01T00:00:00Z", []),  # before the first commit
])
def test_audit_at_answers_what_served_production(audited: tuple[Registry, str], when: str,
                                                 expected: list[Any]) -> None:
    assert _served(*audited, when) == expected


def test_three_offsets_of_one_moment_give_one_answer(audited: tuple[Registry, str]) -> None:
    moments = ["2024-07-02T12:00:00", "2024-07-02T14:00:00+02:00", "2024-07-02T07:00:00-05:00",
               "2024-07-02T12:00Z", "2024-07-02 12:00:00+00:00"]
    answers = [_served(*audited, when) for when in moments]
    assert answers == [answers[0]] * len(moments) and answers[0][0][2] == ("1.1.0", 20)


def test_a_time_between_two_commits_and_a_retirement(audited: tuple[Registry, str]) -> None:
    assert _served(*audited, "2024-07-05T18:00:00Z", "staging") == [
        ("churn", "0.1.0", None), ("fraud", "1.1.0", None)]
    assert _served(*audited, "2024-07-06T13:00:00Z", "staging") == [("fraud", "1.1.0", None)]


def test_show_is_the_registry_now(audited: tuple[Registry, str]) -> None:
    registry, url = audited
    rows = {r["model"]: r for r in _rows(api.show(str(registry.root), url))}
    assert rows["churn"]["retired"] and rows["churn"]["serving"] == {}
    fraud = rows["fraud"]
    assert [v["version"] for v in fraud["versions"]] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    assert fraud["versions"][0]["deprecated"] and fraud["versions"][3]["metrics"] == {
        "auc": 0.97}
    production = fraud["serving"]["production"]
    assert production["version"] == "1.0.0" and production["canary"]["traffic"] == 5
    assert production["canary"]["version"] == "1.1.0"
    assert production["digest"].startswith("md5:") and production["since"] == (
        "2024-07-10T08:00:00Z")
    assert fraud["serving"]["staging"]["version"] == "1.3.0"
    one = api.show(str(registry.root), url, model="fraud")
    assert [c[0] for c in one.cells] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    assert one.cells[0][4] == "deprecated" and one.cells[0][5] == "production"
    assert one.cells[1][5] == "production (canary 5%)" and one.cells[3][5] == "staging"
    only = _rows(api.show(str(registry.root), url, env="staging"))
    assert {r["model"]: list(r["serving"]) for r in only}["fraud"] == ["staging"]


def test_history_is_every_event_with_who_and_when(audited: tuple[Registry, str]) -> None:
    registry, url = audited
    rows = _rows(api.audit_history(str(registry.root), url, model="fraud", env="production"))
    moves = [(r["event"], r["landed"], r["author_email"]) for r in rows
             if r["event"] in ("stage.assigned", "canary.changed")]
    assert moves == [
        ("stage.assigned", "2024-06-01T10:00:00Z", "ada@example.com"),
        ("canary.changed", "2024-07-02T10:00:00Z", "carol@example.com"),
        ("stage.assigned", "2024-07-03T10:00:00Z", "carol@example.com"),
        ("canary.changed", "2024-07-03T10:00:00Z", "carol@example.com"),
        ("stage.assigned", "2024-07-04T03:00:00Z", "dave@example.com"),
        ("stage.assigned", "2024-07-09T10:00:00Z", "carol@example.com"),  # the merge lands
        ("stage.assigned", "2024-07-10T08:00:00Z", "dave@example.com"),  # after the force push
        ("canary.changed", "2024-07-10T08:00:00Z", "dave@example.com")]
    merge = next(r for r in rows if r["landed"] == "2024-07-09T10:00:00Z")
    assert merge["people"] == {
        "proposer": [{"name": "Frank Proposer", "email": "frank@example.com"}],
        "merger": [{"name": "Carol Ops", "email": "carol@example.com"}],
        "reviewer": [{"name": "Erin Review", "email": "erin@example.com"}],
        "approver": [{"name": "", "email": "grace@example.com"}]}
    assert merge["authored"] == "2024-07-09T10:00:00Z"  # the merge commit's own
    direct = next(r for r in rows if r["landed"] == "2024-07-04T03:00:00Z")
    assert direct["people"] == {"proposer": [{"name": "Dave Oncall", "email": "dave@example.com"}],
                                "merger": [{"name": "Dave Oncall", "email": "dave@example.com"}]}
    rollback = next(r for r in rows if r["landed"] == "2024-07-04T03:00:00Z")
    assert rollback["change"] == "rollback: 1.1.0 -> 1.0.0"
    assert rollback["payload"] == {"from": "1.1.0", "to": "1.0.0", "kind": "rollback"}
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs)
    window = _rows(api.audit_history(str(registry.root), url, model="fraud",
                                     since="2024-07-03T12:00:00+02:00",
                                     until="2024-07-04T05:00:00+02:00"))
    assert [(r["event"], r["landed"]) for r in window] == [
        ("stage.assigned", "2024-07-03T10:00:00Z"), ("canary.changed", "2024-07-03T10:00:00Z"),
        ("stage.updated", "2024-07-03T10:00:00Z"), ("stage.assigned", "2024-07-04T03:00:00Z")]
    staged = next(r for r in _rows(api.audit_history(str(registry.root), url, model="fraud",
                                                     env="staging"))
                  if r["author_email"] == "bob@example.com")
    assert (staged["authored"], staged["author_tz"]) == ("2024-07-01T07:00:00Z", "+02:00")
    assert rows[0]["author_tz"] == "+00:00"
    shifted = _rows(api.audit_history(str(registry.root), url, model="fraud", tz="+02:00"))
    assert shifted[0]["landed"] == "2024-06-01T12:00:00+02:00"


def test_who_and_diff(audited: tuple[Registry, str]) -> None:
    registry, url = audited
    dave = _rows(api.audit_who(str(registry.root), url, author="dave@example.com",
                               event="stage.assigned"))
    assert [(r["model"], r["environment"], r["change"]) for r in dave] == [
        ("fraud", "production", "rollback: 1.1.0 -> 1.0.0"),
        ("fraud", "production", "rollback: 1.1.0 -> 1.0.0"),
        ("fraud", "staging", "promotion: 1.1.0 -> 1.3.0")]
    frank = _rows(api.audit_who(str(registry.root), url, author="frank@example.com"))
    assert [(r["event"], r["landed"]) for r in frank] == [
        ("stage.assigned", "2024-07-09T10:00:00Z")]  # proposed, not authored, by Frank
    changed = _rows(api.audit_diff(str(registry.root), url, first="2024-07-02T12:00:00Z",
                                   second="2024-07-05T18:00:00Z"))
    assert [(r["environment"], r["model"]) for r in changed] == [
        ("production", "fraud"), ("staging", "churn")]
    assert changed[0]["before"]["canary"]["traffic"] == 20 and changed[0]["after"][
        "canary"] is None
    assert changed[1]["before"] is None and changed[1]["after"]["version"] == "0.1.0"
    text = listing.formatted(api.audit_diff(str(registry.root), url, first="2024-07-02T12:00Z",
                                            second="2024-07-05T18:00Z", env="production"),
                             "text", terminal=False)
    assert text.splitlines()[1].split() == ["production", "fraud", "1.0.0", "+", "canary",
                                            "1.1.0", "at", "20%", "1.0.0"]


def test_lineage_is_transitive_and_bounded(audited: tuple[Registry, str]) -> None:
    registry, url = audited
    up = _rows(api.audit_lineage(str(registry.root), url, subject="fraud@1.3.0"))
    assert [(r["depth"], r["source"], r["target"]) for r in up] == [
        (1, "transactions@2024-06", "fraud@1.3.0"), (1, "fraud@1.2.0", "fraud@1.3.0"),
        (2, "fraud@1.1.0", "fraud@1.2.0")]
    near = _rows(api.audit_lineage(str(registry.root), url, subject="fraud@1.3.0", depth=1))
    assert [r["depth"] for r in near] == [1, 1]
    down = _rows(api.audit_lineage(str(registry.root), url, subject="transactions@2024-06",
                                   downstream=True))
    assert sorted(r["target"] for r in down) == ["churn@0.1.0", "fraud@1.3.0"]
    derived = _rows(api.audit_lineage(str(registry.root), url, subject="fraud@1.1.0",
                                      downstream=True))
    assert [(r["depth"], r["target"]) for r in derived] == [(1, "fraud@1.2.0"),
                                                             (2, "fraud@1.3.0")]
    graph = listing.lineage_graph(up, "mermaid")
    assert graph.startswith("flowchart LR") and graph.count(" --> ") == 3
    dot = listing.lineage_graph(up, "dot")
    assert dot.startswith("digraph lineage {") and dot.count(" -> ") == 3


def test_compare_puts_metrics_side_by_side(audited: tuple[Registry, str]) -> None:
    registry, url = audited
    rows = _rows(api.audit_compare(str(registry.root), url, model="fraud",
                                   versions=["1.1.0", "1.2.0", "1.3.0"], metric="auc"))
    assert [(r["version"], r["metrics"]["auc"]) for r in rows] == [
        ("1.1.0", 0.93), ("1.2.0", 0.95), ("1.3.0", 0.97)]
    assert rows[0]["deltas"] == {} and round(rows[2]["deltas"]["auc"], 6) == 0.02
    served = {(p["environment"], p["role"], p["from"]) for p in rows[0]["served"]}
    assert ("production", "canary", "2024-07-02T10:00:00Z") in served
    assert ("staging", "primary", "2024-07-01T07:00:00Z") in served


@pytest.mark.parametrize("call, message", [
    (lambda r, u: api.show(r, u, model="nope"), "no model 'nope' in the registry (it has churn, "
                                          "fraud)"),
    (lambda r, u: api.audit_at(r, u, when="2024-07-01", env="prod"), "no environment 'prod'"),
    (lambda r, u: api.audit_history(r, u, model="nope"), "no model 'nope'"),
    (lambda r, u: api.audit_history(r, u, model="nope", since="2030-01-01"), "no model 'nope'"),
    (lambda r, u: api.audit_lineage(r, u, subject="fraud@9.9.9"), "no version '9.9.9'"),
    (lambda r, u: api.audit_compare(r, u, model="fraud", versions=["9"]), "has no version 9"),
])
def test_unknown_names_are_one_clear_message(audited: tuple[Registry, str], call: Any,
                                             message: str) -> None:
    registry, url = audited
    with pytest.raises(NotFound, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(str(registry.root), url)


def test_a_known_model_without_events_in_the_span_is_an_empty_history(
        audited: tuple[Registry, str]) -> None:
    registry, url = audited
    assert _rows(api.audit_history(str(registry.root), url, model="fraud",
                                   since="2030-01-01")) == []


def test_queries_run_with_the_cyclic_collector_paused_and_leave_it_as_found(
        audited: tuple[Registry, str]) -> None:
    registry, url = audited
    assert gc.isenabled()
    with queries.reading(str(registry.root), url) as (connection, repo_id):
        assert not gc.isenabled()
        assert queries.history(connection, repo_id, "fraud", None, None, None)
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        with queries.reading(str(registry.root), url):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("command", [["show"], ["audit", "history", "fraud"]])
def test_the_read_commands_load_no_parser_and_no_orm(audited: tuple[Registry, str],
                                                     command: list[str]) -> None:
    # Start-up is most of a read command's time (bench/gto.py): what it has no use for stays
    # unloaded. Another back end's dialect is among it (the MySQL one is 12 to 15 ms).
    registry, url = audited
    unused = ["pydantic", "yaml", "jinja2", "sqlalchemy.orm", "alembic", "rich",
              "reconciler.loader", "reconciler.catalog", "reconciler.replay"]
    if not url.startswith("mysql"):
        unused.append("sqlalchemy.dialects.mysql")
    probe = ("import json, sys; from reconciler import cli; code = cli.main(["
             f"*{command!r}, '--repo', {str(registry.root)!r}, '--db', {url!r}, '--format', "
             f"'json']); print(json.dumps([m for m in {unused!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_command_line_prints_text_json_and_csv(audited: tuple[Registry, str]) -> None:
    registry, url = audited

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", *args, "--db", url],
                              cwd=registry.root, capture_output=True, text=True, check=False)

    shown = run("show", "--format", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["format_version"] == 1
    table = list(csv.reader(io.StringIO(run("audit", "at", "2024-07-02T14:00:00+02:00",
                                            "--format", "csv").stdout)))
    assert table[0] == ["environment", "model", "version", "digest", "canary", "since",
                        "commit"]
    assert [[*row[:3], row[4]] for row in table[1:]] == [
        ["production", "fraud", "1.0.0", "1.1.0 at 20%"], ["staging", "fraud", "1.1.0", ""]]
    text = run("audit", "history", "fraud", "--env", "production")
    assert text.returncode == 0 and text.stdout.splitlines()[0].split()[:3] == [
        "landed", "authored", "name"]
    unknown = run("audit", "history", "nope")
    assert unknown.returncode == 1 and unknown.stderr.startswith("reconciler: error: no model")
    bad = run("audit", "at", "last tuesday")
    assert bad.returncode == 2 and "is not an ISO-8601 time" in bad.stderr
    mermaid = run("audit", "lineage", "fraud@1.3.0", "--format", "mermaid")
    assert mermaid.stdout.startswith("flowchart LR")


def test_no_database_and_an_empty_one_say_what_to_run(registry: Registry, tmp_path: Path
                                                      ) -> None:
    with pytest.raises(ReconcilerError, match="run `reconciler apply` first"):
        api.show(str(registry.root))
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    sqlalchemy.create_engine(empty).connect().close()
    with pytest.raises(ReconcilerError, match="holds no registry: run `reconciler apply`"):
        api.show(str(registry.root), empty)
    engine = db.make_engine(sqlalchemy.make_url(empty))
    db.upgrade(engine)
    engine.dispose()
    with pytest.raises(ReconcilerError, match="has no history of repository 'repo'"):
        api.show(str(registry.root), empty)


def test_text_escapes_what_commits_hold_and_csv_defuses_formulas() -> None:
    found = listing.Listing("t", ["who", "delta"], [["=HYPERLINK(\"x\")\x1b[2J", "-0.5"]],
                            [])
    plain = listing.formatted(found, "text", terminal=False)
    assert "\x1b" not in plain and "\\x1b[2J" in plain
    rich = listing.formatted(found, "text", terminal=True)
    assert "\x1b[2J" not in rich
    assert list(csv.reader(io.StringIO(listing.formatted(found, "csv"))))[1] == [
        "'=HYPERLINK(\"x\")\x1b[2J", "-0.5"]


README = PROJECT / "README.md"


def _documented_sql() -> list[str]:
    """The ```sql blocks of the README's "SQL for BI tools", as written there."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### SQL for BI tools"):text.index("### pre-commit")]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def _moment_literal(backend: str, iso: str) -> str:
    """:t written as the README's table says for backend, for the moment iso (with offset)."""
    text = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (SQLite|PostgreSQL|MySQL, MariaDB, TiDB) \| `(.*)` \|$", text,
                           re.M))
    template = rows[{"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend,
                                                                        "MySQL, MariaDB, TiDB")]
    example = "2024-05-14T16:00:00+02:00"
    offset = iso[19:] if iso[19:] not in ("Z", "") else "+00:00"
    return (template.replace(example, iso).replace(example[:10] + " " + example[11:19],
                                                   iso[:10] + " " + iso[11:19])
            .replace("'+02:00'", f"'{offset}'"))


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = db.make_engine(sqlalchemy.make_url(url))
    try:
        with engine.connect() as connection:
            return [tuple(_plain(v) for v in row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    """A value as the same Python value on every back end (times as 'YYYY-MM-DD HH:MM:SS')."""
    if hasattr(value, "isoformat"):
        value = value.isoformat(sep=" ")
    if isinstance(value, str):
        value = value.rstrip()
        if re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?", value):
            return value[:19].replace("T", " ")
    return value


@pytest.mark.parametrize("moment", ["2024-07-02T12:00:00Z", "2024-07-02T14:00:00+02:00",
                                    "2024-07-02T07:00:00-05:00", "2024-07-04T03:00:00+00:00"])
def test_the_readme_queries_answer_as_the_commands_do(audited: tuple[Registry, str],
                                                      moment: str) -> None:
    registry, url = audited
    backend = sqlalchemy.make_url(url).get_backend_name()
    backend = "mariadb" if backend == "mysql" else backend
    at, moved, trained = _documented_sql()
    served = _query(url, at.replace(":t", _moment_literal(backend, moment)))
    expected = []
    for row in _rows(api.audit_at(str(registry.root), url, when=moment, env="production")):
        if row["canary"]:
            expected.append((row["model"], "canary", row["canary"]["version"],
                             row["canary"]["traffic"], row["canary"]["digest"]))
        expected.append((row["model"], "primary", row["version"], None, row["digest"]))
    assert served == sorted(expected, key=lambda r: (r[0], r[1])) and served
    events = _rows(api.audit_who(str(registry.root), url, event="stage.assigned"))
    assert _query(url, moved) == [
        (e["landed"].replace("T", " ").rstrip("Z"), e["model"], e["version"], e["author_email"],
         e["commit"]) for e in events if e["environment"] == "production"]
    assert _query(url, trained) == [("staging", "fraud", "1.3.0", "transactions", "2024-06")]


def test_text_output_matches_its_golden_file(audited: tuple[Registry, str]) -> None:
    registry, url = audited  # every back end gives these same bytes
    shown = [listing.formatted(found, "text", terminal=False) for found in (
        api.show(str(registry.root), url), api.show(str(registry.root), url, model="fraud"),
        api.audit_history(str(registry.root), url, model="fraud", env="production"),
        api.audit_at(str(registry.root), url, when="2024-07-02T14:00:00+02:00"),
        api.audit_compare(str(registry.root), url, model="fraud"))]
    text = re.sub(r"\b[0-9a-f]{12}\b", "<sha12>", "\n\n".join(shown) + "\n")
    text = re.sub(r"md5:[0-9a-f]{32}", "md5:<digest>", text)
    golden = PROJECT / "tests" / "golden" / "audit.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_lineage_reads_edges_by_index_on_sqlite_without_statistics(tmp_path: Path) -> None:
    """apply never runs ANALYZE: SQLite must plan each edge lookup on a whole index prefix
    without statistics, or a frontier of several versions scans every edge of the repository."""
    from sqlalchemy import event, insert

    url = sqlalchemy.make_url(f"sqlite:///{tmp_path / 'lineage.sqlite'}")
    engine = db.make_engine(url)
    db.create_at_head(engine)
    repo_id = store.repository_id("lineage")
    models, versions = 40, 6  # each version derives from the one before and reads a dataset
    with engine.begin() as connection:
        connection.execute(insert(tables.MODEL_VERSIONS), [
            {"repository_id": repo_id, "model": f"m{m}", "version": f"1.{v}.0",
             "artifact": "a", "deprecated": False, "added_commit": "c" * 40}
            for m in range(models) for v in range(versions)])
        connection.execute(insert(tables.DATASET_VERSIONS), [
            {"repository_id": repo_id, "dataset": "events", "version": f"2024-{v:02d}",
             "artifact": "d", "deprecated": False, "added_commit": "c" * 40}
            for v in range(1, versions)])
        connection.execute(insert(tables.LINEAGE_EDGES), [
            {"id": f"{m}-{v}-{kind}", "repository_id": repo_id, "source_kind": kind,
             "source_name": f"m{m}" if kind == "Model" else "events",
             "source_version": f"1.{v - 1}.0" if kind == "Model" else f"2024-{v:02d}",
             "target_name": f"m{m}", "target_version": f"1.{v}.0", "via": "parent",
             "commit_sha": "c" * 40}
            for m in range(models) for v in range(1, versions) for kind in ("Model", "Dataset")])
    sent: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, parameters, *_: sent.append((statement, parameters)))
    with engine.connect() as connection:
        up = queries.lineage(connection, repo_id, "m3", "1.5.0", upstream=True, depth=5)
        down = queries.lineage(connection, repo_id, "events", "2024-01", upstream=False,
                               depth=5)
        edge_statements = [s for s in sent if "FROM lineage_edges" in s[0]]
        plans = [row[3] for statement, parameters in edge_statements
                 for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                       parameters)]
    engine.dispose()
    assert len(up) == 10 and {r["depth"] for r in up} == {1, 2, 3, 4, 5}
    assert [r["target"] for r in down[:models]] == [f"m{m}@1.1.0"
                                                    for m in sorted(range(models), key=str)]
    assert len(down) == models * 5  # 1.1.0 of each, then its chain
    assert plans and all("target_name=?" in plan or "source_name=?" in plan
                         for plan in plans if "lineage_edges" in plan), plans


def test_a_narrow_terminal_drops_columns_and_never_cuts_a_time_or_a_commit() -> None:
    row = ["2024-05-14T14:00:00Z", "2024-05-14T16:00:00+02:00", "fraud-detector",
           "production", "promotion: 1.2.0 -> 1.3.0 (canary 1.3.0 at 10% ended)",
           "Ada Lovelace <ada@example.com>", "Grace Hopper <grace@example.com>",
           "Alan Turing <alan@example.com>", "0e0b84976e23"]
    found = listing.Listing("audit history", ["landed", "authored", "name", "environment",
                                              "change", "proposed by", "merged by",
                                              "reviewed by", "commit"], [row] * 3, [])
    narrow = re.sub(r"\x1b\[[0-9;]*m", "", listing.formatted(found, "text", terminal=True,
                                                             width=80))
    lines = narrow.splitlines()
    assert all(len(line) <= 80 for line in lines)
    for whole in (row[0], row[2], row[3], row[8]):
        assert sum(whole in line for line in lines) == 3, whole
    footer = " ".join(narrow.split())
    assert "reviewed by left out to fit 80 columns" in footer
    wide = listing.formatted(found, "text", terminal=True, width=300)
    assert "left out" not in wide and all(cell in wide for cell in row)

"""apply as CI really runs it: other branches, shallow checkouts fetched again, secrets that
are not set, repeated pushes that change nothing. No workspace writes a false or lost record."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event, text

from reconciler import api, cli
from reconciler.diagnostics import ReconcilerError
from reconciler.dvc.records import DvcFileError, parse_dvc_file
from reconciler.git.history import GitHistory
from reconciler.registry import connect, db, store
from reconciler.registry import verify as audit
from tests.conftest import Registry, model_manifest
from tests.test_apply import (  # noqa: F401
    AUTHORS,
    FRAUD,
    _rows,
    build_history,
)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _sql(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in _rows(url, query, **params)]


def _events(url: str) -> list[tuple[str, str, str | None]]:
    return _sql(url, "SELECT event_type, name, environment FROM audit_events ORDER BY seq")


def _cursor(url: str) -> list[Any]:
    return _sql(url, "SELECT repository_id, commit_sha, event_seq FROM reconcile_cursor")


# -- the registry branch --------------------------------------------------------------------

def test_apply_on_another_branch_is_refused_and_writes_nothing(history: Registry, db_url: str,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    root = str(history.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url, to="HEAD~1")
    before = (_events(db_url), _cursor(db_url))
    history.repo.git.checkout("-b", "experiment")
    history.write("manifests/models/churn.yaml", model_manifest(
        "churn", [("0.1.0", "models/fraud.pkl", history.digest("models/fraud.pkl"))]))
    history.commit("Try churn on a branch", AUTHORS["eve"], "2024-08-01T10:00:00+00:00")

    code = cli.main(["apply", "--repo", root, "--db", db_url])
    message = capsys.readouterr().err
    assert code == 2
    assert "not on the first-parent history of the registry branch main" in message
    assert len(message.strip().splitlines()) == 1
    assert (_events(db_url), _cursor(db_url)) == before

    # Back on main, the next apply records main's history, and no rewrite.
    history.repo.git.checkout("main")
    applied = api.apply(root, db_url).applied
    assert applied is not None and not applied.rewritten
    assert "history.rewritten" not in {event for event, _, _ in _events(db_url)}


def test_a_commit_merged_in_from_a_branch_is_not_a_target(history: Registry,
                                                          db_url: str) -> None:
    """A commit reachable from main but only through a merge is not main's history: apply to it
    would record the branch's commits as if they had landed one by one."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    history.repo.git.checkout("-b", "feature")
    history.write("notes.txt", "on the branch\n")
    side = history.commit("Side work", AUTHORS["bob"], "2024-08-01T10:00:00+00:00")
    history.repo.git.checkout("main")
    history.repo.git.merge("--no-ff", "-m", "Merge feature", "feature")
    with pytest.raises(ReconcilerError, match="not on the first-parent history"):
        api.apply(root, db_url, to=side)
    applied = api.apply(root, db_url, to=side, branch="feature").applied  # named: allowed
    assert applied is not None and applied.target == side


def test_plan_and_apply_default_to_the_remote_default_branch(history: Registry,
                                                             tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", str(history.root), str(clone))
    _git(clone, "checkout", "--quiet", "-b", "topic")
    from reconciler.git.plumbing import registry_branch

    assert registry_branch(str(clone)) == "origin/HEAD"  # not the topic branch's own name
    with pytest.raises(ReconcilerError, match="registry branch origin/HEAD"):
        _git(clone, "commit", "--quiet", "--allow-empty", "-m", "topic work")
        api.apply(str(clone), f"sqlite:///{tmp_path / 'r.sqlite'}")


# -- shallow checkouts ------------------------------------------------------------------------

def test_a_shallow_checkout_fetched_again_stops_instead_of_recording_a_rewrite(
        history: Registry, db_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    origin = history.root
    workspace = tmp_path / "workspace"
    _git(tmp_path, "clone", "--quiet", f"file://{origin}", str(workspace))
    _git(workspace, "reset", "--quiet", "--hard", "HEAD~3")
    api.db_upgrade(str(workspace), db_url)
    api.apply(str(workspace), db_url)
    before = (_events(db_url), _cursor(db_url))

    # CI fetches the new tip alone and checks it out: the cursor commit is still here, but a
    # shallow boundary hides how it leads to the target.
    _git(workspace, "fetch", "--quiet", "--depth", "1", "origin", "main")
    _git(workspace, "reset", "--quiet", "--hard", "origin/main")
    assert _git(workspace, "rev-parse", "--is-shallow-repository") == "true"
    code = cli.main(["apply", "--repo", str(workspace), "--db", db_url])
    message = capsys.readouterr().err
    assert code == 2 and "shallow clone" in message and "git fetch --unshallow" in message
    assert (_events(db_url), _cursor(db_url)) == before

    _git(workspace, "fetch", "--quiet", "--unshallow", "origin")
    applied = api.apply(str(workspace), db_url).applied
    assert applied is not None and not applied.rewritten and applied.walked == 3
    after = _events(db_url)
    assert "history.rewritten" not in {event for event, _, _ in after}
    assert after[:len(before[0])] == before[0]
    assert audit.verify(str(workspace), db_url) == []


# -- the database URL -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_a_blank_database_url_is_refused_not_replaced_by_the_embedded_file(
        history: Registry, value: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECONCILER_DB_URL", value)
    assert cli.main(["apply", "--repo", str(history.root)]) == 2
    assert "RECONCILER_DB_URL is set but empty" in capsys.readouterr().err
    monkeypatch.delenv("RECONCILER_DB_URL")
    assert cli.main(["apply", "--repo", str(history.root), "--db", value]) == 2
    assert "--db is empty" in capsys.readouterr().err
    assert not (history.root / ".reconciler").exists()


def test_under_ci_the_embedded_database_is_used_only_when_named(
        history: Registry, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("RECONCILER_DB_URL", raising=False)
    monkeypatch.setenv("CI", "true")
    assert cli.main(["apply", "--repo", str(history.root)]) == 2
    assert "--db embedded" in capsys.readouterr().err
    assert not (history.root / ".reconciler").exists()
    assert cli.main(["apply", "--repo", str(history.root), "--db", "embedded"]) == 0
    assert (history.root / ".reconciler" / "registry.sqlite").exists()
    monkeypatch.setenv("RECONCILER_DB_URL", "embedded")
    assert cli.main(["apply", "--repo", str(history.root)]) == 0
    assert "up to date" in capsys.readouterr().out


# -- renders -----------------------------------------------------------------------------------

def _render_events(url: str) -> list[tuple[str, str, str | None]]:
    return [e for e in _events(url) if e[0].startswith("render.")]


def test_renders_are_recorded_when_they_change_not_on_every_push(
        history: Registry, db_url: str) -> None:
    root = str(history.root)
    api.db_upgrade(root, db_url)
    first = api.apply(root, db_url).applied
    assert first is not None
    recorded = _render_events(db_url)
    assert recorded and {e[0] for e in recorded} == {"render.recorded"}

    history.write("README.md", "an unrelated push\n")
    history.commit("Docs", AUTHORS["bob"], "2024-09-01T10:00:00+00:00")
    unrelated = api.apply(root, db_url)
    assert unrelated.applied is not None and unrelated.applied.walked == 1
    assert _render_events(db_url) == recorded
    assert sum(unrelated.applied.events.values()) == 0
    summary = api_summary(unrelated)
    assert "wrote 0 events" in summary and "none changed since the last record" in summary

    # One model's production changes: its production config alone is recorded again.
    manifest = (history.root / FRAUD).read_text()
    history.write(FRAUD, manifest.replace('production:\n      version: "1.0.0"',
                                          'production:\n      version: "1.1.0"'))
    assert (history.root / FRAUD).read_text() != manifest
    history.commit("Promote fraud 1.1.0 again", AUTHORS["carol"], "2024-09-02T10:00:00+00:00")
    promoted = api.apply(root, db_url).applied
    assert promoted is not None
    assert _render_events(db_url)[len(recorded):] == [
        ("render.recorded", "fraud", "production")]

    # The model leaves production: the config is recorded as removed, once.
    history.write(FRAUD, (history.root / FRAUD).read_text().replace(
        '    production:\n      version: "1.1.0"\n      replicas: {min: 2, max: 4}\n', ""))
    history.commit("Take fraud out of production", AUTHORS["dave"], "2024-09-03T10:00:00+00:00")
    api.apply(root, db_url)
    assert _render_events(db_url)[-1] == ("render.removed", "fraud", "production")
    history.write("README.md", "another unrelated push\n")
    history.commit("Docs again", AUTHORS["bob"], "2024-09-04T10:00:00+00:00")
    api.apply(root, db_url)
    assert _render_events(db_url)[-1] == ("render.removed", "fraud", "production")
    assert audit.verify(root, db_url) == []


def api_summary(outcome: api.ApplyOutcome) -> str:
    from reconciler.report import diagnostics as report

    assert outcome.applied is not None
    return report.apply_text(outcome.applied, outcome.rendered)


def test_verify_still_catches_an_edited_or_deleted_render(history: Registry,
                                                          db_url: str) -> None:
    root = str(history.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url)
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE renders SET digest = :d WHERE model = 'fraud' AND "
                                    "environment = 'staging'"), {"d": "0" * 64})
        assert [p.where for p in audit.verify(root, db_url)] == ["renders"]
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM renders WHERE model = 'fraud'"))
        assert [p.where for p in audit.verify(root, db_url)] == ["renders"]
    finally:
        engine.dispose()
    assert store.RENDER_REMOVED == "render.removed"


# -- the repository's key ------------------------------------------------------------------------

def _repositories(url: str) -> list[tuple[str, str, str | None]]:
    return [(key.rstrip(), name, root and root.rstrip())
            for key, name, root in _sql(url, "SELECT id, name, root_commit FROM repositories")]


def _clone(origin: Path, folder: Path) -> Path:
    _git(folder.parent, "clone", "--quiet", str(origin), str(folder))
    return folder


def test_clones_under_other_folder_names_share_one_repository(history: Registry, db_url: str,
                                                              tmp_path: Path) -> None:
    api.db_upgrade(str(history.root), db_url)
    first = _clone(history.root, tmp_path / "registry")
    _git(first, "reset", "--quiet", "--hard", "HEAD~2")
    api.apply(str(first), db_url)
    other = _clone(history.root, tmp_path / "_work-ci-7f3a")
    applied = api.apply(str(other), db_url).applied
    assert applied is not None and applied.walked == 2 and not applied.rewritten
    root_commit = _git(other, "rev-list", "--max-parents=0", "HEAD")
    assert _repositories(db_url) == [(store.root_repository_id(root_commit), "registry",
                                      root_commit)]
    assert api.show(str(tmp_path / "registry"), db_url) == api.show(str(other), db_url)
    assert audit.verify(str(other), db_url) == []


def test_a_database_keyed_by_folder_name_is_migrated_with_every_row(
        history: Registry, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database written before migration 0007 (its repository keyed by the folder name):
    upgraded, the next apply from a clone under another name finds it, records its root
    commit, and every row and the hash chain are as they were."""
    from alembic import command

    first = _clone(history.root, tmp_path / "registry")
    _git(first, "reset", "--quiet", "--hard", "HEAD~2")
    api.db_upgrade(str(first), db_url)
    monkeypatch.setenv("RECONCILER_REPOSITORY", "registry")  # the key before 0007
    api.apply(str(first), db_url)
    monkeypatch.delenv("RECONCILER_REPOSITORY")
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        before = audit.canonical_dump(engine)
        with engine.begin() as connection:
            command.downgrade(db._alembic_config(connection), "0006")
        chain = _events(db_url)
        assert "root_commit" not in {c["name"] for c in sqlalchemy.inspect(engine).get_columns(
            "repositories")}
    finally:
        engine.dispose()

    api.db_upgrade(str(first), db_url)
    other = _clone(history.root, tmp_path / "workspace")
    applied = api.apply(str(other), db_url).applied
    assert applied is not None and applied.walked == 2 and not applied.rewritten
    root_commit = _git(other, "rev-list", "--max-parents=0", "HEAD")
    assert _repositories(db_url) == [(store.repository_id("registry"), "registry", root_commit)]
    assert _events(db_url)[:len(chain)] == chain
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        after = audit.canonical_dump(engine)
    finally:
        engine.dispose()
    for table, rows in before.items():  # every row kept (entity rows may change since)
        assert len(after[table]) >= len(rows), table
        if table in ("audit_events", "commits", "commit_people", "lineage_edges"):
            assert set(rows) <= set(after[table]), table  # append-only: kept as they were
    assert audit.verify(str(other), db_url) == []
    assert audit.verify(str(first), db_url) == []


def test_a_blank_repository_override_is_refused(history: Registry,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RECONCILER_REPOSITORY", " ")
    assert cli.main(["apply", "--repo", str(history.root), "--db", "embedded"]) == 2
    assert "RECONCILER_REPOSITORY is set but empty" in capsys.readouterr().err


# -- what landed although validate refuses it ----------------------------------------------------

def _violations(url: str) -> list[tuple[str, str, str]]:
    rows = _sql(url, "SELECT commit_sha, name, payload FROM audit_events WHERE event_type = "
                     "'policy.violated' ORDER BY seq")
    found = []
    for commit, name, payload in rows:
        data = json.loads(payload) if isinstance(payload, str) else payload
        if "code" in data:
            found.append((commit.rstrip(), name, data["code"]))
    return found


def test_every_error_validate_gives_a_pushed_change_is_recorded_with_its_code(
        history: Registry, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(history.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url)
    fraud = (history.root / FRAUD).read_text()
    made_up = "md5:" + "0" * 32
    # A version pinning bytes DVC does not record (ART004), pushed straight to main.
    history.write(FRAUD, fraud.replace("  stages:", f'    - version: "1.2.0"\n'
                                       "      artifact: models/fraud.pkl\n"
                                       f"      digest: {made_up}\n  stages:"))
    forged = history.commit("Add fraud 1.2.0", AUTHORS["eve"], "2024-09-01T10:00:00+00:00")
    # A landed version's bytes changed (IMM001).
    landed = history.digest("models/fraud.pkl")
    history.write(FRAUD, (history.root / FRAUD).read_text().replace(landed, made_up, 1))
    rewritten = history.commit("Repin 1.0.0", AUTHORS["eve"], "2024-09-02T10:00:00+00:00")
    # An environment models are served in deleted (a reference in another file breaks).
    (history.root / "manifests/environments/staging.yaml").unlink()
    deleted = history.commit("Drop staging", AUTHORS["eve"], "2024-09-03T10:00:00+00:00")
    # Put back as it was: the target is valid again, so apply runs (and records the repin).
    history.write(FRAUD, fraud)
    history.repo.git.checkout(f"{forged}~1", "--", "manifests/environments/staging.yaml")
    fixed = history.commit("Put fraud and staging back", AUTHORS["carol"],
                           "2024-09-04T10:00:00+00:00")

    # A retrain registered with a made-up older version beside it (ART009: DVC never recorded
    # those bytes for the path in this history).
    history.write("models/fraud.pkl", b"fraud weights v3\n")
    history.dvc("add", "-q", "models/fraud.pkl")
    retrained = history.digest("models/fraud.pkl")
    history.write(FRAUD, fraud.replace("  stages:", f'    - version: "1.2.0"\n'
                                       "      artifact: models/fraud.pkl\n"
                                       f"      digest: {made_up}\n"
                                       f'    - version: "1.3.0"\n'
                                       "      artifact: models/fraud.pkl\n"
                                       f"      digest: {retrained}\n  stages:"))
    older = history.commit("Retrain fraud 1.3.0", AUTHORS["bob"], "2024-09-05T10:00:00+00:00")

    code = cli.main(["apply", "--repo", root, "--db", db_url, "--strict"])
    captured = capsys.readouterr()
    assert code == 1 and "--strict" in captured.err and "policy.violated" in captured.out
    recorded = _violations(db_url)
    assert (older, "fraud", "ART009") in recorded
    for sha, parent in ((forged, f"{forged}~1"), (rewritten, forged), (deleted, rewritten),
                        (fixed, deleted), (older, fixed)):
        checked = api.validate(root, rev=sha, base=parent)
        expected = sorted({d.code for d in checked.diagnostics if d.severity == "error"
                           and not d.code.startswith("POL")})
        assert expected or sha == fixed, f"validate --base finds nothing at {sha}"
        assert sorted({c for commit, _, c in recorded if commit == sha}) == expected, sha
    assert (forged, "fraud", "ART004") in recorded  # the newest version: not what DVC records
    assert (rewritten, "fraud", "IMM001") in recorded
    assert any(commit == deleted and name == "fraud" and c.startswith("REF")
               for commit, name, c in recorded)
    assert audit.verify(root, db_url) == []  # a rebuild from git records the same


def test_no_commit_encoding_blocks_apply(history: Registry, db_url: str) -> None:
    """A commit's encoding header may name any codec Python knows (base64 is no text
    encoding; utf-7 can decode to lone surrogates): apply records it and goes on."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    for number, codec in enumerate(("base64", "utf-7", "rot13")):
        history.write("README.md", f"docs {number}\n")
        history.write(FRAUD, re.sub(r"owner: \S+", f"owner: ml{number}@example.com",
                                    (history.root / FRAUD).read_text()))
        history.repo.git.add(A=True)
        _git(history.root, "-c", f"i18n.commitEncoding={codec}", "-c", "user.name=Zoë +2D3-",
             "-c", "user.email=zoe@example.com", "commit", "-q", "-m", f"via {codec} +2D3- é")
    applied = api.apply(root, db_url).applied
    assert applied is not None and applied.events["model.updated"] == 3
    assert audit.verify(root, db_url) == []


def test_replace_refs_do_not_change_who_made_a_commit(history: Registry, db_url: str) -> None:
    """`git replace` can show another commit in place of one: the trail records the object
    the sha names, as `git --no-replace-objects log` shows it."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    history.write(FRAUD, re.sub(r"owner: \S+", "owner: eve@example.com",
                                (history.root / FRAUD).read_text()))
    original = history.commit("Eve's change", AUTHORS["eve"], "2024-09-01T10:00:00+00:00")
    raw = _git(history.root, "cat-file", "commit", original).replace(
        "Eve Analyst <eve@example.com>", "Mallory <mallory@evil.example>")
    forged = subprocess.run(["git", "-C", root, "hash-object", "-t", "commit", "-w", "--stdin"],
                            input=raw + "\n", capture_output=True, text=True,
                            check=True).stdout.strip()
    _git(history.root, "replace", original, forged)
    assert "Mallory" in _git(history.root, "log", "-1", "--format=%an", original)
    api.apply(root, db_url)
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    try:
        with engine.connect() as connection:
            actors = {tuple(row) for row in connection.execute(text(
                "SELECT actor_name, actor_email FROM audit_events WHERE commit_sha = :sha"),
                {"sha": original})}
    finally:
        engine.dispose()
    assert actors == {("Eve Analyst", "eve@example.com")}


def _alias_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "\n".join(lines) + f"\nstages:\n  train:\n    cmd: python train.py\n    params:\n" \
        f"      params.yaml: {{bomb: *l{levels - 1}}}\n    outs:\n" \
        "    - path: models/other.pkl\n      md5: " + "0" * 32 + "\n"


# dvc.lock files DVC never writes: each refused (ART005 in validate; skipped by apply).
HOSTILE_LOCKS = {
    "alias bomb": _alias_bomb(),
    "binary": "stages:\n  train:\n    params:\n      params.yaml: {blob: !!binary aGk=}\n"
              "    outs: []\n",
    "NaN": "stages:\n  train:\n    params:\n      params.yaml: {lr: .nan}\n    outs: []\n",
    "a key that is not text": "stages:\n  train:\n    params:\n      params.yaml: {1: a}\n"
                              "    outs: []\n",
    "NUL in a stage name": 'stages:\n  "tr\\0ain":\n    outs: []\n',
    "stage names of mixed types": "stages:\n  1: {outs: []}\n  train: {outs: []}\n",
    "outs: 5": "stages:\n  train:\n    outs: 5\n",
    "an md5 that is not one": "stages:\n  train:\n    outs:\n    - path: m.pkl\n"
                              '      md5: "\\0x"\n',
}
# Odd but harmless: read as DVC reads them (a date param as its ISO text, no deps).
ODD_LOCKS = {
    "a date param": "stages:\n  train:\n    cmd: x\n    params:\n      params.yaml:\n"
                    "        day: 2024-06-01\n    outs:\n    - path: m.pkl\n      md5: "
                    + "a" * 32 + "\n",
    "deps: null": "stages:\n  train:\n    deps: null\n    outs: []\n",
}


def test_no_dvc_lock_in_history_blocks_apply(history: Registry, db_url: str) -> None:
    """Each hostile dvc.lock lands, then a later commit deletes it: apply skips it at the
    commits that hold it, and goes on; the parser refuses each (ART005 in validate)."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    landed = {}
    for number, (label, text_) in enumerate({**HOSTILE_LOCKS, **ODD_LOCKS}.items()):
        history.write("dvc.lock", text_)
        landed[label] = history.commit(f"lock: {label}", AUTHORS["bob"],
                                       f"2024-09-{number + 1:02d}T10:00:00+00:00")
        if label in HOSTILE_LOCKS:
            with pytest.raises(DvcFileError):  # what validate reports as ART005
                parse_dvc_file("dvc.lock", text_.encode())
    (dated,) = parse_dvc_file("dvc.lock", ODD_LOCKS["a date param"].encode())
    assert dated.lineage is not None
    assert dated.lineage.params == {"params.yaml": {"day": "2024-06-01"}}
    (history.root / "dvc.lock").unlink()
    history.commit("no lock", AUTHORS["bob"], "2024-09-30T10:00:00+00:00")
    started = time.perf_counter()
    applied = api.apply(root, db_url).applied
    assert time.perf_counter() - started < 60  # the bomb is refused before it expands
    assert applied is not None
    assert {commit for commit, path in applied.skipped if path == "dvc.lock"} == {
        landed[label] for label in HOSTILE_LOCKS}
    assert audit.verify(root, db_url) == []


def test_landed_times_never_go_back_along_the_registry_branch(history: Registry,
                                                              db_url: str) -> None:
    """A commit that claims a time before its parent's (a clock, or a forged date) lands with
    its parent: no serving period ends before it starts, and its own time stays recorded."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    manifest = (history.root / FRAUD).read_text()
    history.write("README.md", "late\n")
    history.commit("A docs change, late in 2024", AUTHORS["bob"], "2024-12-01T10:00:00+00:00")
    history.write(FRAUD, manifest.replace('production:\n      version: "1.0.0"',
                                          'production:\n      version: "1.1.0"'))
    early = history.commit("Promote, dated 1999", AUTHORS["carol"], "1999-01-01T00:00:00+00:00")
    api.apply(root, db_url)
    rows = _sql(db_url, "SELECT occurred_at FROM audit_events WHERE commit_sha = :sha",
                sha=early)
    assert rows and {str(when)[:10] for (when,) in rows} == {"2024-12-01"}
    (raw,) = _sql(db_url, "SELECT committed_at FROM commits WHERE sha = :sha", sha=early)
    assert str(raw[0]).startswith("1999-01-01")
    periods = _sql(db_url, "SELECT valid_from, valid_to FROM stage_assignments "
                           "WHERE valid_to IS NOT NULL")
    assert periods and all(start <= end for start, end in periods)
    served = api.audit_at(root, db_url, when="2024-12-02T00:00:00Z", env="production")
    assert "1.1.0" in json.dumps(served, default=str)
    assert audit.verify(root, db_url) == []


def test_names_from_the_system_that_are_not_utf8_are_stored_or_refused(
        history: Registry, db_url: str, tmp_path: Path) -> None:
    """A clone in a folder whose name is not UTF-8 applies (its name stored escaped); a
    RECONCILER_REPOSITORY that is not UTF-8 is one clear line."""
    folder = os.fsencode(tmp_path) + b"/caf\xe9-registry"
    subprocess.run([b"git", b"clone", b"--quiet", os.fsencode(history.root), folder],
                   check=True)
    api.db_upgrade(str(history.root), db_url)
    env = {**os.environb, b"PYTHONPATH": os.fsencode(str(Path(__file__).parent.parent))}
    env.pop(b"CI", None)
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url],
                          cwd=folder, capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert [name for _, name, _ in _repositories(db_url)] == ["caf\\xe9-registry"]
    env[b"RECONCILER_REPOSITORY"] = b"caf\xe9"
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--db", db_url],
                          cwd=folder, capture_output=True, env=env, check=False)
    err = done.stderr.decode("utf-8")
    assert done.returncode == 2 and "RECONCILER_REPOSITORY must be" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_renders_of_the_target_move_with_the_cursor(history: Registry, db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between the last commits and the record of the target's renders (kill -9) can
    no longer lose that record: both are one transaction. Here the render record fails; the
    cursor did not move to the target, and the next apply writes both."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    head = history.repo.head.commit.hexsha
    real = store.render_changes

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed")

    monkeypatch.setattr(store, "render_changes", crash)
    with pytest.raises(RuntimeError):
        api.apply(root, db_url)
    assert [sha for _, sha, _ in _cursor(db_url)] != [head]
    monkeypatch.setattr(store, "render_changes", real)
    applied = api.apply(root, db_url).applied
    assert applied is not None and applied.events["render.recorded"] > 0
    assert [sha.rstrip() for _, sha, _ in _cursor(db_url)] == [head]
    assert audit.verify(root, db_url) == []


@pytest.mark.parametrize("between", ["reconcile_cursor", "audit_events"])
def test_verify_reading_while_apply_writes_never_cries_wolf(history: Registry, db_url: str,
                                                           between: str) -> None:
    """verify reads the cursor and the chain in separate statements; an apply that commits
    between them (PostgreSQL's READ COMMITTED shows it to the next statement) is no tamper.
    Rows added past the cursor by anything else still are."""
    root = str(history.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url, to="HEAD~3")
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    repo_id = connect.repository_key(engine, GitHistory(root), "HEAD",
                                       connect.repository_name(root)).id
    applied: list[bool] = []

    def apply_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if between in statement and not applied:
            applied.append(True)
            api.apply(root, db_url)  # another engine: commits while verify reads

    # SQLite: verify's read holds the database (BEGIN IMMEDIATE), so no apply commits meanwhile.
    concurrent = not db_url.startswith("sqlite")
    if concurrent:
        event.listen(engine, "before_cursor_execute", apply_meanwhile)
    try:
        assert audit.verify_chain(engine, repo_id) == []
        assert applied == [True] * concurrent
        if concurrent:
            event.remove(engine, "before_cursor_execute", apply_meanwhile)
        with engine.begin() as connection:  # a row past the cursor that no apply wrote
            connection.execute(text(
                "INSERT INTO audit_events (id, repository_id, seq, commit_sha, event_type, kind, "
                "name, actor_name, actor_email, occurred_at, payload, prev_hash, hash) SELECT "
                ":id, repository_id, seq + 1000, commit_sha, event_type, kind, name, "
                "actor_name, actor_email, occurred_at, payload, prev_hash, hash FROM "
                "audit_events WHERE repository_id = :repo AND seq = 1"),
                {"id": "f" * 64, "repo": repo_id})
        assert [p.where for p in audit.verify_chain(engine, repo_id)] == ["audit_events"]
    finally:
        engine.dispose()

"""`reconciler init`: from an empty folder to the README's whole flow, and CI recipes that use
only documented keys (checked against the published schemas in tests/schemas/)."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler import api, reconcile
from reconciler.diagnostics import ReconcilerError
from tests.conftest import Registry, dvc_project
from tests.test_validate import run_cli

SCHEMAS = Path(__file__).parent / "schemas"


class _Yaml12(yaml.SafeLoader):
    """YAML as GitHub and GitLab read it (1.2): `on` is a string, only true/false are
    booleans."""


_Yaml12.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"),
                              list("tf"))


@pytest.fixture
def fresh(tmp_path: Path) -> Registry:
    """`git init && dvc init` and a local DVC remote: where a team starts."""
    project = dvc_project(tmp_path / "models", ("Ada", "ada@example.com"))
    project.dvc("remote", "add", "-d", "store", str(tmp_path / "remote"))
    return project


def _uncommented(path: Path) -> str:
    """A starter's example as its comment says to do it: the YAML below the first `#` line."""
    lines = path.read_text().splitlines()
    start = lines.index("#") + 1
    return "\n".join(line[2:] for line in lines[start:]) + "\n"


def test_init_then_the_readme_flow_works_end_to_end(fresh: Registry, tmp_path: Path) -> None:
    done = run_cli(fresh, "init", "--target", "seldon")
    assert done.returncode == 0, done.stderr
    assert "wrote .github/CODEOWNERS" in done.stdout
    assert (fresh.root / ".github/CODEOWNERS").read_text().splitlines()[-2:] == [
        "/manifests/environments/production.yaml @your-org/ml-leads",
        "/.github/CODEOWNERS @your-org/ml-leads"]
    ignored = (fresh.root / ".gitignore").read_text().splitlines()
    assert ".reconciler/" in ignored and "/site/" in ignored
    assert api.validate(str(fresh.root)).diagnostics == []
    fresh.commit("reconciler init")
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    assert reconcile.sync(str(fresh.root), url, "HEAD").commits == 1
    assert api.render(str(fresh.root)).ok

    # The first model, as the example's comment says: dvc add, uncomment, pin.
    fresh.write("models/fraud-detector.pkl", b"weights\n")
    fresh.write("data/transactions.parquet", b"PAR1 rows PAR1")
    fresh.dvc("add", "-q", "models/fraud-detector.pkl", "data/transactions.parquet")
    fresh.dvc("push", "-q")
    for example in ("manifests/models/example.yaml", "manifests/datasets/example.yaml"):
        fresh.write(example, _uncommented(fresh.root / example))
    staging = fresh.root / "manifests/environments/staging.yaml"
    staging.write_text(staging.read_text().replace("  # serves:\n  #   fraud",
                                                   "  serves:\n    fraud"))
    assert {d.code for d in api.validate(str(fresh.root)).diagnostics} == {"ART003"}
    assert sorted(api.pin(str(fresh.root)).changed) == [
        "manifests/datasets/example.yaml", "manifests/models/example.yaml"]
    assert api.validate(str(fresh.root)).diagnostics == []
    planned = api.plan(str(fresh.root), base="HEAD", worktree=True)
    assert planned.ok and planned.changed
    fresh.commit("fraud-detector 1.0.0 in staging")
    applied = reconcile.sync(str(fresh.root), url, "HEAD")
    assert applied.commits == 1 and applied.events
    assert api.render(str(fresh.root)).ok
    assert (fresh.root / "deploy" / "staging" / "fraud-detector.yaml").exists()


def test_init_refuses_to_overwrite_and_writes_nothing(fresh: Registry) -> None:
    fresh.write(".pre-commit-config.yaml", "repos: []\n")
    with pytest.raises(ReconcilerError, match=r"\.pre-commit-config\.yaml already exist"):
        api.init(str(fresh.root))
    assert not (fresh.root / "manifests").exists()
    assert (fresh.root / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    done = run_cli(fresh, "init")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    result = api.init(str(fresh.root), force=True, ci="none", templates=True)
    assert "CODEOWNERS" in result.written and "templates/kserve/model.yaml.j2" in result.written
    assert "reconciler-validate" in (fresh.root / ".pre-commit-config.yaml").read_text()
    assert not (fresh.root / ".github").exists() and not (fresh.root / ".gitlab-ci.yml").exists()
    assert api.validate(str(fresh.root)).diagnostics == []


def test_init_never_writes_through_a_link_out_of_the_folder(fresh: Registry,
                                                           tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, fresh.root / "manifests")
    with pytest.raises(ReconcilerError, match="link out of"):
        api.init(str(fresh.root), force=True)
    assert list(outside.iterdir()) == []


def test_approvers_that_are_not_owners_are_left_out_of_codeowners(fresh: Registry) -> None:
    fresh.write("manifests/prod.yaml", "apiVersion: reconciler/v1\nkind: Environment\n"
                "metadata: {name: prod}\nspec:\n  namespace: prod\n  target: kserve\n"
                '  approvers: ["@org/leads", "ops@example.com", "* @evil", "nobody"]\n')
    result = api.init(str(fresh.root), ci="gitlab")
    assert result.skipped_owners == ["* @evil", "nobody"]
    lines = (fresh.root / ".gitlab/CODEOWNERS").read_text().splitlines()
    assert "/manifests/prod.yaml @org/leads ops@example.com" in lines
    assert not any("evil" in line for line in lines)


def test_codeowners_never_takes_a_name_or_an_owner_as_a_pattern(fresh: Registry) -> None:
    """A manifest named with glob characters would own other files; an owner starting with #
    would turn the rest of its line into a comment."""
    environment = ("apiVersion: reconciler/v1\nkind: Environment\nmetadata: {{name: {name}}}\n"
                   "spec:\n  namespace: {name}\n  target: kserve\n  approvers: {owners}\n")
    fresh.write("manifests/*.yaml", environment.format(name="glob", owners='["@org/leads"]'))
    fresh.write("manifests/p[r]od.yaml", environment.format(name="brackets",
                                                            owners='["@org/leads"]'))
    fresh.write("manifests/prod.yaml", environment.format(
        name="prod", owners='["#x@example.com", "@org/ops", "ops@example.com"]'))
    result = api.init(str(fresh.root), ci="github")
    assert sorted(result.unowned_paths) == ["manifests/*.yaml", "manifests/p[r]od.yaml"]
    assert result.skipped_owners == ["#x@example.com"]
    rules = [line for line in (fresh.root / ".github/CODEOWNERS").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules == ["/manifests/environments/production.yaml @your-org/ml-leads",  # init's
                     "/manifests/prod.yaml @org/ops ops@example.com",
                     "/.github/CODEOWNERS @your-org/ml-leads @org/ops ops@example.com"]


@pytest.mark.parametrize("ci, path, schema", [
    ("github", ".github/workflows/reconciler.yml", "github-workflows.json"),
    ("gitlab", ".gitlab-ci.yml", "gitlab-ci.json")])
def test_ci_recipes_use_only_documented_keys(fresh: Registry, ci: str, path: str,
                                             schema: str) -> None:
    api.init(str(fresh.root), ci=ci)
    document = yaml.load((fresh.root / path).read_text(), Loader=_Yaml12)
    validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / schema).read_text()))
    assert [e.message for e in validator.iter_errors(document)] == []
    text = (fresh.root / path).read_text()
    assert "fetch-depth: 0" in text or 'GIT_DEPTH: "0"' in text  # apply needs the history
    assert "RECONCILER_DB_URL" in text and "reconciler plan --base" in text
    assert ("concurrency:" in text) if ci == "github" else ("resource_group:" in text)
    if ci == "gitlab":  # the note poster is real Python
        compile(document["reconciler-plan"]["variables"]["POST_NOTE"], "POST_NOTE", "exec")
    # the registry's pages, built after apply and published (issue 28)
    assert "reconciler site --out" in text and "{sha}" in text
    if ci == "github":
        assert document["jobs"]["pages"]["needs"] == "apply"
        assert "actions/upload-pages-artifact@v3" in text and "actions/deploy-pages@v4" in text
    else:
        assert document["pages"]["artifacts"]["paths"] == ["public"]
        assert "public" in document["reconciler-apply"]["artifacts"]["paths"]


def test_the_shipped_examples_match_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "reconciler init [DIR]" in readme
    assert sys.modules["reconciler.scaffold"].HOOKS_REPO in readme


def _file_size_limit() -> None:
    """In the child: no file may grow past 1,500 bytes (as a full disk or a quota refuses the
    write), and the signal for it is ignored, so the write fails with EFBIG instead."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))


def test_init_that_cannot_write_every_file_writes_none(fresh: Registry) -> None:
    fresh.write(".gitignore", "*.pyc\n")
    before = sorted(p.relative_to(fresh.root) for p in fresh.root.rglob("*")
                    if ".git" not in p.parts and ".dvc" not in p.parts)
    done = subprocess.run([sys.executable, "-m", "reconciler", "init"], cwd=fresh.root,
                          capture_output=True, text=True, check=False,
                          preexec_fn=_file_size_limit)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"reconciler: error: {fresh.root}/.github/workflows/reconciler.yml: File too large"]
    after = sorted(p.relative_to(fresh.root) for p in fresh.root.rglob("*")
                   if ".git" not in p.parts and ".dvc" not in p.parts)
    assert after == before and (fresh.root / ".gitignore").read_text() == "*.pyc\n"

"""validate and pin end to end, on real git + DVC repositories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import api
from tests.conftest import Registry, model_manifest

FRAUD = "manifests/models/fraud.yaml"
STAGES = 'staging: {version: "1.0.0"}\nproduction: {version: "1.0.0"}'


def _codes(result: api.Result) -> list[str]:
    return [d.code for d in result.diagnostics]


def run_cli(registry: Registry, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command line, as users and CI run it."""
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=registry.root,
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **(env or {})})


def retrain(registry: Registry, content: bytes = b"fraud weights v2\n") -> str:
    """Retrain into the same path, the usual DVC workflow; returns the new digest."""
    registry.write("models/fraud.pkl", content)
    registry.dvc("add", "-q", "models/fraud.pkl")
    return registry.digest("models/fraud.pkl")


def test_template_registry_is_clean(registry: Registry) -> None:
    result = api.validate(str(registry.root))
    assert result.diagnostics == [] and result.files == 4
    done = run_cli(registry, "validate")
    assert done.returncode == 0 and "ok: 4 files checked" in done.stdout


def test_revision_is_read_from_git_objects_not_the_work_tree(registry: Registry) -> None:
    registry.write(FRAUD, "kind: [\n")
    assert _codes(api.validate(str(registry.root))) == ["YML001"]
    assert api.validate(str(registry.root), rev="HEAD").diagnostics == []
    assert (registry.root / FRAUD).read_text() == "kind: [\n"  # nothing checked out


def test_retrain_then_add_version_then_pin(registry: Registry) -> None:
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    result = api.validate(str(registry.root), no_base=True)  # as --no-base: the file alone
    assert _codes(result) == ["ART004"]
    (mismatch,) = result.diagnostics
    assert new in mismatch.message and "add a new version" in mismatch.hint

    text = model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old),
                                    ("1.1.0", "models/fraud.pkl", None)], stages=STAGES)
    text = text.replace("    - version: \"1.1.0\"", "    # retrained on June data\n"
                                                   "    - version: \"1.1.0\"  # candidate")
    registry.write(FRAUD, text)
    assert _codes(api.validate(str(registry.root), no_base=True)) == ["ART003"]

    done = run_cli(registry, "pin", FRAUD)
    assert done.returncode == 1, "pin fails once when it changed files, like formatters"
    pinned = (registry.root / FRAUD).read_text()
    assert pinned == text.replace(
        "      artifact: models/fraud.pkl\n      metrics: {auc: 0.93}\n  stages",
        f"      artifact: models/fraud.pkl\n      digest: {new}\n"
        "      metrics: {auc: 0.93}\n  stages")
    assert "# retrained on June data" in pinned and "# candidate" in pinned
    assert run_cli(registry, "pin", FRAUD).returncode == 0
    assert api.validate(str(registry.root)).diagnostics == []


def test_pin_flow_style_version(registry: Registry) -> None:
    new = retrain(registry)
    old_text = (registry.root / FRAUD).read_text()
    registry.write(FRAUD, old_text.replace(
        "  stages:", '    - {version: "1.1.0", artifact: models/fraud.pkl}\n  stages:'))
    result = api.pin(str(registry.root))
    assert result.changed == [FRAUD] and result.diagnostics == []
    assert f'{{version: "1.1.0", artifact: models/fraud.pkl, digest: "{new}"}}' in (
        registry.root / FRAUD).read_text()


def test_base_immutability_and_removal(registry: Registry) -> None:
    registry.write(FRAUD, (registry.root / FRAUD).read_text().replace(
        registry.digest("models/fraud.pkl"), "md5:" + "1" * 32))
    result = api.validate(str(registry.root), base="HEAD")
    assert "IMM001" in _codes(result)

    registry.repo.git.checkout("--", FRAUD)
    new = retrain(registry)
    registry.write(FRAUD, model_manifest("fraud", [("1.1.0", "models/fraud.pkl", new)],
                                         stages='staging: {version: "1.1.0"}'))
    result = api.validate(str(registry.root), base="HEAD")
    assert _codes(result).count("IMM002") == 2  # served by staging and by production
    assert api.validate(str(registry.root), no_base=True).ok  # no history to break
    assert "IMM002" in _codes(api.validate(str(registry.root)))  # by default: from HEAD


def test_promotion_policy(registry: Registry) -> None:
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    versions = [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)]
    straight = 'staging: {version: "1.0.0"}\nproduction: {version: "1.1.0"}'
    registry.write(FRAUD, model_manifest("fraud", versions, stages=straight))
    result = api.validate(str(registry.root), base="HEAD")
    assert _codes(result) == ["POL001"]
    assert "never served in staging on main's first-parent history" in (
        result.diagnostics[0].message)

    # Through staging first: one commit to stage it, then production may follow.
    registry.write(FRAUD, model_manifest("fraud", versions, stages=(
        'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}')))
    assert api.validate(str(registry.root), base="HEAD").ok
    registry.commit("Stage fraud 1.1.0")
    registry.write(FRAUD, model_manifest("fraud", versions, stages=(
        'staging: {version: "1.1.0"}\nproduction: {version: "1.1.0"}')))
    assert api.validate(str(registry.root), base="HEAD").diagnostics == []
    registry.commit("Promote fraud 1.1.0")

    # A rollback to an earlier version is allowed without passing staging again.
    registry.write(FRAUD, model_manifest("fraud", versions, stages=(
        'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}')))
    assert api.validate(str(registry.root), base="HEAD").diagnostics == []


def test_metric_requirement(registry: Registry) -> None:
    # A new version (metrics of a landed one cannot change: IMM003) whose auc fails the gate.
    old, new = registry.digest("models/fraud.pkl"), retrain(registry)
    versions = [("1.0.0", "models/fraud.pkl", old), ("1.1.0", "models/fraud.pkl", new)]
    weak = model_manifest("fraud", versions, stages=(
        'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}'))
    head, _, tail = weak.rpartition("auc: 0.93")
    weak = f"{head}auc: 0.85{tail}"  # the last version listed, 1.1.0
    registry.write(FRAUD, weak)
    registry.commit("1.1.0 in staging")
    registry.write(FRAUD, weak.replace('production: {version: "1.0.0"}',
                                       'production: {version: "1.1.0"}'))
    result = api.validate(str(registry.root), base="HEAD")
    assert _codes(result) == ["POL002"]
    assert "auc >= 0.9" in result.diagnostics[0].message and "0.85" in result.diagnostics[0].message


def test_check_remote(registry: Registry) -> None:
    assert api.validate(str(registry.root), check_remote=True).diagnostics == []
    remote = registry.root.parent / "remote"
    digest = registry.digest("models/fraud.pkl").split(":")[1]
    (remote / "files" / "md5" / digest[:2] / digest[2:]).unlink()
    result = api.validate(str(registry.root), check_remote=True)
    assert _codes(result) == ["ART006"]
    assert result.diagnostics[0].path == FRAUD


def test_symlink_out_of_the_repository(registry: Registry, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("apiVersion: reconciler/v1\n")
    os.symlink(outside, registry.root / "manifests" / "evil.yaml")
    os.symlink("../../../outside.yaml", registry.root / "manifests" / "relative.yaml")
    result = api.validate(str(registry.root))
    assert sorted((d.path, d.code) for d in result.diagnostics) == [
        ("manifests/evil.yaml", "FIL001"), ("manifests/relative.yaml", "FIL001")]
    registry.commit("Add symlinks")
    result = api.validate(str(registry.root), rev="HEAD")
    assert sorted((d.path, d.code) for d in result.diagnostics) == [
        ("manifests/evil.yaml", "FIL001"), ("manifests/relative.yaml", "FIL001")]


def test_symlinks_inside_the_repository_are_refused_everywhere(registry: Registry) -> None:
    # git stores a link as its own text: apply would replay the link, not what it leads to, so
    # validate, render and pin refuse it as apply would see it (nothing served goes unaudited).
    shutil.move(registry.root / FRAUD, registry.root / "fraud.yaml")
    os.symlink("../../fraud.yaml", registry.root / FRAUD)
    (registry.root / "manifests" / "linked").symlink_to("models")
    registry.write("manifests/real/also.yaml", "")
    os.symlink("../models", registry.root / "manifests" / "real" / "dir.yaml")
    registry.commit("Symlinked manifest")
    expected = [(FRAUD, "FIL001"), ("manifests/real/dir.yaml", "FIL001")]
    for rev in (None, "HEAD"):
        found = [(d.path, d.code) for d in api.validate(str(registry.root), rev=rev).diagnostics]
        assert [f for f in found if f[1] == "FIL001"] == expected, rev
    render = api.render(str(registry.root))
    assert [d.code for d in render.diagnostics if d.path == FRAUD] == ["FIL001"]
    assert not (registry.root / "deploy").exists()
    # pre-commit passes the path through a linked folder: refused too
    result = api.validate(str(registry.root), ["manifests/linked/fraud.yaml"])
    assert [d.code for d in result.diagnostics] == ["FIL001"]


def test_pin_refuses_a_symlinked_manifest(registry: Registry) -> None:
    shutil.move(registry.root / FRAUD, registry.root / "fraud.yaml")
    os.symlink("../../fraud.yaml", registry.root / FRAUD)
    retrain(registry)
    registry.write("fraud.yaml", (registry.root / "fraud.yaml").read_text().replace(
        "  stages:", '    - {version: "1.1.0", artifact: models/fraud.pkl}\n  stages:'))
    before = (registry.root / "fraud.yaml").read_text()
    result = api.pin(str(registry.root))
    assert result.changed == [] and [d.code for d in result.diagnostics] == ["FIL001"]
    assert os.readlink(registry.root / FRAUD) == "../../fraud.yaml"
    assert (registry.root / "fraud.yaml").read_text() == before


def test_special_files_are_refused_not_opened(registry: Registry) -> None:
    os.mkfifo(registry.root / "manifests" / "models" / "pipe.yaml")
    for run in (lambda: api.validate(str(registry.root)),
                lambda: api.validate(str(registry.root), ["manifests/models/pipe.yaml"]),
                lambda: api.pin(str(registry.root)),
                lambda: api.render(str(registry.root))):
        found = [(d.path, d.code) for d in run().diagnostics]  # opening it would block
        assert found == [("manifests/models/pipe.yaml", "FIL005")]


def test_paths_mode_checks_against_the_rest(registry: Registry) -> None:
    # A new file with the name of a model defined elsewhere, and a reference to a dataset
    # defined elsewhere: both need the rest of the repository.
    digest = registry.digest("models/fraud.pkl")
    body = model_manifest("fraud", [("1.0.0", "models/fraud.pkl", digest)])
    body = body.replace("metrics:", 'trainedOn: [{dataset: transactions, version: "2024-06"}]\n'
                                    "      metrics:")
    registry.write("manifests/models/copy.yaml", body)
    result = api.validate(str(registry.root), ["manifests/models/copy.yaml"])
    assert [(d.path, d.code) for d in result.diagnostics] == [
        ("manifests/models/copy.yaml", "NAM002")]
    assert result.files == 1
    registry.write("manifests/models/copy.yaml", body.replace("name: fraud", "name: fraud-two"))
    assert api.validate(str(registry.root), ["manifests/models/copy.yaml"]).diagnostics == []
    registry.write("README.md", "hello\n")
    assert _codes(api.validate(str(registry.root), ["README.md"])) == ["FIL004"]


def test_cli_exit_codes_and_formats(registry: Registry, tmp_path: Path) -> None:
    done = run_cli(registry, "validate", "--rev", "no-such-branch")
    assert done.returncode == 2
    assert done.stderr.startswith("reconciler: error: unknown revision 'no-such-branch'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1

    done = run_cli(registry, "validate", "--repo", str(tmp_path))
    assert done.returncode == 2 and "not inside a git repository" in done.stderr

    assert run_cli(registry, "validate", "--no-such-flag").returncode == 2

    # An unknown key holding HTML and a link: text in the step summary, never markup.
    registry.write(FRAUD, (registry.root / FRAUD).read_text().replace(
        "1.0.0\"\n", "1.0.0\"\n      \"<img src=x onerror=alert(1)>[a](https://e.example)\": 1\n",
        1))
    summary = tmp_path / "summary.md"
    done = run_cli(registry, "validate", "--format", "github",
                   env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 1
    annotation = done.stdout.splitlines()[0]
    assert annotation.startswith(f"::error file={FRAUD},line=10,col=7,title=SPC003::")
    written = summary.read_text()
    assert "| manifests/models/fraud.yaml&#58;10&#58;7 | SPC003 |" in written
    assert "<img" not in written and "](" not in written and "https://" not in written

    report = json.loads(run_cli(registry, "validate", "--format", "json").stdout)
    assert report["format_version"] == 1 and report["ok"] is False
    assert report["diagnostics"][0]["code"] == "SPC003"
    assert report["diagnostics"][0]["hint"]


def test_schema_command_prints_json_schema(registry: Registry) -> None:
    done = run_cli(registry, "schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert {d["$ref"].rsplit("/", 1)[1] for d in schema["oneOf"]} == {
        "Model", "Dataset", "Environment"}


@pytest.mark.parametrize("module", ["sqlalchemy", "dvc", "git", "jinja2"])
def test_validate_imports_nothing_heavy(registry: Registry, module: str) -> None:
    code = ("import sys; from reconciler.cli import main; rc = main(['validate']); "
            f"print(rc, '{module}' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=registry.root, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"]


def test_changed_dataset_is_checked_against_models_elsewhere(registry: Registry) -> None:
    digest = registry.digest("models/fraud.pkl")
    body = model_manifest("churn", [("1.0.0", "models/fraud.pkl", digest)]).replace(
        "metrics:", 'trainedOn: [{dataset: transactions, version: "2024-06"}]\n      metrics:')
    registry.write("manifests/models/churn.yaml", body)
    dataset = "manifests/datasets/transactions.yaml"
    registry.write(dataset, (registry.root / dataset).read_text().replace('"2024-06"',
                                                                         '"2024-07"'))
    result = api.validate(str(registry.root), [str(registry.root / dataset)])
    assert [(d.path, d.code) for d in result.diagnostics] == [
        ("manifests/models/churn.yaml", "REF002")]


def test_a_repository_without_manifests_says_so_in_one_line(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    validate = subprocess.run([sys.executable, "-m", "reconciler", "validate"], cwd=tmp_path,
                              capture_output=True, text=True, check=False)
    assert validate.returncode == 0 and validate.stdout == ""
    assert validate.stderr.startswith("validate: no manifests under manifests/ in ")
    assert len(validate.stderr.splitlines()) == 1 and "reconciler schema" in validate.stderr
    # Serving nothing, the (absent) output folder is up to date, and render creates none.
    check = subprocess.run([sys.executable, "-m", "reconciler", "render", "--check"],
                           cwd=tmp_path, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    subprocess.run([sys.executable, "-m", "reconciler", "render"], cwd=tmp_path, check=True,
                   capture_output=True)
    assert not (tmp_path / "deploy").exists()


@pytest.mark.parametrize("kind", ["Dataset", "Environment"])
def test_paths_mode_finds_every_duplicate_name_a_full_run_finds(registry: Registry,
                                                                 kind: str) -> None:
    source = {"Dataset": "manifests/datasets/transactions.yaml",
              "Environment": "manifests/environments/production.yaml"}[kind]
    copy = source.replace(".yaml", "-copy.yaml")
    registry.write(copy, (registry.root / source).read_text())
    full = api.validate(str(registry.root)).diagnostics
    assert [d.code for d in full] == ["NAM002"]
    for passed in (source, copy):  # whichever file pre-commit passes
        found = api.validate(str(registry.root), [passed]).diagnostics
        assert [(d.path, d.code) for d in found] == [(passed, "NAM002")], passed


def test_a_landed_version_cannot_be_edited_to_pass_a_gate(registry: Registry) -> None:
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    weak = model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old),
                                    ("1.1.0", "models/fraud.pkl", new)],
                          stages='staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}')
    weak = weak.replace("      metrics: {auc: 0.93}\n", "      metrics: {auc: 0.5}\n", 2)
    weak = weak.replace("      metrics: {auc: 0.5}\n", "      metrics: {auc: 0.93}\n", 1)
    registry.write(FRAUD, weak)
    registry.commit("1.1.0 lands in staging with auc 0.5")
    edited = weak.replace('production: {version: "1.0.0"}', 'production: {version: "1.1.0"}')
    edited = edited.replace("      metrics: {auc: 0.5}\n", "      metrics: {auc: 0.95}\n"
                                                             "      params: {depth: 3}\n")
    registry.write(FRAUD, edited)
    found = api.validate(str(registry.root), base="HEAD").diagnostics
    assert sorted((d.code, d.message.split(";")[0]) for d in found) == [
        ("IMM003", "version '1.1.0' landed with metrics {\"auc\": 0.5}"),
        ("IMM003", "version '1.1.0' landed with params {}"),
        ("POL002", "production requires auc >= 0.9"),  # judged on what it landed with
    ]
    assert all(d.path == FRAUD for d in found)


def test_a_target_must_name_a_template(registry: Registry) -> None:
    staging = "manifests/environments/staging.yaml"
    registry.write(staging, (registry.root / staging).read_text().replace(
        "target: kserve", "target: kserv"))
    result = api.validate(str(registry.root), no_base=True)
    [found] = result.diagnostics
    assert (found.path, found.line, found.code) == (staging, 6, "REF007")
    assert "did you mean 'kserve'?" in found.hint
    registry.write(staging, (registry.root / staging).read_text().replace(
        "target: kserv", "target: triton"))
    assert api.validate(str(registry.root), no_base=True).diagnostics[0].code == "REF007"
    registry.write("templates/triton/model.yaml.j2", "kind: ConfigMap\n")  # the repository's own
    assert api.validate(str(registry.root), no_base=True).ok
    registry.commit("A template for triton")
    (registry.root / "templates/triton/model.yaml.j2").unlink()
    assert api.validate(str(registry.root), rev="HEAD").ok  # read at the revision checked
    assert not api.validate(str(registry.root), no_base=True).ok


def test_a_canary_needs_kserve_serverless(registry: Registry) -> None:
    production = "manifests/environments/production.yaml"
    registry.write(production, (registry.root / production).read_text().replace(
        "target: kserve", "target: kserve\n  deploymentMode: RawDeployment"))
    digest = registry.digest("models/fraud.pkl")
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", digest)],
                                         stages='staging: {version: "1.0.0"}\nproduction:\n'
                                                '  version: "1.0.0"\n'
                                                '  canary: {version: "1.0.0", traffic: 10}'))
    [found] = api.validate(str(registry.root), no_base=True).diagnostics
    assert (found.path, found.code) == (FRAUD, "STG003") and "Serverless" in found.hint
    registry.write(production, (registry.root / production).read_text().replace(
        "RawDeployment", "Serverless"))
    assert api.validate(str(registry.root), no_base=True).ok


def test_two_versions_with_the_same_bytes_are_a_warning(registry: Registry) -> None:
    digest = registry.digest("models/fraud.pkl")
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", digest),
                                                   ("1.0.1", "models/fraud.pkl", digest)],
                                         stages='staging: {version: "1.0.1"}'))
    result = api.validate(str(registry.root), no_base=True)
    [found] = result.diagnostics
    assert (found.code, found.severity, found.line) == ("VER002", "warning", 15)
    assert "'1.0.0'" in found.message and result.ok


def _retrained_twice(registry: Registry) -> tuple[str, str, str, str]:
    """fraud.pkl retrained and committed (tagged trained-v2), then retrained again and
    committed: the digests of the three trainings and the commit of the second."""
    first = registry.digest("models/fraud.pkl")
    second = retrain(registry, b"fraud weights v2\n")
    second_commit = registry.commit("retrain fraud")
    registry.repo.create_tag("trained-v2")
    third = retrain(registry, b"fraud weights v3\n")
    registry.commit("retrain fraud again")
    return first, second, third, second_commit


def _with_middle_version(registry: Registry, fields: str, first: str, third: str) -> None:
    """fraud 1.0.0 (as landed), 1.1.0 with fields (the second training), 1.2.0 (the third)."""
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", first),
                                                   ("1.2.0", "models/fraud.pkl", third)],
                                         stages=STAGES).replace(
        '    - version: "1.2.0"\n', '    - version: "1.1.0"\n      artifact: models/fraud.pkl\n'
        f'{fields}    - version: "1.2.0"\n'))


def test_pin_fills_an_older_version_from_the_revision_it_names(registry: Registry) -> None:
    first, second, third, commit = _retrained_twice(registry)
    size = len(b"fraud weights v2\n")
    for rev in ("trained-v2", commit, commit[:10]):
        _with_middle_version(registry, f"      rev: {rev}\n", first, third)
        assert _codes(api.validate(str(registry.root))) == ["ART003"]
        result = api.pin(str(registry.root))
        assert result.changed == [FRAUD] and result.diagnostics == []
        text = (registry.root / FRAUD).read_text()
        assert ("      artifact: models/fraud.pkl\n"
                f"      digest: {second}\n      size: {size}\n      rev: {rev}\n") in text
        assert api.validate(str(registry.root)).diagnostics == []


def test_an_older_digest_is_checked_against_history(registry: Registry) -> None:
    first, second, third, _ = _retrained_twice(registry)
    _with_middle_version(registry, f"      digest: {second}\n", first, third)  # recorded once
    assert api.validate(str(registry.root)).diagnostics == []
    made_up = "md5:" + "0" * 32
    _with_middle_version(registry, f"      digest: {made_up}\n", first, third)
    result = api.validate(str(registry.root))
    assert _codes(result) == ["ART009"]
    assert made_up in result.diagnostics[0].message and "rev:" in result.diagnostics[0].hint
    _with_middle_version(registry, f"      rev: trained-v2\n      digest: {first}\n",
                         first, third)
    assert "ART007" in _codes(api.validate(str(registry.root)))  # (and VER002: first twice)
    _with_middle_version(registry, f"      rev: trained-v2\n      digest: {second}\n"
                         "      size: 1\n", first, third)
    assert _codes(api.validate(str(registry.root))) == ["ART007"]


@pytest.mark.parametrize("rev, code", [
    ("no-such-tag", "ART008"), ("HEAD..HEAD", "ART008"), ("a" * 40, "ART008"),
    ("--output=/tmp/owned", "SPC007"), ("HEAD@{1}", "SPC007"), ("trained-v2 HEAD", "SPC007"),
    ("-n1", "SPC007")])
def test_a_hostile_rev_is_one_clear_error_and_never_an_option(registry: Registry, rev: str,
                                                                code: str) -> None:
    first, _, third, _ = _retrained_twice(registry)
    _with_middle_version(registry, f"      rev: \"{rev}\"\n", first, third)
    assert _codes(api.validate(str(registry.root))) == [code]
    assert api.pin(str(registry.root)).changed == []
    assert not Path("/tmp/owned").exists()


def test_an_artifact_committed_to_git_is_pinned_by_its_bytes_but_not_served(
        registry: Registry) -> None:
    # DVC 3 hashes a file's bytes with md5: the digest a version pins now is the one `dvc add`
    # records once the file moves to DVC.
    registry.write("models/small.bin", b"small weights\n")
    digest = "md5:" + hashlib.md5(b"small weights\n").hexdigest()
    registry.write("manifests/models/small.yaml", model_manifest(
        "small", [("1.0.0", "models/small.bin", None)], stages='staging: {version: "1.0.0"}'))
    assert _codes(api.validate(str(registry.root))) == ["ART002"]  # not committed yet
    registry.commit("a small model, committed to git")
    assert _codes(api.validate(str(registry.root))) == ["ART003"]
    assert api.pin(str(registry.root)).changed == ["manifests/models/small.yaml"]
    assert f"digest: {digest}" in (registry.root / "manifests/models/small.yaml").read_text()
    assert api.validate(str(registry.root)).diagnostics == []
    registry.commit("pinned")
    assert api.validate(str(registry.root), rev="HEAD").diagnostics == []
    rendered = api.render(str(registry.root))
    (problem,) = rendered.diagnostics
    assert problem.code == "RND002" and "committed to git" in problem.message
    assert "dvc add" in problem.hint


def _fraud(registry: Registry, old: str, new: str, stages: str, deprecated: str = "") -> None:
    text = model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old),
                                    ("1.1.0", "models/fraud.pkl", new)], stages=stages)
    if deprecated:
        text = text.replace(f'version: "{deprecated}"\n',
                            f'version: "{deprecated}"\n      deprecated: true\n', 1)
    registry.write(FRAUD, text)


def test_a_deprecated_version_is_never_promoted_or_a_canary_and_a_rollback_is_warned(
        registry: Registry) -> None:
    root = str(registry.root)
    old = registry.digest("models/fraud.pkl")
    new = retrain(registry)
    _fraud(registry, old, new, 'staging: {version: "1.0.0"}\nproduction: {version: "1.0.0"}',
           deprecated="1.1.0")
    registry.commit("1.1.0 added, deprecated")
    for stages, code, severity in [
            ('staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}', "POL004", "error"),
            ('staging: {version: "1.0.0"}\nproduction:\n  version: "1.0.0"\n'
             '  canary: {version: "1.1.0", traffic: 10}', "POL004", "error")]:
        _fraud(registry, old, new, stages, deprecated="1.1.0")
        found = {(d.code, d.severity) for d in api.validate(root).diagnostics}
        assert (code, severity) in found, (stages, found)
    # Back to a deprecated version: a warning, the commit goes through.
    _fraud(registry, old, new, 'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}')
    registry.commit("1.1.0 to staging")
    _fraud(registry, old, new, 'staging: {version: "1.1.0"}\nproduction: {version: "1.0.0"}',
           deprecated="1.0.0")
    registry.commit("1.0.0 deprecated")
    _fraud(registry, old, new, 'staging: {version: "1.0.0"}\nproduction: {version: "1.0.0"}',
           deprecated="1.0.0")
    found = [(d.code, d.severity) for d in api.validate(root).diagnostics]
    assert found == [("POL005", "warning")]


def test_pin_checks_exactly_what_validate_checks(registry: Registry) -> None:
    """A retrain-only commit (DVC records new bytes, no manifest changes): validate accepts it
    (the newest version landed already), and so does pin; both are the published hooks."""
    retrain(registry)
    assert api.validate(str(registry.root)).diagnostics == []
    pinned = api.pin(str(registry.root), ["models/fraud.pkl.dvc"])
    assert pinned.diagnostics == [] and pinned.changed == []


def test_a_new_version_pinning_bytes_dvc_does_not_record_is_told_how_to_pin(
        registry: Registry) -> None:
    """It is the new version: the hint is not "add a new version instead"."""
    old = registry.digest("models/fraud.pkl")
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old),
                                                   ("1.1.0", "models/fraud.pkl",
                                                    "md5:" + "0" * 32)],
                                         stages='staging: {version: "1.0.0"}'))
    (found,) = [d for d in api.validate(str(registry.root)).diagnostics if d.code == "ART004"]
    assert "reconciler pin" in found.hint and "add a new version" not in found.hint

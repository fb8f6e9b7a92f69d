"""render: golden files per target, schema validity, injection safety, determinism, --check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from reconciler import api
from reconciler.render.quote import quote
from reconciler.report import diagnostics as report
from tests.conftest import PROJECT, Registry, model_manifest

GOLDEN = PROJECT / "tests" / "golden"
SCHEMAS = PROJECT / "reconciler" / "render" / "schemas"  # shipped: a clone has nothing beside it
FRAUD = "manifests/models/fraud.yaml"


def _environment(name: str, target: str, extra: str = "") -> str:
    return (f"apiVersion: reconciler/v1\nkind: Environment\nmetadata: {{name: {name}}}\n"
            f"spec:\n  namespace: ml-{name}\n  target: {target}\n{extra}")


def _serve_everywhere(registry: Registry, stage_extra: str = "", env_extra: str = "") -> None:
    """fraud 1.0.0 with canary 1.1.0 in an environment of every target."""
    old = registry.digest("models/fraud.pkl")
    registry.write("models/fraud.pkl", b"fraud weights v2\n")
    registry.dvc("add", "-q", "models/fraud.pkl")
    new = registry.digest("models/fraud.pkl")
    for target in ("kserve", "seldon", "kubernetes"):
        registry.write(f"manifests/environments/{target}.yaml",
                       _environment(f"on-{target}", target, env_extra))
    stage = ('version: "1.0.0"\ncanary: {version: "1.1.0", traffic: 25}\n'
             'replicas: {min: 2, max: 5}\nresources: {cpu: "500m", memory: 1Gi}\n' + stage_extra)
    stages = "\n".join(f"on-{t}:\n" + "".join(f"  {line}\n" for line in stage.splitlines())
                       for t in ("kserve", "seldon", "kubernetes"))
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", old),
                                                   ("1.1.0", "models/fraud.pkl", new)],
                                         stages=stages + '\nstaging: {version: "1.0.0"}'))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.mark.parametrize("target", ["kserve", "seldon", "kubernetes"])
def test_golden_file_per_target(registry: Registry, target: str) -> None:
    _serve_everywhere(registry)
    result = api.render(str(registry.root))
    assert result.ok, result.diagnostics
    rendered = (registry.root / "deploy" / f"on-{target}" / "fraud.yaml").read_text()
    golden = GOLDEN / f"{target}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()


def test_every_rendered_document_is_valid(registry: Registry) -> None:
    _serve_everywhere(registry)
    assert api.render(str(registry.root)).ok
    kserve = jsonschema.Draft7Validator(json.loads(
        (SCHEMAS / "kserve-inferenceservice-v1beta1.schema.json").read_text()))
    seldon = {kind: jsonschema.Draft7Validator(json.loads(
        (SCHEMAS / f"seldon-{kind.lower()}-v1alpha1.schema.json").read_text()))
        for kind in ("Model", "Experiment")}
    kinds = []
    for path in sorted((registry.root / "deploy").rglob("*.yaml")):
        for document in _documents(path):
            kinds.append(document["kind"])
            if document["kind"] == "InferenceService":
                kserve.validate(document)
            elif document["apiVersion"] == "mlops.seldon.io/v1alpha1":
                seldon[document["kind"]].validate(document)
            else:
                kubernetes_validate.validate(document, "1.30", strict=True)
    assert sorted(set(kinds)) == ["Deployment", "Experiment", "InferenceService", "Model",
                                  "Service"]
    # Seldon splits the canary's traffic with an Experiment between the two Models.
    model, canary, experiment = _documents(registry.root / "deploy" / "on-seldon" / "fraud.yaml")
    assert [model["kind"], canary["kind"]] == ["Model", "Model"]
    assert experiment["spec"] == {"default": "fraud", "candidates": [
        {"name": "fraud", "weight": 75}, {"name": "fraud-canary", "weight": 25}]}


def test_storage_uri_is_where_dvc_keeps_the_bytes(registry: Registry) -> None:
    _serve_everywhere(registry)
    registry.dvc("push", "-q")
    assert api.render(str(registry.root)).ok
    (model,) = _documents(registry.root / "deploy" / "on-kserve" / "fraud.yaml")
    uri = model["spec"]["predictor"]["model"]["storageUri"]
    assert uri.startswith("pvc://local/files/md5/")
    # The local remote folder is what the PVC holds: the object is there, and is the new bytes.
    on_disk = registry.root.parent / "remote" / uri.removeprefix("pvc://local/")
    assert on_disk.read_bytes() == b"fraud weights v2\n"


INJECTIONS = [
    "line one\nevil: true",
    "{{ 7 * 7 }} {% raw %}",
    "key: value, other: [1, 2]",
    "&anchor *alias !!python/object:os.system",
    "--- \n... \n# not a comment",
    "x" * 5000,
    "naïve ☃ 😀 \u2028 \u0085 \u200b\t\\\"'",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
def test_values_cannot_inject(registry: Registry, value: str) -> None:
    quoted = quote(value)  # the manifest itself must carry the value exactly
    _serve_everywhere(registry, stage_extra=f"env: {{PAYLOAD: {quoted}}}\n",
                      env_extra=f"  values: {{image: {quoted}}}\n")
    result = api.render(str(registry.root))
    assert result.ok, result.diagnostics
    (kserve,) = _documents(registry.root / "deploy" / "on-kserve" / "fraud.yaml")
    assert kserve["spec"]["predictor"]["model"]["env"] == [{"name": "PAYLOAD", "value": value}]
    assert set(kserve) == {"apiVersion", "kind", "metadata", "spec"}
    deployments = _documents(registry.root / "deploy" / "on-kubernetes" / "fraud.yaml")
    container = deployments[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == value
    assert {"name": "PAYLOAD", "value": value} in container["env"]
    assert [d["kind"] for d in deployments] == ["Deployment", "Deployment", "Service"]


def test_deterministic_whatever_the_order(registry: Registry, tmp_path: Path) -> None:
    _serve_everywhere(registry)
    assert api.render(str(registry.root), out="first").ok
    assert api.render(str(registry.root), out="second").ok
    # Same manifests under other file names (another load order): same bytes.
    for path in sorted((registry.root / "manifests").rglob("*.yaml")):
        path.rename(path.with_name("zz-" + path.name))
    assert api.render(str(registry.root), out="third").ok

    def tree(name: str) -> dict[str, bytes]:
        base = registry.root / name
        return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*"))
                if p.is_file()}

    first = tree("first")
    assert first == tree("second")
    index = ".reconciler-index.json"
    third = {k: v.replace(b"zz-", b"") for k, v in tree("third").items() if k != index}
    assert {k: v for k, v in first.items() if k != index} == third


def test_check_on_fresh_and_stale_output(registry: Registry) -> None:
    _serve_everywhere(registry)
    assert api.render(str(registry.root)).ok
    assert api.render(str(registry.root), check=True).ok
    done = subprocess.run([sys.executable, "-m", "reconciler", "render", "--check"],
                          cwd=registry.root, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "up to date" in done.stdout

    registry.write(FRAUD, (registry.root / FRAUD).read_text().replace("traffic: 25",
                                                                        "traffic: 50"))
    done = subprocess.run([sys.executable, "-m", "reconciler", "render", "--check"],
                          cwd=registry.root, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "-    canaryTrafficPercent: 25\n+    canaryTrafficPercent: 50" in done.stdout
    assert "stale" in done.stderr


def test_stale_files_are_removed_but_only_ours(registry: Registry) -> None:
    _serve_everywhere(registry)
    assert api.render(str(registry.root)).ok
    mine = registry.write("deploy/on-kserve/handwritten.yaml", "kind: ConfigMap\n")
    registry.write(FRAUD, (registry.root / FRAUD).read_text().split("\n  stages:")[0] + "\n")
    result = api.render(str(registry.root))
    assert result.ok and result.files == []
    assert not (registry.root / "deploy" / "on-kserve" / "fraud.yaml").exists()
    assert mine.exists()
    assert sorted(result.touched) == ["on-kserve/fraud.yaml", "on-kubernetes/fraud.yaml",
                                      "on-seldon/fraud.yaml", "staging/fraud.yaml"]


def test_only_one_environment(registry: Registry) -> None:
    _serve_everywhere(registry)
    result = api.render(str(registry.root), env="on-seldon")
    assert result.files == ["on-seldon/fraud.yaml"]
    with pytest.raises(api.ReconcilerError, match="no environment 'nope'"):
        api.render(str(registry.root), env="nope")


def test_user_template_overrides_the_shipped_one(registry: Registry) -> None:
    _serve_everywhere(registry)
    shipped = (PROJECT / "templates" / "kserve" / "model.yaml.j2").read_text()
    registry.write("templates/kserve/model.yaml.j2", shipped.replace(
        "    app.kubernetes.io/managed-by:", "    team.example.com/owner: {{ model.owner }}\n"
                                            "    app.kubernetes.io/managed-by:"))
    assert api.render(str(registry.root)).ok
    (document,) = _documents(registry.root / "deploy" / "on-kserve" / "fraud.yaml")
    assert document["metadata"]["labels"]["team.example.com/owner"] == "ml@example.com"
    (seldon,) = _documents(registry.root / "deploy" / "on-seldon" / "fraud.yaml")[:1]
    assert "team.example.com/owner" not in seldon["metadata"]["labels"]


def test_a_revision_renders_with_its_own_templates(registry: Registry, tmp_path: Path) -> None:
    _serve_everywhere(registry)
    shipped = (PROJECT / "templates" / "kserve" / "model.yaml.j2").read_text()
    registry.write("templates/kserve/model.yaml.j2", shipped.replace(
        "    app.kubernetes.io/managed-by:", "    committed: \"yes\"\n"
                                            "    app.kubernetes.io/managed-by:"))
    registry.commit("our own kserve template")
    registry.write("templates/kserve/model.yaml.j2", "kind: {{ broken.in.the.work.tree }}\n")
    assert api.render(str(registry.root), rev="HEAD", out=str(tmp_path / "at-head")).ok
    (document,) = _documents(tmp_path / "at-head" / "on-kserve" / "fraud.yaml")
    assert document["metadata"]["labels"]["committed"] == "yes"
    assert not api.render(str(registry.root), out=str(tmp_path / "work-tree")).ok


@pytest.mark.parametrize(("template", "expected"), [
    ("kind: {{ nothing.here }}\n", "'nothing' is undefined"),
    ("kind: {{ ''.__class__.__mro__ }}\n", "unsafe"),
    ("{% for x in %}\n", "template syntax"),
    ("kind: {{ lookup('env', 'HOME') }}\n", "'lookup' is undefined"),
])
def test_template_errors_name_template_line_and_model(registry: Registry, template: str,
                                                      expected: str) -> None:
    registry.write("templates/kserve/model.yaml.j2", "# a user template\n" + template)
    result = api.render(str(registry.root))
    (problem,) = result.diagnostics
    assert problem.code == "RND001"
    assert problem.path.endswith("templates/kserve/model.yaml.j2") and problem.line == 2
    assert expected in problem.message
    assert not (registry.root / "deploy").exists(), "nothing is written"


def test_invalid_output_names_the_path_inside_the_document(registry: Registry) -> None:
    shipped = (PROJECT / "templates" / "kserve" / "model.yaml.j2").read_text()
    registry.write("templates/kserve/model.yaml.j2",
                   shipped.replace("minReplicas: {{ stage.replicas.min }}", "minReplicas: lots"))
    result = api.render(str(registry.root))
    problem = result.diagnostics[0]
    assert problem.code == "RND003"
    assert "spec.predictor.minReplicas" in problem.message
    assert problem.path == "deploy/production/fraud.yaml"
    assert not (registry.root / "deploy").exists()


def test_unknown_target(registry: Registry) -> None:
    registry.write("manifests/environments/production.yaml",
                   _environment("production", "knative"))
    (problem,) = api.render(str(registry.root)).diagnostics  # validate finds it first
    assert problem.code == "REF007" and "knative" in problem.message


def test_templates_ship_inside_the_installed_package(tmp_path: Path, registry: Registry) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                    str(tmp_path / "wheel"), str(PROJECT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("reconciler_gitops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for target in ("kserve", "seldon", "kubernetes"):
        assert f"reconciler/templates/{target}/model.yaml.j2" in names
    for schema in SCHEMAS.glob("*.schema.json"):
        assert f"reconciler/render/schemas/{schema.name}" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "installed")
    code = ("import reconciler.render.engine as r, reconciler.api as a; "
            "print(r.builtin_templates()); print(a.render('.').ok)")
    done = subprocess.run([sys.executable, "-c", code], cwd=registry.root, capture_output=True,
                          text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "installed")})
    where, ok = done.stdout.split()
    assert where.startswith(str(tmp_path / "installed")) and ok == "True"
    shutil.rmtree(tmp_path / "installed")


def test_unwritable_output_is_one_line(registry: Registry) -> None:
    registry.write("deploy", "a file where the folder should be\n")
    done = subprocess.run([sys.executable, "-m", "reconciler", "render"], cwd=registry.root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "deploy" in done.stderr


def test_a_name_with_a_trailing_newline_is_not_a_dns_label(registry: Registry) -> None:
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace("  name: fraud\n", '  name: "trail\\n"\n'))
    result = api.validate(str(registry.root), no_base=True)
    assert [d.code for d in result.diagnostics] == ["NAM001"]
    assert "name 'trail\\n' is not a DNS-1123 label" in report.text(result.diagnostics, 1)
    assert not api.render(str(registry.root)).ok


def test_a_file_name_cannot_inject_yaml_into_the_rendered_header(registry: Registry) -> None:
    evil = "manifests/models/fraud.yaml\nstatus:\n  url: x\n#.yaml"
    (registry.root / FRAUD).rename(registry.root / evil)
    result = api.render(str(registry.root))
    assert result.ok, result.diagnostics
    text = (registry.root / "deploy" / "production" / "fraud.yaml").read_text()
    header = text.split("apiVersion:", 1)[0]
    assert header.count("\n") == 2 and "fraud.yaml\\nstatus:" in header
    assert "\nstatus:" not in text


@pytest.mark.parametrize("where", [".dvc/config", "deploy/.reconciler-index.json"])
def test_files_nested_past_pythons_limit_are_one_line(registry: Registry, where: str) -> None:
    """A .dvc/config with sections nested thousands deep, an index nested thousands deep:
    one clear line and a non-zero exit, never a RecursionError."""
    if where == ".dvc/config":
        text = (registry.root / where).read_text() + "".join(
            "[" * (n + 2) + f"s{n}" + "]" * (n + 2) + "\n" for n in range(800))
    else:
        text = '{"files": ' + "[" * 100_000 + "]" * 100_000 + "}"
    registry.write(where, text)
    done = subprocess.run([sys.executable, "-m", "reconciler", "render"], cwd=registry.root,
                          capture_output=True, text=True, check=False)
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stdout + done.stderr
    errors = [line for line in (done.stdout + done.stderr).splitlines()
              if line.startswith(("reconciler:", where, "deploy/"))]
    assert errors, done.stdout + done.stderr


@pytest.mark.parametrize("template", [
    '{% include "kserve/model.yaml.j2" %}',                                  # itself
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 4000000000 }}",
    "{{ ('x' * 1000) * 4000000 }}",
    "{{ 'x'.center(4000000000) }}",
    "{{ '{:>4000000000}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=4000000000) }}",
    "{{ 10 ** 100000000 }}",
    "{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}",               # 10 MB of output
])
def test_templates_run_within_a_budget(registry: Registry, template: str) -> None:
    """A repository template is the pull request's: whatever it does, render ends quickly
    with one RND001 line, within 10 s and 500 MiB."""
    registry.write("templates/kserve/model.yaml.j2", template + "\n")
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "reconciler",
                           "render", "--check"], cwd=registry.root, capture_output=True,
                          text=True, check=False, timeout=60)
    seconds, kib = done.stderr.strip().splitlines()[-1].split()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "RND001" in done.stdout and "Traceback" not in done.stdout + done.stderr
    assert float(seconds) < 10 and int(kib) < 500 * 1024, (seconds, kib)


def test_a_stage_that_deploys_nothing_renders_nothing_and_keeps_its_policy(
        registry: Registry) -> None:
    """An Environment without a target: batch jobs `get` what it serves; render, plan and
    apply render nothing for it, and its promotion policy still holds."""
    registry.write("manifests/environments/batch.yaml", """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: batch}
spec:
  promotion: {requireMetrics: {auc: ">= 0.99"}}
""")
    registry.commit("a stage for batch scoring")
    refused = api.promote(str(registry.root), "fraud", "1.0.0", to="batch")
    assert [d.code for d in refused.diagnostics] == ["POL002"] and not refused.written
    registry.write("manifests/environments/batch.yaml", """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: batch}
spec:
  serves:
    fraud: {version: "1.0.0"}
""")
    result = api.render(str(registry.root))
    assert result.ok and result.files and not any(f.startswith("batch/") for f in result.files)
    registry.commit("batch serves fraud")
    assert api.resolve("fraud", env="batch", repo=str(registry.root)).version == "1.0.0"


def test_an_environment_that_deploys_needs_a_namespace(registry: Registry) -> None:
    registry.write("manifests/environments/odd.yaml", """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: odd}
spec:
  target: kserve
""")
    found = api.validate(str(registry.root)).diagnostics
    assert [(d.path, d.code) for d in found] == [("manifests/environments/odd.yaml", "ENV001")]

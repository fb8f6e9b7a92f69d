"""The output folder is attacker-controlled (deploy/ and its index are committed): render never
reads, writes, prints or deletes outside it, never hangs on it, and writes all or nothing."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Registry, model_manifest

FRAUD = "manifests/models/fraud.yaml"
SECRET = "top secret, outside the repository\n"


def _reconciler(registry: Registry, *args: str,
                limit_file_size: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=registry.root,
                          capture_output=True, text=True, check=False, timeout=60,
                          preexec_fn=limit)


@pytest.fixture
def victim(registry: Registry) -> Path:
    outside = registry.root.parent / "victim.txt"
    outside.write_text(SECRET)
    return outside


@pytest.mark.parametrize("entry", [
    "../victim.txt", "../../r/victim.txt", "{victim}", "staging/../../victim.txt",
    "staging/fraud.yaml\n", "staging/./fraud.yaml", "staging//fraud.yaml", "a/b/c.yaml",
    "staging\\..\\..\\victim.txt", "production/fraud.yml", "",
])
def test_index_entries_that_are_not_render_outputs_are_refused(
        registry: Registry, victim: Path, entry: str) -> None:
    assert _reconciler(registry, "render").returncode == 0
    index = registry.root / "deploy" / ".reconciler-index.json"
    data = json.loads(index.read_text())
    data["files"][entry.format(victim=victim)] = "0" * 64
    index.write_text(json.dumps(data))
    before = {p: p.read_bytes() for p in (registry.root / "deploy").rglob("*") if p.is_file()}
    for args in (["render"], ["render", "--check"]):
        done = _reconciler(registry, *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "RND004" in done.stdout and "not a file render writes" in done.stdout
        assert SECRET.strip() not in done.stdout + done.stderr
        assert victim.read_text() == SECRET
    assert {p: p.read_bytes() for p in (registry.root / "deploy").rglob("*")
            if p.is_file()} == before


@pytest.mark.parametrize("link", ["deploy", "deploy/staging", "deploy/staging/fraud.yaml"])
def test_render_never_goes_through_a_symlink_in_the_output_folder(
        registry: Registry, victim: Path, link: str) -> None:
    elsewhere = registry.root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fraud.yaml").write_text(SECRET)
    target = elsewhere / "fraud.yaml" if link.endswith(".yaml") else elsewhere
    (registry.root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, registry.root / link)
    for args in (["render", "--check"], ["render"]):
        done = _reconciler(registry, *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "RND004" in done.stdout and "symlink" in done.stdout
        assert SECRET.strip() not in done.stdout + done.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["fraud.yaml"]
    assert (elsewhere / "fraud.yaml").read_text() == SECRET


def test_a_fifo_in_the_output_folder_is_refused_not_read(registry: Registry) -> None:
    (registry.root / "deploy" / "staging").mkdir(parents=True)
    os.mkfifo(registry.root / "deploy" / "staging" / "fraud.yaml")
    for args in (["render", "--check"], ["render"]):
        done = _reconciler(registry, *args)  # a read would block forever: the timeout fails it
        assert done.returncode == 1 and "not a regular file" in done.stdout


def test_a_render_that_cannot_be_written_whole_writes_nothing(registry: Registry) -> None:
    # staging's config is large (sorted after production's): the write of production succeeds
    # before staging's fails, and must not stay.
    digest = registry.digest("models/fraud.pkl")
    big_env = "\n".join(f"    V{i}: \"{'x' * 60}\"" for i in range(120))
    registry.write(FRAUD, model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", digest)],
        stages=f'production: {{version: "1.0.0"}}\nstaging:\n  version: "1.0.0"\n'
               f'  env:\n{big_env}'))
    done = _reconciler(registry, "render", limit_file_size=4096)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "deploy" in done.stderr and "nothing in it was changed" in done.stderr
    assert not (registry.root / "deploy").exists()
    assert _reconciler(registry, "render").returncode == 0  # with room, it all lands
    assert sorted(p.name for p in (registry.root / "deploy").rglob("*.yaml")) == [
        "fraud.yaml", "fraud.yaml"]


@pytest.mark.parametrize("link", ["templates/kserve/model.yaml.j2", "templates/kserve",
                                  "templates"])
def test_templates_are_never_read_through_a_symlink(registry: Registry, victim: Path,
                                                    link: str) -> None:
    # templates/ is the repository's own, so a pull request's: a link there could pull a file
    # from outside into deploy/ and into the CI log.
    outside = registry.root.parent / "outside-templates" / "kserve"
    outside.mkdir(parents=True)
    (outside / "model.yaml.j2").write_text(f"# {SECRET}")
    target = {"templates/kserve/model.yaml.j2": outside / "model.yaml.j2",
              "templates/kserve": outside, "templates": outside.parent}[link]
    (registry.root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, registry.root / link)
    registry.commit("a link in templates/")  # git keeps the link: --rev must refuse it too
    for args in (["render"], ["render", "--check"], ["render", "--rev", "HEAD"]):
        done = _reconciler(registry, *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "RND001" in done.stdout and "symlink" in done.stdout
        assert SECRET.strip() not in done.stdout + done.stderr
    assert not (registry.root / "deploy").exists()

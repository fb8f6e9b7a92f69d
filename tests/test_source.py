"""source: files read from git objects are the files of the work tree, whatever their names,
and git's output is parsed in forms no content can subvert."""

from __future__ import annotations

import subprocess

from reconciler import api, source
from reconciler.diagnostics import printable
from reconciler.git import plumbing
from reconciler.git.history import GitHistory
from tests.conftest import Registry

ODD = ["manifests/models/new\nline.yaml", "manifests/models/tab\there.yaml",
       "manifests/models/ümlaut.yaml", "manifests/models/space name.yaml"]


def test_work_tree_and_revision_list_and_read_the_same_files(registry: Registry) -> None:
    text = (registry.root / "manifests/models/fraud.yaml").read_text()
    for index, path in enumerate(ODD):
        (registry.root / path).write_text(text.replace("name: fraud", f"name: odd-{index}"))
    registry.commit("Odd names")
    work, revision = source.WorkTree(str(registry.root)), source.GitRevision(
        str(registry.root), "HEAD")
    assert work.manifest_paths() == revision.manifest_paths()
    assert set(ODD) <= set(revision.manifest_paths())
    assert work.dvc_paths() == revision.dvc_paths()
    for path in revision.manifest_paths() + revision.dvc_paths():
        assert work.read(path) == revision.read(path)


def test_a_file_name_that_is_not_utf8_is_refused_alike_everywhere(registry: Registry) -> None:
    name = b"caf\xe9.yaml".decode("utf-8", "surrogateescape")  # Latin-1, as on old systems
    (registry.root / "manifests" / "models" / name).write_bytes(
        (registry.root / "manifests/models/fraud.yaml").read_bytes().replace(b"fraud", b"cafe"))
    subprocess.run(["git", "add", "-A"], cwd=registry.root, check=True)
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm",
                    "Latin-1 name"], cwd=registry.root, check=True)
    for rev in (None, "HEAD"):
        found = [(d.code, printable(d.path)) for d in api.validate(str(registry.root),
                                                                   rev=rev).diagnostics]
        assert [code for code, _ in found] == ["FIL003"], (rev, found)
    url = f"sqlite:///{registry.root.parent / 'r.sqlite'}"
    assert api.apply(str(registry.root), url).applied is None  # the target does not validate
    state = source.GitRevision(str(registry.root), "HEAD")
    assert "manifests/models/caf\\xe9.yaml" in state.manifest_paths()  # listed, never read


def test_a_blob_cannot_pass_for_the_next_object_header(registry: Registry) -> None:
    forged = b"123\n" + b"0" * 40 + b" blob 5\nhello\n"
    (registry.root / "forged.txt").write_bytes(forged)
    (registry.root / "other.txt").write_bytes(b"other\n")
    registry.commit("Blobs that look like cat-file output")
    tree = {entry.path: entry.blob for entry in plumbing.ls_tree(str(registry.root), "HEAD")}
    found = plumbing.read_blobs(str(registry.root), [tree["forged.txt"], tree["other.txt"]])
    assert found == {tree["forged.txt"]: forged, tree["other.txt"]: b"other\n"}


def test_history_lists_first_parent_changes_of_registry_files_only(registry: Registry) -> None:
    base = registry.repo.head.commit.hexsha
    registry.write("README.md", "not a registry file\n")
    registry.commit("Docs")
    fraud = registry.root / "manifests/models/fraud.yaml"
    fraud.write_text(fraud.read_text().replace("auc: 0.93", "auc: 0.94"))
    edit = registry.commit("Edit")
    listed = list(GitHistory(str(registry.root)).first_parent_changes(base, "HEAD"))
    assert [(sha, [c.path for c in changes]) for sha, changes in listed] == [
        (edit, ["manifests/models/fraud.yaml"])]


def test_a_submodule_under_manifests_is_read_by_no_one(registry: Registry, tmp_path) -> None:
    """git keeps a submodule as one gitlink: apply and plan never see its files, so validate
    and render (which read the work tree) must not either, or a model would be rendered into
    deploy/ that the audit trail never records."""
    other = tmp_path / "other"
    other.mkdir()
    git = ["git", "-c", "user.name=A", "-c", "user.email=a@x", "-c", "protocol.file.allow=always"]
    subprocess.run([*git, "init", "-q", str(other)], check=True)
    text = (registry.root / "manifests/models/fraud.yaml").read_text()
    (other / "hidden.yaml").write_text(text.replace("name: fraud", "name: hidden"))
    subprocess.run([*git, "-C", str(other), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(other), "commit", "-q", "-m", "x"], check=True)
    subprocess.run([*git, "-C", str(registry.root), "submodule", "add", "-q", str(other),
                    "manifests/vendored"], check=True)
    registry.commit("A submodule under manifests/")
    assert (registry.root / "manifests/vendored/hidden.yaml").exists()
    work, revision = source.WorkTree(str(registry.root)), source.GitRevision(
        str(registry.root), "HEAD")
    assert work.manifest_paths() == revision.manifest_paths()
    assert not any("vendored" in path for path in work.manifest_paths())
    rendered = api.render(str(registry.root), check=False)
    assert not any("hidden" in path for path in rendered.files)

"""get and resolve: the exact bytes a version pins, by version or by environment, in a clone
with no DVC cache; whatever the remote holds, only the pinned bytes ever appear."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from reconciler import api
from reconciler.diagnostics import ReconcilerError
from tests.conftest import Registry, model_manifest
from tests.test_validate import retrain, run_cli

FRAUD = "manifests/models/fraud.yaml"


def _clone(registry: Registry, tmp_path: Path) -> Registry:
    """A fresh clone beside the original (its DVC remote, ../remote, is the same folder)."""
    target = registry.root.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(registry.root), str(target)], check=True)
    return Registry(target, registry.repo)


def _empty(tmp_path: Path) -> Path:
    """A folder of its own for what get writes (the registry is in tmp_path too)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _object(registry: Registry, digest: str) -> Path:
    value = digest.removeprefix("md5:")
    return registry.root.parent / "remote" / "files" / "md5" / value[:2] / value[2:]


def _tamper(registry: Registry, digest: str, data: bytes) -> None:
    """Other bytes under digest's name in the remote (DVC stores objects read-only)."""
    stored = _object(registry, digest)
    stored.chmod(0o644)
    stored.write_bytes(data)


def test_get_fetches_what_an_environment_serves_in_a_clone_with_no_cache(
        registry: Registry, tmp_path: Path) -> None:
    clone = _clone(registry, tmp_path)
    written = api.get("fraud@production", out=str(tmp_path / "model.pkl"), repo=str(clone.root))
    assert _md5(Path(written)) == registry.digest("models/fraud.pkl")
    assert not (clone.root / ".dvc" / "cache").exists()


def test_resolve_gives_what_a_program_needs(registry: Registry) -> None:
    found = api.resolve("fraud", env="staging", repo=str(registry.root))
    assert (found.version, found.digest, found.environment) == (
        "1.0.0", registry.digest("models/fraud.pkl"), "staging")
    assert found.storage_uri == "pvc://local/files/md5/" + found.digest[4:6] + "/" + \
        found.digest[6:]
    assert found.metrics == {"auc": 0.93}


def test_an_older_version_comes_by_its_digest_whatever_the_path_holds_now(
        registry: Registry, tmp_path: Path) -> None:
    first = registry.digest("models/fraud.pkl")
    second = retrain(registry)
    registry.dvc("push", "-q")
    registry.write(FRAUD, model_manifest("fraud", [("1.0.0", "models/fraud.pkl", first),
                                                   ("1.1.0", "models/fraud.pkl", second)]))
    registry.commit("fraud 1.1.0")
    root = str(registry.root)
    assert _md5(Path(api.get("fraud@1.0.0", out=str(tmp_path / "a"), repo=root))) == first
    assert _md5(Path(api.get("fraud", out=str(tmp_path / "b"), repo=root))) == second


def test_bytes_that_are_not_the_pinned_ones_never_appear(registry: Registry,
                                                         tmp_path: Path) -> None:
    _tamper(registry, registry.digest("models/fraud.pkl"), b"tampered in the remote")
    out = _empty(tmp_path)
    done = run_cli(registry, "get", "fraud@production", "-o", str(out / "model.pkl"))
    assert done.returncode == 2 and "not the pinned" in done.stderr
    assert list(out.iterdir()) == []


def test_a_remote_without_the_object_says_what_to_push(registry: Registry,
                                                       tmp_path: Path) -> None:
    _object(registry, registry.digest("models/fraud.pkl")).unlink()
    out = _empty(tmp_path)
    done = run_cli(registry, "get", "fraud", "-o", str(out / "model.pkl"))
    assert done.returncode == 2 and "dvc push" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


def test_an_artifact_committed_to_git_comes_from_git_objects(registry: Registry,
                                                             tmp_path: Path) -> None:
    registry.write("models/small.bin", b"small weights in git\n")
    registry.write("manifests/models/small.yaml", model_manifest(
        "small", [("1.0.0", "models/small.bin",
                   "md5:" + hashlib.md5(b"small weights in git\n").hexdigest())]))
    registry.commit("a model committed to git")
    written = Path(api.get("small@1.0.0", out=str(tmp_path), repo=str(registry.root)))
    assert written == tmp_path / "small.bin"
    assert written.read_bytes() == b"small weights in git\n"
    where = run_cli(registry, "get", "small", "--url")
    assert where.returncode == 0 and "git " in where.stdout and ":models/small.bin" in where.stdout


@pytest.mark.parametrize(("reference", "message"), [
    ("nope@production", "no model 'nope'"),
    ("fraud@9.9.9", "has no version '9.9.9'"),
    ("fraud@", "is not MODEL"),
    ("@production", "is not MODEL"),
    ("fraud@\x1b[31m", r"has no version '\x1b[31m'"),
])
def test_what_names_nothing_is_one_line_and_writes_nothing(
        registry: Registry, tmp_path: Path, reference: str, message: str) -> None:
    out = _empty(tmp_path)
    with pytest.raises(ReconcilerError) as raised:
        api.get(reference, out=str(out / "x"), repo=str(registry.root))
    assert message in str(raised.value) and "\x1b" not in str(raised.value)
    assert list(out.iterdir()) == []


def test_a_remote_dvc_config_local_may_override_is_read_through_dvc(
        registry: Registry, tmp_path: Path) -> None:
    """`.dvc/config.local` can move a remote (credentials, another URL): then DVC itself is
    asked, by content address, and the same check holds."""
    moved = registry.root.parent / "moved-remote"
    (registry.root.parent / "remote").rename(moved)
    registry.dvc("remote", "modify", "--local", "local", "url", str(moved))
    out = _empty(tmp_path)
    written = api.get("fraud@staging", out=str(out), repo=str(registry.root))
    assert _md5(Path(written)) == registry.digest("models/fraud.pkl")
    stored = moved / "files" / "md5" / registry.digest("models/fraud.pkl")[4:6] / \
        registry.digest("models/fraud.pkl")[6:]
    stored.unlink()
    Path(written).unlink()
    done = run_cli(registry, "get", "fraud@staging", "-o", str(out / "again.pkl"))
    assert done.returncode == 2 and "dvc push" in done.stderr and list(out.iterdir()) == []


def test_a_file_already_there_is_replaced_only_with_force(registry: Registry,
                                                          tmp_path: Path) -> None:
    out = _empty(tmp_path)
    (out / "model.pkl").write_bytes(b"someone's work")
    done = run_cli(registry, "get", "fraud", "-o", str(out / "model.pkl"))
    assert done.returncode == 2 and "exists" in done.stderr and "--force" in done.stderr
    assert (out / "model.pkl").read_bytes() == b"someone's work"
    forced = run_cli(registry, "get", "fraud", "-o", str(out / "model.pkl"), "--force")
    assert forced.returncode == 0
    assert _md5(out / "model.pkl") == registry.digest("models/fraud.pkl")


def test_with_a_database_what_the_registry_branch_serves_as_reconciled(
        registry: Registry, db_url: str, tmp_path: Path) -> None:
    """db=: the version the database records an environment serves, read at the commit it
    was reconciled to, not what a later (or another branch's) commit of this clone says."""
    root = str(registry.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url)
    served = registry.digest("models/fraud.pkl")
    retrain(registry)
    registry.dvc("push", "-q")
    assert api.register(root, "fraud", commit=True).written
    assert api.promote(root, "fraud", "1.0.1", to="staging", commit=True).written
    assert api.resolve("fraud", env="staging", repo=root).version == "1.0.1"  # HEAD says so
    reconciled = api.resolve("fraud", env="staging", repo=root, db=db_url)
    assert (reconciled.version, reconciled.digest) == ("1.0.0", served)
    assert reconciled.rev == registry.repo.commit("HEAD~2").hexsha
    out = _empty(tmp_path)
    done = run_cli(registry, "get", "fraud@staging", "--db", db_url, "-o", str(out / "m.pkl"))
    assert done.returncode == 0, done.stderr
    assert _md5(out / "m.pkl") == served
    # a version named is read at the reconciled commit too: 1.0.1 is not there yet
    with pytest.raises(ReconcilerError, match=r"no version '1\.0\.1'"):
        api.locate("fraud@1.0.1", repo=root, db=db_url)
    with pytest.raises(ReconcilerError, match="give one"):
        api.get("fraud@staging", repo=root, rev="HEAD~1", db=db_url)


def test_a_database_that_disagrees_with_its_commit_fetches_nothing(
        registry: Registry, db_url: str, tmp_path: Path) -> None:
    import sqlalchemy

    from reconciler.registry import db

    root = str(registry.root)
    api.db_upgrade(root, db_url)
    api.apply(root, db_url)
    engine = db.make_engine(sqlalchemy.make_url(db_url))
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE model_versions SET digest = :d"),
                           {"d": "md5:" + "0" * 32})
    engine.dispose()
    out = _empty(tmp_path)
    done = run_cli(registry, "get", "fraud@production", "--db", db_url, "-o",
                   str(out / "m.pkl"))
    assert done.returncode == 2 and "audit verify" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and list(out.iterdir()) == []


def _directory_model(registry: Registry) -> str:
    """A model saved as a folder (a SavedModel, say), `dvc add`ed and pushed: its digest."""
    for relative, content in {"saved/weights.bin": bytes(range(256)) * 8,
                              "saved/config.json": b'{"layers": 3}\n',
                              "saved/assets/vocab.txt": b"a\nb\n"}.items():
        registry.write(relative, content)
    registry.dvc("add", "-q", "saved")
    registry.dvc("push", "-q")
    digest = registry.digest("saved")
    assert digest.endswith(".dir")
    registry.write("manifests/models/bert.yaml", model_manifest("bert", [("1.0.0", "saved",
                                                                          digest)]))
    registry.commit("bert 1.0.0, a folder")
    return digest


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_directory_artifact_arrives_whole_in_a_clone_with_no_cache(
        registry: Registry, tmp_path: Path) -> None:
    _directory_model(registry)
    clone = _clone(registry, tmp_path)
    out = _empty(tmp_path)
    written = api.get("bert@1.0.0", out=str(out / "model"), repo=str(clone.root))
    assert _tree(Path(written)) == _tree(registry.root / "saved")
    assert sorted(p.name for p in out.iterdir()) == ["model"]  # no scratch left beside it
    # through DVC's object database too (a remote .dvc/config.local may move)
    moved = registry.root.parent / "moved-remote"
    (registry.root.parent / "remote").rename(moved)
    clone.dvc("remote", "modify", "--local", "local", "url", str(moved))
    again = api.get("bert", out=str(out / "again"), repo=str(clone.root))
    assert _tree(Path(again)) == _tree(registry.root / "saved")


def test_a_directory_with_one_wrong_file_leaves_nothing(registry: Registry,
                                                        tmp_path: Path) -> None:
    _directory_model(registry)
    _tamper(registry, "md5:" + hashlib.md5(b'{"layers": 3}\n').hexdigest(),
            b'{"layers": 300}\n')
    out = _empty(tmp_path)
    done = run_cli(registry, "get", "bert", "-o", str(out / "model"))
    assert done.returncode == 2 and "config.json" in done.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("relpath", ["../escaped.txt", "/tmp/absolute.txt", "a/../../x",
                                     "ok/./x", "", "a\\..\\b", "dup", "dup/inside"])
def test_a_listing_a_pull_request_points_at_cannot_write_outside(
        registry: Registry, tmp_path: Path, relpath: str) -> None:
    """The listing is whatever object a pinned digest names: a crafted one (pushed by anyone
    who can push) names paths outside the target, twice, or as file and folder."""
    content = b"payload\n"
    md5 = hashlib.md5(content).hexdigest()
    entries = [{"md5": md5, "relpath": relpath}]
    if relpath.startswith("dup"):
        entries = [{"md5": md5, "relpath": "dup"}, {"md5": md5, "relpath": relpath}]
    listing = json.dumps(entries).encode()
    digest = "md5:" + hashlib.md5(listing).hexdigest() + ".dir"
    for stored_digest, data in ((digest, listing), ("md5:" + md5, content)):
        stored = _object(registry, stored_digest)
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(data)
    registry.write("manifests/models/evil.yaml", model_manifest("evil", [("1.0.0", "evil",
                                                                          digest)]))
    registry.commit("a crafted listing")
    out = _empty(tmp_path) / "deep"
    out.mkdir()
    done = run_cli(registry, "get", "evil@1.0.0", "-o", str(out / "model"))
    assert done.returncode == 2 and "listing" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(out.iterdir()) == [] and not (out.parent / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()

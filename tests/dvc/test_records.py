"""Our reading of .dvc files and dvc.lock agrees with DVC's own, on real `dvc add`/`dvc repro`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from dvc.repo import Repo as DvcRepo
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.dvc import records as dvc
from reconciler.dvc.records import LEGACY_MD5, MD5, DvcIndex
from reconciler.source import GitRevision, WorkTree
from tests.conftest import Registry, copy_registry

TRAIN = ("import os, sys; os.makedirs('models', exist_ok=True); "
         "data = open(sys.argv[1], 'rb').read(); "
         "open(sys.argv[2], 'wb').write(b'model of ' + data[:16])")


@pytest.fixture(scope="module")
def dvc_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: `dvc add` and `dvc repro` take seconds a test, a copy milliseconds."""
    base = tmp_path_factory.mktemp("dvc-project")
    repo = git.Repo.init(base / "repo", initial_branch="main")
    project = Registry(base / "repo", repo)
    project.dvc("init", "-q")
    project.write("data/raw.csv", "a,b\n1,2\n3,4\n")
    project.write("data/images/one.bin", b"\x00\x01" * 50)
    project.write("data/images/two.bin", b"\x02\x03" * 70)
    project.write("data/images/nested/three.bin", b"\x04" * 10)
    project.dvc("add", "-q", "data/raw.csv", "data/images")
    project.write("params.yaml", "train:\n  depth: 4\n  rate: 0.1\n")
    project.dvc("stage", "add", "-q", "-n", "train", "-d", "data/raw.csv", "-p", "train.depth",
                "-o", "models/model.bin",
                f"{sys.executable} -c \"{TRAIN}\" data/raw.csv models/model.bin")
    project.dvc("repro", "-q")
    project.commit("data and model")
    repo.close()
    return base


@pytest.fixture
def dvc_project(dvc_project_template: Path, tmp_path: Path) -> Iterator[Registry]:
    """A repository with a file and a directory added, and a stage reproduced (a copy)."""
    project = copy_registry(dvc_project_template, tmp_path / "p")
    yield project
    project.repo.close()


def _dvc_outputs(root: Path) -> dict[str, tuple[str, int | None, int | None]]:
    """What DVC itself says every output is: path -> (digest, size, nfiles)."""
    with DvcRepo(str(root)) as repo:
        return {
            os.path.relpath(out.fs_path, root): (
                f"{out.hash_info.name}:{out.hash_info.value}", out.meta.size, out.meta.nfiles)
            for out in repo.index.outs
        }


def test_reading_agrees_with_dvc(dvc_project: Registry) -> None:
    expected = _dvc_outputs(dvc_project.root)
    assert set(expected) == {"data/raw.csv", "data/images", "models/model.bin"}
    for source in (WorkTree(str(dvc_project.root)), GitRevision(str(dvc_project.root), "HEAD")):
        index = DvcIndex(source)
        for path, (digest, size, nfiles) in expected.items():
            output = index.resolve(path)
            assert output is not None, path
            assert (output.digest, output.size) == (digest, size)
            if output.is_dir:
                assert output.nfiles == nfiles == 3
        assert index.diagnostics == []
    assert DvcIndex(WorkTree(str(dvc_project.root))).resolve("data/missing.csv") is None


def test_stage_lineage_agrees_with_dvc(dvc_project: Registry) -> None:
    output = DvcIndex(WorkTree(str(dvc_project.root))).resolve("models/model.bin")
    assert output is not None and output.lineage is not None
    assert output.recorded_in == "dvc.lock"
    assert output.lineage.stage == "train"
    assert output.lineage.params == {"params.yaml": {"train.depth": 4}}
    with DvcRepo(str(dvc_project.root)) as repo:
        (stage,) = [s for s in repo.index.stages if getattr(s, "name", None) == "train"]
        expected = {(os.path.relpath(dep.fs_path, dvc_project.root),
                     f"{dep.hash_info.name}:{dep.hash_info.value}")
                    for dep in stage.deps if dep.hash_info and dep.hash_info.name != "params"}
    assert {(d.path, d.digest) for d in output.lineage.deps} >= expected
    assert ("data/raw.csv", dvc_project.digest("data/raw.csv")) in expected


def test_dvc2_pointer_files_read_as_legacy_hash(dvc_project: Registry) -> None:
    # DVC 2 wrote no `hash: md5` field; DVC 3 reads such outputs as md5-dos2unix.
    dvc_project.write("legacy.bin", b"legacy bytes\n")
    dvc_project.write("legacy.bin.dvc", "outs:\n- md5: 0123456789abcdef0123456789abcdef\n"
                                        "  size: 13\n  path: legacy.bin\n")
    expected = _dvc_outputs(dvc_project.root)["legacy.bin"]
    assert expected[0] == f"{LEGACY_MD5}:0123456789abcdef0123456789abcdef"
    output = DvcIndex(WorkTree(str(dvc_project.root))).resolve("legacy.bin")
    assert output is not None and output.digest == expected[0]
    assert output.hash_name == LEGACY_MD5
    assert dvc_project.digest("data/raw.csv").startswith(f"{MD5}:")


def test_outputs_declared_away_from_their_path_are_found(dvc_project: Registry) -> None:
    # Not the conventional <path>.dvc: a .dvc file in another folder naming ../ paths.
    dvc_project.write("weights/w.bin", b"w" * 100)
    dvc_project.write("pointers/w.dvc", "outs:\n- md5: ffffffffffffffffffffffffffffffff\n"
                                        "  size: 100\n  hash: md5\n  path: ../weights/w.bin\n")
    output = DvcIndex(WorkTree(str(dvc_project.root))).resolve("weights/w.bin")
    assert output is not None and output.recorded_in == "pointers/w.dvc"


def test_malformed_dvc_file_is_a_diagnostic(dvc_project: Registry) -> None:
    dvc_project.write("broken.bin.dvc", "outs: [\n")
    index = DvcIndex(WorkTree(str(dvc_project.root)))
    assert index.resolve("broken.bin") is None
    assert [d.code for d in index.diagnostics] == ["ART005"]
    assert index.diagnostics[0].path == "broken.bin.dvc"


def test_object_layout_is_dvcs_own(dvc_project: Registry, tmp_path: Path) -> None:
    """object_path agrees with DVC's remote object databases for DVC 3 and DVC 2 hashes."""
    from reconciler.dvc.remotes import object_path

    dvc_project.dvc("remote", "add", "-d", "store", str(tmp_path / "remote"))
    value = "0123456789abcdef0123456789abcdef"
    with DvcRepo(str(dvc_project.root)) as repo:
        for hash_name in (MD5, LEGACY_MD5):
            odb = repo.cloud.get_remote_odb(None, hash_name=hash_name)
            expected = os.path.relpath(odb.oid_to_path(value), tmp_path / "remote")
            assert object_path(f"{hash_name}:{value}") == expected


def test_deeply_nested_dvc_file_is_refused_not_crashed(dvc_project: Registry) -> None:
    dvc_project.write("deep.bin.dvc", "outs: " + "[" * 100_000 + "]" * 100_000 + "\n")
    index = DvcIndex(WorkTree(str(dvc_project.root)))
    assert index.resolve("deep.bin") is None
    assert [(d.path, d.code) for d in index.diagnostics] == [("deep.bin.dvc", "ART005")]


def test_dvc_add_output_is_read_by_lines(dvc_project: Registry) -> None:
    # What `dvc add` really writes takes the line reading, and it gives what YAML gives.
    for name in ("data/raw.csv.dvc", "data/images.dvc"):
        raw = (dvc_project.root / name).read_bytes()
        data = dvc._as_dvc_writes_it(raw)
        assert data is not None and data == _yaml(raw)


_DIGEST = "d41d8cd98f00b204e9800998ecf8427e"
# Keys and values DVC writes, and ones YAML 1.1 reads as something else (booleans, null, octal,
# dates, base 60...) or that are not plain scalars at all.
_KEYS = ["md5", "size", "hash", "path", "nfiles", "_x", "k2", "yes", "no", "on", "Off", "y", "N",
         "null", "NULL", "true", "False"]
_VALUES = ["md5", "model.pkl", "data/a_b.csv", _DIGEST, "1024", "x+y", "0", "7", "._x",
           "1234567890123456789012345678901234567890", "0777", "08", "1_000", "0x1F", "0b11",
           "1.5", "1e3", "1.0e+3", "123e4567", ".inf", ".NaN", "2024-01-01", "2001-12-14t21",
           "yes", "No", "ON", "off", "y", "n", "null", "Null", "~", "true", "FALSE", "-1", "+1",
           "190:20:30", "a:b", "a #c", "'q'", "\"q\"", "/abs", "é", ""]


def _yaml(raw: bytes) -> Any:
    return yaml.load(raw, Loader=yaml.CSafeLoader)


def test_line_reading_gives_what_yaml_gives_for_every_key_and_value() -> None:
    # Each key and value in turn inside a file DVC could have written: the line reading either
    # declines it or agrees with YAML. Plain words, paths, digests and sizes it must take.
    taken = set()
    for key in _KEYS:
        for value in _VALUES:
            raw = (f"outs:\n- md5: {_DIGEST}\n  {key}: {value}\n  path: a.bin\n"
                   f"- path: b.bin\n  {key}: {value}\n").encode()
            data = dvc._as_dvc_writes_it(raw)
            assert data is None or data == _yaml(raw), raw
            if data is not None:
                taken.add((key, value))
    assert taken >= {(key, value) for key in _KEYS[:7] for value in _VALUES[:10]}
    assert ("yes", "md5") not in taken and ("size", "0777") not in taken


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["- ", "  "] * 6 + ["   ", "-  ", "", "-"]),
                          st.sampled_from(_KEYS[:5]), st.sampled_from(_VALUES[:10])),
                max_size=8),
       st.sampled_from(["outs:\n"] * 4 + ["outs: \n", "deps:\n", "outs:\n  "]),
       st.sampled_from(["\n"] * 4 + ["\r\n"]))
def test_line_reading_gives_what_yaml_gives_for_any_layout(lines: list[tuple[str, str, str]],
                                                           head: str, newline: str) -> None:
    raw = (head + "".join(f"{lead}{key}: {value}{newline}" for lead, key, value in lines)).encode()
    data = dvc._as_dvc_writes_it(raw)
    assert data is None or data == _yaml(raw)


def test_line_reading_takes_plain_layouts_only() -> None:
    digest = "d41d8cd98f00b204e9800998ecf8427e"
    plain = f"outs:\n- md5: {digest}\n  size: 0\n  hash: md5\n  path: a.bin\n".encode()
    assert dvc._as_dvc_writes_it(plain) == {
        "outs": [{"md5": digest, "size": 0, "hash": "md5", "path": "a.bin"}]}
    for other in (plain.replace(b"0\n", b"0 # empty\n"), plain.replace(b"a.bin", b"'a.bin'"),
                  plain.replace(b"size: 0", b"size: 1.5"), plain + b"frozen: true\n",
                  plain.replace(b"\n", b"\r\n"), plain[:-1], b"outs:\n"):
        assert dvc._as_dvc_writes_it(other) is None


@pytest.mark.parametrize("size", [b"9" * 5000, b"99999999999999999999999", b"-5", b"1.5",
                                  b"yes", b"null_ish"])
def test_sizes_a_database_cannot_hold_are_refused_not_crashed(size: bytes) -> None:
    from reconciler.dvc.records import DvcFileError, parse_dvc_file

    raw = (b"outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: " + size
           + b"\n  hash: md5\n  path: m.pkl\n")
    with pytest.raises(DvcFileError):
        parse_dvc_file("models/m.pkl.dvc", raw)

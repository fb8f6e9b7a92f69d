"""streamed_git: git's output read as it comes, git stopped when the reader stops early (never
left blocked on a full pipe), and git's failure said when the reader read to the end; the files
commits changed, named by blob, and blobs read only within a size limit."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from reconciler.diagnostics import ReconcilerError
from reconciler.git.plumbing import commits_changing, git_blob, read_small_blobs, streamed_git


def _repository(tmp_path: Path, commits: int) -> Path:
    """A repository whose log is far larger than a pipe's buffer (64 KiB)."""
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "manifests").mkdir()
    script = "".join(f"echo {n} > manifests/m.yaml\ngit add -A\ngit -c user.name=T "
                     f"-c user.email=t@x commit -q -m 'commit {n} {'x' * 3000}'\n"
                     for n in range(commits))
    subprocess.run(["sh", "-c", script], cwd=root, check=True)
    return root


def _within(seconds: float, work: object) -> None:
    """Run work in a thread; fail (rather than hang the suite) if it does not end in time."""
    done = threading.Thread(target=work, daemon=True)  # type: ignore[arg-type]
    done.start()
    done.join(seconds)
    assert not done.is_alive(), "streamed_git hung"


def test_a_reader_that_stops_early_stops_git(tmp_path: Path) -> None:
    root = _repository(tmp_path, 40)

    def read_a_little() -> None:
        with streamed_git(str(root), "log", "--format=%H %B") as log:
            assert log.read(100)

    _within(20, read_a_little)

    def first_only() -> None:
        changes = commits_changing(str(root), "HEAD", ["manifests/"])
        assert next(changes).path == "manifests/m.yaml"
        changes.close()

    _within(20, first_only)


def test_git_failing_is_one_error_once_read_to_the_end(tmp_path: Path) -> None:
    root = _repository(tmp_path, 2)
    with pytest.raises(ReconcilerError, match="git log failed"), \
            streamed_git(str(root), "log", "no-such-revision") as log:
        assert log.read() == b""
    with pytest.raises(ReconcilerError, match="git cat-file failed"), \
            git_blob(str(root), "HEAD", "manifests/none.yaml") as blob:
        blob.read()
    with git_blob(str(root), "HEAD", "manifests/m.yaml") as blob:
        assert blob.read() == b"1\n"


def test_an_error_in_the_reader_stops_git_and_is_raised(tmp_path: Path) -> None:
    root = _repository(tmp_path, 40)

    def fail_midway() -> None:
        with pytest.raises(KeyError), streamed_git(str(root), "log") as log:
            log.read(10)
            raise KeyError("the reader's own error")

    _within(20, fail_midway)


def _blob_of(root: Path, data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "--stdin"], cwd=root, input=data,
                          capture_output=True, check=True).stdout.decode().strip()


def test_changed_files_come_with_their_blobs_and_large_ones_are_never_read(
        tmp_path: Path) -> None:
    root = _repository(tmp_path, 2)
    (root / "manifests" / "big.yaml").write_bytes(b"x" * 5000)
    os.symlink("m.yaml", root / "manifests" / "link.yaml")
    (root / "manifests" / "m.yaml").unlink()
    subprocess.run(["sh", "-c", "git add -A && git -c user.name=T -c user.email=t@x commit -qm "
                                "last"], cwd=root, check=True)
    changed = list(commits_changing(str(root), "HEAD", ["manifests/"]))
    head = changed[0].commit
    # A deleted file and a symlink have no blob to read; a regular file names its new blob.
    assert {c.path: c.blob for c in changed if c.commit == head} == {
        "manifests/big.yaml": _blob_of(root, b"x" * 5000), "manifests/link.yaml": None,
        "manifests/m.yaml": None}
    # A name git would quote (a quote, a tab, a newline) comes as it is stored.
    odd = 'manifests/odd "name"\tand\nmore.yaml'
    (root / odd).write_bytes(b"odd\n")
    subprocess.run(["sh", "-c", "git add -A && git -c user.name=T -c user.email=t@x commit -qm "
                                "odd"], cwd=root, check=True)
    newest = next(commits_changing(str(root), "HEAD", ["manifests/"]))
    assert (newest.path, newest.blob) == (odd, _blob_of(root, b"odd\n"))
    written = [c.blob for c in changed if c.commit != head and c.blob]
    assert len(written) == 2
    found = read_small_blobs(str(root), [*written, _blob_of(root, b"x" * 5000)], 4096)
    assert found == {_blob_of(root, b"0\n"): b"0\n", _blob_of(root, b"1\n"): b"1\n"}

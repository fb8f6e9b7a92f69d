"""What DVC recorded for an artifact at other revisions: at the revision a version names
(`rev:`), and over the history of the files that record it, so a digest DVC really recorded
once can be told from a made-up one. Reads git through `source`; every blob of a DVC file is
parsed at most once per process (the cache is keyed by blob id, which is its content)."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from reconciler.dvc.records import (
    IN_GIT,
    MD5,
    DvcFileError,
    DvcIndex,
    Output,
    committed,
    parse_dvc_file,
)
from reconciler.git.objects import NULL_SHA, log_changes
from reconciler.git.plumbing import nul_separated, read_blobs, resolve_commit, run_git
from reconciler.source import GitRevision

# (DVC file path, blob id) -> its outputs ([] when it does not parse): outputs are read
# relative to the file's folder, so the same bytes elsewhere record other paths.
_PARSED: dict[tuple[str, str], list[Output]] = {}


class RecordedDigest(NamedTuple):
    """A digest DVC recorded for a path, its size, and the newest commit that recorded it."""

    digest: str
    size: int | None
    commit: str


def at_revision(root: str, rev: str, path: str) -> tuple[str, Output | None]:
    """(the commit rev names, what DVC records for path there); ReconcilerError when rev
    names no commit."""
    commit = resolve_commit(root, rev)
    source = GitRevision(root, commit)
    return commit, DvcIndex(source).resolve(path) or committed(path,
                                                               source.committed_digest(path))


def recorders(artifact: str, recorded_in: str | None) -> list[str]:
    """The files whose history holds DVC's records of artifact: artifact.dvc, the top-level
    dvc.lock, and the file that records it now (recorded_in, when it is a DVC file)."""
    found = [f"{artifact}.dvc", "dvc.lock"]
    if recorded_in is not None and recorded_in != IN_GIT:
        found.append(recorded_in)
    return sorted(set(found))


def over_history(root: str, until: str, path: str, recorders: list[str]
                 ) -> dict[str, RecordedDigest]:
    """digest -> RecordedDigest for every digest that any of the recorder files (.dvc files,
    dvc.lock) recorded for path in the history reachable from until."""
    touched = _changed_blobs(root, until, recorders)
    missing = sorted({blob for _, dvc_path, blob in touched if (dvc_path, blob) not in _PARSED})
    blobs = read_blobs(root, missing) if missing else {}
    found: dict[str, RecordedDigest] = {}
    for sha, dvc_path, blob in touched:  # newest first, as git log lists them
        for recorded in _outputs(dvc_path, blob, blobs.get(blob)):
            if recorded.path == path and recorded.digest not in found:
                found[recorded.digest] = RecordedDigest(recorded.digest, recorded.size, sha)
    return found


def committed_over_history(root: str, until: str, path: str) -> set[str]:
    """The digests (md5 of its bytes, as `dvc add` would record them) of every content a file
    committed to git itself had in the history reachable from until."""
    blobs = sorted({blob for _, _, blob in _changed_blobs(root, until, [path])})
    return {f"{MD5}:{hashlib.md5(raw, usedforsecurity=False).hexdigest()}"
            for raw in read_blobs(root, blobs).values()}


def _changed_blobs(root: str, until: str, paths: list[str]) -> list[tuple[str, str, str]]:
    """(commit, path, new blob) of every change to paths (literal, never globs) in the
    history reachable from until, newest first; deletions left out."""
    output = run_git(root, "log", "--format=%H", "--raw", "-z", "--no-renames", "--no-abbrev",
                     "--end-of-options", until, "--",
                     *[f":(literal){path}" for path in sorted(set(paths))])
    return [(sha, path, blob) for sha, changes in log_changes(nul_separated(output))
            for path, _, blob, status in changes if status != "D" and blob != NULL_SHA]


def _outputs(dvc_path: str, blob: str, raw: bytes | None) -> list[Output]:
    key = (dvc_path, blob)
    if key not in _PARSED:
        try:
            _PARSED[key] = parse_dvc_file(dvc_path, raw) if raw is not None else []
        except DvcFileError:
            _PARSED[key] = []
    return _PARSED[key]

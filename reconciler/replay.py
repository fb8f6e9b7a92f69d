"""Reading history for `apply`: each commit's events, in chunks of whole commits.

Replays first-parent history from a starting snapshot, re-reading only the files each commit
changed, and diffs consecutive snapshots into events. Never touches a database: a long replay
runs in a forked process (ChildReplay) while `reconcile` writes what it sends.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from reconciler import loader, policy, serving, servinghistory, spec
from reconciler.batch import CommitBatch, commit_batch
from reconciler.catalog import EMPTY, Catalog, Snapshot
from reconciler.diagnostics import ReconcilerError
from reconciler.diff import DatabaseState, diff, undo
from reconciler.dvc import history as dvchistory
from reconciler.dvc.records import DvcFileError, Output, parse_dvc_file
from reconciler.events import Event
from reconciler.git import people
from reconciler.git.history import GitHistory
from reconciler.git.objects import Change, CommitInfo
from reconciler.limits import MAX_FILE_BYTES
from reconciler.paths import (
    escapes,
    is_dvc_file,
    is_manifest_path,
    is_registry_file,
    unreadable_name,
)

CHUNK_COMMITS = 200
PREFETCH_COMMITS = 500  # commits whose changed files are read from git in one round trip
FIRST_PREFETCH_COMMITS = 50


class History:
    """Snapshots of consecutive commits, re-reading only the files each commit changed.

    A manifest that does not load at some commit keeps its last good content (and is counted in
    `skipped`), so one broken commit in history does not look like a retirement. When two files
    define the same name, the first path in sorted order wins, as in a full build.
    """

    def __init__(self, known: dict[tuple[str, bytes], list[spec.Manifest]] | None = None):
        self._known = known or {}  # files parsed already (e.g. while validating the target)
        self._files: dict[str, list[spec.Manifest]] = {}
        # kind -> name -> path -> manifest: every definition, so a removal can reveal another.
        self._defined: dict[str, dict[str, dict[str, spec.Manifest]]] = {
            "Model": {}, "Dataset": {}, "Environment": {}}
        self._current: dict[str, dict[str, Any]] = {"Model": {}, "Dataset": {},
                                                     "Environment": {}}
        self._outputs: dict[str, dict[str, Output]] = {}
        self._output_view: dict[str, Output] = {}
        self._recorders: dict[str, set[str]] = {}  # artifact -> DVC files that record it
        self._pinning: dict[str, set[str]] = {}  # artifact -> manifests with versions of it
        self._touched: set[tuple[str, str]] = set()  # (kind, name) since the last snapshot
        # What the Environments' files say each model serves, and the models with it (see
        # serving): a model is folded again only when it or what is said of it changes.
        self._served: dict[str, dict[str, spec.Stage]] = {}
        self._folded: dict[str, spec.Model] = {}
        self.skipped: list[tuple[str, str]] = []
        # The bytes of every registry file read (what validate would read at this commit),
        # whether or not it loads: each replayed change is checked as validate checks it.
        self.files: dict[str, bytes] = {}
        self._manifest_paths: list[str] | None = None  # of files, sorted; None: to be made
        # Those files as the checks loaded them, so a file is parsed once while it is unchanged.
        self.loaded: dict[tuple[str, bytes], Any] = {}
        # (model, environment, version) served at some moment since the commit this state
        # started at (None: the beginning), and that commit: "served before" (promotion.from,
        # rollbacks) is known here, and asked of git only for what lies before it.
        self.served_ever: set[tuple[str, str, str]] = set()
        self.started_at: str | None = None

    def update(self, path: str, raw: bytes | None, commit: str = "") -> None:
        """Take the new content of one changed file (None: deleted)."""
        if raw is not None and len(raw) > MAX_FILE_BYTES:  # FIL002, as validate says
            self.refuse(path, commit)
            return
        if raw is None:
            self._forget(path)
        elif is_registry_file(path):
            if path not in self.files:
                self._manifest_paths = None
            self.files[path] = raw
        if is_manifest_path(path):
            if raw is None:
                self._replace_manifests(path, [])
                return
            known = self._known.get((path, raw))
            if known is not None:
                self._replace_manifests(path, known)
                return
            loaded = loader.load(path, raw)
            parsed = [spec.parse(doc.data) for doc in loaded.documents]
            good = [p for p in parsed if not isinstance(p, list)]
            if loaded.diagnostics or len(good) != len(parsed):
                self.skipped.append((commit, path))
                return
            self.loaded[(path, raw)] = list(zip(loaded.documents, good, strict=True))
            self._replace_manifests(path, good)
        elif is_dvc_file(path):
            outputs: list[Output] = []
            if raw is not None:
                try:
                    outputs = parse_dvc_file(path, raw)
                except DvcFileError:
                    self.skipped.append((commit, path))
                    return
            self._replace_outputs(path, outputs)

    def refuse(self, path: str, commit: str = "") -> None:
        """A changed file that is not read (a symlink): like one that does not load, it is
        skipped and its last good content, if any, kept (validate refuses it: FIL001)."""
        if is_registry_file(path):
            self._forget(path)
            self.skipped.append((commit, path))

    def _forget(self, path: str) -> None:
        if self.files.pop(path, None) is not None:
            self._manifest_paths = None

    def manifest_paths(self) -> list[str]:
        """The sorted paths of the manifests in files (made again only when one comes or
        goes: each replayed commit is checked with them)."""
        if self._manifest_paths is None:
            self._manifest_paths = sorted(p for p in self.files if is_manifest_path(p))
        return self._manifest_paths

    def _replace_manifests(self, path: str, manifests: list[spec.Manifest]) -> None:
        for artifact in _artifacts(self._files.get(path, [])):
            self._pinning[artifact].discard(path)
        for artifact in _artifacts(manifests):
            self._pinning.setdefault(artifact, set()).add(path)
        touched = {(m.kind, m.metadata.name) for m in self._files.pop(path, [])}
        for kind, name in touched:
            self._defined[kind][name].pop(path, None)
        if manifests:
            self._files[path] = manifests
        for manifest in manifests:
            kind, name = manifest.kind, manifest.metadata.name
            self._defined[kind].setdefault(name, {}).setdefault(path, manifest)
            touched.add((kind, name))
        self._touched |= touched
        for kind, name in touched:
            definitions = self._defined[kind].get(name)
            if definitions:
                self._current[kind][name] = definitions[min(definitions)]
            else:
                self._defined[kind].pop(name, None)
                self._current[kind].pop(name, None)
        if any(kind == "Environment" for kind, _ in touched):
            served = serving.served_by(self._current["Environment"])
            self._touched |= {("Model", name) for name in served.keys() | self._served.keys()
                              if served.get(name) != self._served.get(name)}
            self._served = served

    def _replace_outputs(self, path: str, outputs: list[Output]) -> None:
        touched = set(self._outputs.pop(path, {}))
        for artifact in touched:
            self._recorders[artifact].discard(path)
        if outputs:
            self._outputs[path] = {}
            for output in outputs:
                self._outputs[path].setdefault(output.path, output)
                self._recorders.setdefault(output.path, set()).add(path)
                touched.add(output.path)
        for artifact in touched:
            recorders = self._recorders.get(artifact)
            if recorders:
                self._output_view[artifact] = self._outputs[min(recorders)][artifact]
            else:
                self._recorders.pop(artifact, None)
                self._output_view.pop(artifact, None)

    def checked_by_validate(self, changed: list[str]) -> list[str] | None:
        """The manifests validate checks in full for a change of these files (None: every
        one): the changed manifests and those that pin an artifact a changed DVC file records;
        every one when a manifest or DVC file went away (anything may have referred to it)."""
        if any(path not in self.files for path in changed):
            return None
        artifacts = {artifact for path in changed if is_dvc_file(path)
                     for artifact in self._outputs.get(path, {})}
        checked = {path for path in changed if is_manifest_path(path)}
        for artifact in artifacts:
            checked |= self._pinning.get(artifact, set())
        return sorted(checked)

    def forget_unread(self) -> None:
        """Drop the loaded files that are no longer the current content of their path, once
        they are as many as the current ones (each commit adds one or two)."""
        if len(self.loaded) > 2 * len(self.files) + 64:
            self.loaded = {key: value for key, value in self.loaded.items()
                           if self.files.get(key[0]) == key[1]}

    def defined_at(self, path: str) -> tuple[str, str]:
        """(kind, name) of the first manifest path defines (its last good content), for
        naming a finding in that file; ("Repository", "") for a file that defines none."""
        manifests = self._files.get(path)
        if manifests:
            return manifests[0].kind, manifests[0].metadata.name
        return "Repository", ""

    def snapshot(self) -> Snapshot:
        """The state after every update so far."""
        models = self._current["Model"]
        for kind, name in self._touched:
            if kind != "Model":
                continue
            if name in models:
                self._folded[name] = serving.with_stages(models[name],
                                                         self._served.get(name, {}))
            else:
                self._folded.pop(name, None)
        self._touched = set()
        return Snapshot(dict(self._folded), dict(self._current["Dataset"]),
                        dict(self._current["Environment"]), dict(self._output_view))

    def record_served(self, models: Iterable[spec.Model]) -> None:
        """Note what models' stages serve (after a commit's events are judged)."""
        for model in models:
            self.served_ever.update((model.metadata.name, env, version)
                                    for version, envs in policy.served_in(model).items()
                                    for env in envs)

    def touched(self) -> set[tuple[str, str]]:
        """(kind, name) of every manifest that may differ from the last snapshot (the others
        are the very same objects), so a diff of the two need not look at the rest."""
        return set(self._touched)


def _artifacts(manifests: list[spec.Manifest]) -> set[str]:
    return {version.artifact for manifest in manifests
            if isinstance(manifest, spec.Model | spec.Dataset)
            for version in manifest.spec.versions}


def snapshot_at(history: GitHistory, sha: str | None,
                known: Catalog | None = None) -> tuple[History, Snapshot]:
    """The full state at a commit (every manifest and DVC file read once; files that known,
    a catalog of another commit, already parsed are not parsed again)."""
    state = History(known.parsed_files if known is not None else None)
    if sha is not None:
        files = history.files_at(sha)
        blobs = history.read_blobs([c.blob for c in files if c.blob is not None
                                    and _readable(c)])
        for change in files:
            if not _readable(change):
                state.refuse(change.path, sha)
            elif change.blob is not None:
                state.update(change.path, blobs[change.blob], sha)
    snapshot = state.snapshot() if sha is not None else EMPTY
    state.started_at = sha
    state.record_served(snapshot.models.values())
    return state, snapshot


class Walk(NamedTuple):
    """Where a walk starts: the cursor commit, or after a history rewrite the merge base the
    database rewinds to (None there: no common ancestor, rewind to nothing). recorded is what
    the database holds when the cursor commit itself is gone from git."""

    cursor: str | None
    rewritten: bool
    base: str | None
    recorded: DatabaseState | None = None

    @property
    def start(self) -> str | None:
        """The commit whose snapshot the first replayed commit is diffed against."""
        return self.base if self.rewritten else self.cursor


def walk_from(history: GitHistory, cursor: str | None, target: str,
              recorded: DatabaseState | None = None, reset_history: bool = False) -> Walk:
    """The walk from the cursor to target; the errors a user can fix are raised here.

    When the cursor commit is gone from a full clone (a force-push, then a fresh clone),
    recorded (what the database holds, and the commits it reconciled) gives the newest
    reconciled commit git still has on target's history: the walk rewinds to it. A rebuild
    passes recorded where git has the cursor again, to take the walk that apply took.
    """
    if cursor is not None and (recorded is not None or not history.has_commit(cursor)):
        if history.is_shallow() and not history.has_commit(cursor):
            raise ReconcilerError(
                f"this is a shallow clone without commit {cursor[:12]}, where the database was "
                "last reconciled: fetch more history (git fetch --unshallow, or "
                "fetch-depth: 0 in actions/checkout) and run apply again")
        if recorded is None:
            raise ReconcilerError(f"commit {cursor[:12]}, where the database was last "
                                  "reconciled, is not in this repository")
        base = next((commit for commit in recorded.commits if history.has_commit(commit)
                     and history.is_ancestor(commit, target)), None)
        if base is None and not reset_history:
            raise ReconcilerError(
                f"commit {cursor[:12]}, where the database was last reconciled, is not in this "
                f"repository, nor is any of the {len(recorded.commits)} commits it reconciled "
                "on the history of the target: if --db is this repository's database and its "
                "whole history was rewritten, `reconciler apply --reset-history` records that "
                "and replays the new history (nothing is deleted)")
        return Walk(cursor, True, base, recorded)
    if cursor is None and history.is_shallow():
        raise ReconcilerError("a first apply needs the full history, and this is a shallow "
                              "clone: git fetch --unshallow (or fetch-depth: 0) first")
    if cursor is not None and not history.is_ancestor(cursor, target):
        if history.is_shallow():
            # A shallow boundary hides how the cursor reaches the target (a checkout fetched
            # again with --depth): only a complete history can show a rewrite.
            raise ReconcilerError(
                f"this is a shallow clone, and commit {cursor[:12]}, where the database was "
                f"last reconciled, is not on the history it holds of {target[:12]}: fetch more "
                "history (git fetch --unshallow, or fetch-depth: 0 in actions/checkout) and "
                "run apply again; nothing was written")
        return Walk(cursor, True, history.merge_base(cursor, target))
    return Walk(cursor, False, None)


def chunks(history: GitHistory, walk: Walk, target: str, known: Catalog | None,
           chunk_rows: int, estimate: int | None = None) -> Iterator[Chunk]:
    """Every chunk of the walk to target (reads git and computes; never touches a database).
    estimate: about how many commits the walk has, for progress until the real count is known."""
    pending: list[CommitBatch] = []
    if walk.recorded is not None:  # the cursor commit is gone: undo what the database holds
        state, snapshot = snapshot_at(history, walk.base, known)
        pending.append(_rewrite_batch(history, walk.cursor, walk.base, target, None, snapshot,
                                      walk.recorded))
        commits = history.first_parent_changes(walk.base, target)
        yield from _replayed(history, state, snapshot, commits, target, pending, chunk_rows,
                             estimate, history.merged_in(walk.base, target),
                             history.landing_floors(walk.base, target))
        return
    state, snapshot = snapshot_at(history, walk.cursor, known)
    if walk.rewritten and walk.cursor is not None:
        state, rewound = snapshot_at(history, walk.base, known)
        pending.append(_rewrite_batch(history, walk.cursor, walk.base, target, snapshot,
                                      rewound))
        snapshot = rewound
    commits = history.first_parent_changes(walk.start, target)
    yield from _replayed(history, state, snapshot, commits, target, pending, chunk_rows,
                         estimate, history.merged_in(walk.start, target),
                         history.landing_floors(walk.start, target))


class Chunk(NamedTuple):
    """Whole commits to write in one transaction, ending the cursor at to_commit."""

    batches: list[CommitBatch]
    to_commit: str
    commits: int
    skipped: list[tuple[str, str]]
    total: int  # commits in the whole walk, for progress


def _replayed(history: GitHistory, state: History, snapshot: Snapshot,
              commits: Iterator[tuple[str, list[Change]]], target: str,
              pending: list[CommitBatch], chunk_rows: int,
              estimate: int | None, merged: dict[str, list[str]],
              floors: dict[str, datetime]) -> Iterator[Chunk]:
    """Replay commits onto state: each commit's events, grouped into transaction-sized chunks.
    The last chunk always ends at target (commits after the last change move the cursor).
    floors: per commit, the time it lands no earlier than (GitHistory.landing_floors)."""
    not_before = pending[0].when if pending else None  # a history rewrite's batch
    rows = sum(len(b.events) * 2 + 1 for b in pending)
    number = counted = 0
    for batch in _prefetch_batches(commits):
        infos, blobs = history.read_commits_and_blobs(
            [sha for sha, _ in batch],
            [c.blob for _, cs in batch for c in cs if c.blob is not None and _readable(c)])
        replayed = []
        for sha, changes in batch:
            info = infos[sha]
            # What the changed files held at the parent (None: absent), for the check below.
            previously = {change.path: state.files.get(change.path) for change in changes}
            for change in changes:
                if not _readable(change):
                    state.refuse(change.path, info.sha)
                else:
                    state.update(change.path,
                                 None if change.blob is None else blobs[change.blob],
                                 info.sha)
            touched = state.touched()
            after = state.snapshot()
            events = _with_sizes(history, sha, diff(snapshot, after, touched), after)
            # A version rolled back before this commit has served too: known since the walk
            # started, asked of git before that (bench/backfill.py).
            events = servinghistory.confirmed(history.root, events, state.served_ever,
                                              state.started_at)
            if events:
                events += landed_violations(history.root, info, previously, state)
            state.record_served(after.models[name] for kind, name in touched
                                if kind == "Model" and name in after.models)
            snapshot = after
            # Landed times never go back along the registry branch: a commit claiming a time
            # before its predecessors' lands with them (its own time stays in commits), and
            # after a history rewrite, the new commits land with it, never before it.
            floor = max((t for t in (floors.get(sha), not_before) if t is not None),
                        default=None)
            late = floor is not None and info.committed_at < floor
            replayed.append(commit_batch(info, events, after,
                                         landed_at=floor if late else None))
        for credited in _credited(history, replayed, merged):
            number += 1
            pending.append(credited)
            rows += len(credited.events) * 2 + 1  # an audit row and about one entity row
            if len(pending) >= CHUNK_COMMITS or rows >= chunk_rows:
                yield Chunk(pending, credited.info.sha, number - counted,
                            list(state.skipped), max(estimate or 0, number))
                pending, rows, counted = [], 0, number
    yield Chunk(pending, target, number - counted, list(state.skipped), number)


# Recorded by diff as policy.violated already, with what the gate judged (policy.violations);
# and LAY001, which every commit before `reconciler migrate` has: the layout, not the change.
_NOT_RECORDED = ("POL001", "POL002", "LAY001")


def landed_violations(root: str, info: CommitInfo, previously: dict[str, bytes | None],
                      state: History) -> list[Event]:
    """policy.violated, with its code, for every error `validate --base <parent>` gives the
    commit's change (previously: what each changed file held at the parent): what landed
    although validate refuses it (a direct push, say)."""
    from reconciler import catalog, rules
    from reconciler.source import FilesAt

    only = state.checked_by_validate(list(previously))
    if only == []:
        return []
    paths = state.manifest_paths()
    current = catalog.build(FilesAt(root, info.sha, state.files, paths), only,
                            loaded=state.loaded)
    files_before = {path: raw for path, raw in state.files.items() if path not in previously}
    files_before.update((path, raw) for path, raw in previously.items() if raw is not None)
    same_paths = files_before.keys() == state.files.keys()
    base = (catalog.build_base(FilesAt(root, info.parents[0], files_before,
                                       paths if same_paths else None), current, only)
            if info.parents else None)
    if base is not None:  # what served before: known since the walk started, git before it
        base.served_known, base.registry_rev = state.served_ever, state.started_at
    found = [d for d in rules.check_change(current, base)
             if d.severity == "error" and d.code not in _NOT_RECORDED]
    state.forget_unread()
    events = []
    for diagnostic in sorted(set(found)):
        kind, name = state.defined_at(diagnostic.path)
        events.append(Event("policy.violated", kind, name, payload={
            "code": diagnostic.code, "path": diagnostic.path, "line": diagnostic.line,
            "column": diagnostic.col, "message": diagnostic.message}))
    return events


def _with_sizes(history: GitHistory, sha: str, events: list[Event],
                snapshot: Snapshot) -> list[Event]:
    """Versions added with the digest of an older training (DVC records newer bytes now) and
    no size pinned get the size DVC recorded with that digest in the history up to sha (a
    function of git alone, so a rebuild finds the same)."""
    sized = []
    for event in events:
        payload = event.payload
        if (event.type in ("version.added", "dataset.version.added") and "size" not in payload
                and payload.get("digest")):
            artifact = payload["artifact"]
            current = snapshot.outputs.get(artifact)
            recorders = dvchistory.recorders(artifact, current.recorded_in if current else None)
            # A path validate refuses (ART001) is history all the same: it never blocks apply.
            found = None if escapes(artifact) else (
                dvchistory.over_history(history.root, sha, artifact, recorders).get(
                    payload["digest"]))
            if found is not None and found.size is not None:
                event = dataclasses.replace(event, payload={**payload, "size": found.size})
        sized.append(event)
    return sized


def _credited(history: GitHistory, batches: list[CommitBatch],
              merged: dict[str, list[str]]) -> list[CommitBatch]:
    """The batches with who proposed, merged and reviewed each change (people.credited); the
    commits merges brought in are read in one round trip, and only for commits with events."""
    wanted = [sha for batch in batches if batch.events for sha in merged.get(batch.info.sha, [])]
    brought = history.commit_infos(wanted) if wanted else {}
    return [dataclasses.replace(batch, people=people.credited(
                batch.info, [brought[sha] for sha in merged.get(batch.info.sha, [])]))
            if batch.events else batch for batch in batches]


def _readable(change: Change) -> bool:
    """Whether a changed file is read at all: a symlink or a name that is not UTF-8 is
    refused, as validate refuses it (FIL001, FIL003)."""
    return not change.is_link and not unreadable_name(change.path)


def _prefetch_batches(commits: Iterator[tuple[str, list[Change]]]
                      ) -> Iterator[list[tuple[str, list[Change]]]]:
    """Commits in groups whose blobs are read from git in one round trip; the first group is
    small, so replaying starts while git is still listing the rest."""
    size = FIRST_PREFETCH_COMMITS
    while batch := list(itertools.islice(commits, size)):
        yield batch
        size = PREFETCH_COMMITS


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _ChildFailed(NamedTuple):
    message: str


class ChildReplay:
    """Chunks computed in a forked process while this one does other work and writes.

    Parsing and diffing history take about as long as writing it, and the two are independent
    (reconcile.read_history has the figure). The child only reads git and computes; it never
    touches the database (it inherits the engine but does not use it). The collector is off
    in both (the API pauses it), so neither writes to the pages they share copy-on-write.
    """

    def __init__(self, chunks: Iterator[Chunk], walk: Walk):
        self.walk = walk  # what the chunks replay: stale once another apply moves the cursor
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._child = context.Process(target=_send_chunks, args=(chunks, self._receiver, sender),
                                      daemon=True)
        self._child.start()
        sender.close()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                message = self._receiver.recv()
            except EOFError:
                raise ReconcilerError("the history reader process stopped unexpectedly") from None
            if message is None:
                return
            if isinstance(message, _ChildFailed):
                raise ReconcilerError(message.message)
            yield message

    def close(self) -> None:
        """Stop the child, if it still runs."""
        self._receiver.close()
        if self._child.is_alive():
            self._child.kill()
        self._child.join()


BUFFERED_CHUNKS = 16  # chunks the child computes ahead of the writer (bounds its memory)


def _send_chunks(chunks: Iterator[Chunk], receiver: Any, sender: Any) -> None:
    # Only the parent may hold the read end: if it dies (kill -9), the next send fails with a
    # broken pipe and this process ends instead of blocking on a full pipe forever.
    receiver.close()
    # A thread sends, so computing never waits for the parent to read (it is busy validating
    # and rendering the target at first); the queue bounds how far ahead the child gets.
    outbox: queue.Queue[Any] = queue.Queue(BUFFERED_CHUNKS)
    sending = threading.Thread(target=_send_from, args=(outbox, sender), daemon=True)
    sending.start()
    try:
        for chunk in chunks:
            outbox.put(chunk)
        outbox.put(None)  # the end; a closed pipe without it means the child died
    except ReconcilerError as error:
        outbox.put(_ChildFailed(str(error)))
    except Exception as error:  # reported by the parent as one line
        outbox.put(_ChildFailed(f"reading history failed: {type(error).__name__}: {error}"))
    sending.join()


def _send_from(outbox: queue.Queue[Any], sender: Any) -> None:
    try:
        while True:
            message = outbox.get()
            sender.send(message)
            if message is None or isinstance(message, _ChildFailed):
                break
    except OSError:  # a broken pipe: the parent is gone, and so is any reason to go on
        os._exit(0)
    finally:
        sender.close()


def _rewrite_batch(history: GitHistory, old: str | None, base: str | None, target: str,
                   before: Snapshot | None, after: Snapshot,
                   recorded: DatabaseState | None = None) -> CommitBatch:
    """history.rewritten, plus the events that undo what the lost commits did: from their
    snapshot (before) when git still has them, else from what the database recorded."""
    anchor = history.commit_info(base or target)
    pusher = history.commit_info(target)
    payload: dict[str, Any] = {"previousCursor": old, "mergeBase": base, "target": target}
    if recorded is not None:
        payload["previousCursorMissing"] = True
    events = [Event("history.rewritten", "Repository", "", payload=payload)]
    if before is not None:
        events += diff(before, after)
    elif recorded is not None:
        events += undo(recorded, after)
    if base is not None:  # the undo returns to what the new history served: no violation
        events = servinghistory.confirmed(history.root, events, set(), base)
    # The rewrite lands with the new history: at the target's time (the push is no earlier),
    # and never before what the database recorded last (the lost cursor commit), else what
    # the lost commits served would end before it began.
    lost = (recorded.landed if recorded is not None
            else history.commit_info(old).committed_at if old is not None else None)
    landed = max(anchor.committed_at, pusher.committed_at, lost or anchor.committed_at)
    return commit_batch(anchor, events, after,
                        actor=(pusher.committer_name, pusher.committer_email),
                        landed_at=landed)

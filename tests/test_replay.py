"""replay: history into chunks of whole commits, on a real repository (no database)."""

from __future__ import annotations

from pathlib import Path

from reconciler import reconcile, replay
from reconciler.git.history import GitHistory
from reconciler.limits import MAX_FILE_BYTES
from tests.conftest import Registry, model_manifest

FRAUD = "manifests/models/fraud.yaml"


def _chunks(registry: Registry, since: str | None, chunk_rows: int = 5000
            ) -> list[replay.Chunk]:
    history = GitHistory(str(registry.root))
    target = history.resolve("HEAD")
    walk = replay.walk_from(history, since, target)
    return list(replay.chunks(history, walk, target, None, chunk_rows))


def test_the_last_chunk_ends_at_the_target_past_commits_that_touch_nothing(
        registry: Registry) -> None:
    start = registry.repo.head.commit.hexsha
    fraud = registry.root / FRAUD
    fraud.write_text(fraud.read_text().replace("auc: 0.93", "auc: 0.95"))
    edit = registry.commit("Edit a landed version")
    registry.write("README.md", "docs\n")
    head = registry.commit("Docs only")
    chunks = _chunks(registry, start)
    assert chunks[-1].to_commit == head
    assert [b.info.sha for c in chunks for b in c.batches] == [edit]
    events = [e for c in chunks for b in c.batches for e in b.events]
    # A landed version's content changed: validate --base refuses it, so it is recorded so.
    assert [e.type for e in events] == ["version.updated", "policy.violated"]
    assert events[1].payload["code"].startswith("IMM") and events[1].name == "fraud"


def test_a_file_that_does_not_load_keeps_its_last_content(registry: Registry) -> None:
    start = registry.repo.head.commit.hexsha
    fraud = registry.root / FRAUD
    good = fraud.read_text()
    fraud.write_text(good + "  stray: [unclosed\n")
    broken = registry.commit("Broken YAML")
    fraud.write_text(good.replace('production: {version: "1.0.0"}', ""))
    registry.commit("Unserve production")
    chunks = _chunks(registry, start)
    events = [(b.info.sha, e.type) for c in chunks for b in c.batches for e in b.events]
    assert (broken, "model.retired") not in events  # not a retirement: it did not load
    assert [t for _, t in events] == ["stage.removed"]
    assert (broken, FRAUD) in chunks[-1].skipped


def test_chunks_hold_whole_commits_up_to_the_row_budget(registry: Registry) -> None:
    fraud = registry.root / FRAUD
    for number in range(3):  # each commit touches the manifest (a comment: no events)
        fraud.write_text(fraud.read_text() + f"# change {number}\n")
        registry.commit(f"Change {number}")
    chunks = _chunks(registry, None, chunk_rows=1)  # every commit over budget: one per chunk
    assert [len(chunk.batches) for chunk in chunks] == [1, 1, 1, 1, 0]
    assert sum(chunk.commits for chunk in chunks) == len(
        list(registry.repo.iter_commits("HEAD", first_parent=True)))


def test_a_file_over_the_size_limit_in_history_is_skipped_unread(registry: Registry) -> None:
    start = registry.repo.head.commit.hexsha
    fraud = registry.root / FRAUD
    good = fraud.read_text()
    fraud.write_text(good + "#" * (MAX_FILE_BYTES + 1) + "\n")
    huge = registry.commit("A manifest over the limit")
    chunks = _chunks(registry, start)
    assert (huge, FRAUD) in chunks[-1].skipped
    assert [e.type for c in chunks for b in c.batches for e in b.events] == []


def test_an_older_digest_on_a_path_outside_the_repository_never_blocks_apply(
        registry: Registry, tmp_path: Path) -> None:
    # Pushed past validate (ART001): apply records it, and the size lookup in DVC's history
    # (a git log limited to the artifact's DVC files) is never asked about such a path.
    for artifact in ("../outside.pkl", "/etc/passwd", ":(glob)**"):
        registry.write("manifests/models/odd.yaml", model_manifest(
            "odd", [("1.0.0", artifact, "md5:" + "0" * 32)]))
        registry.commit(f"odd artifact {artifact}")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert reconcile.sync(str(registry.root), url, "HEAD").commits > 0

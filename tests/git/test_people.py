"""Who a change is credited to: merger, proposers, reviewers; nothing a message says can make
someone the proposer or the merger."""

from __future__ import annotations

import subprocess
from datetime import datetime

from reconciler.git import people
from reconciler.git.history import GitHistory
from reconciler.git.objects import CommitInfo
from reconciler.git.people import Person
from tests.conftest import Registry


def _info(sha: str, author: tuple[str, str], committer: tuple[str, str] | None = None,
          trailers: tuple[tuple[str, str], ...] = (), day: int = 1) -> CommitInfo:
    committer = committer or author
    when = datetime(2024, 7, day)
    return CommitInfo(sha, (), author[0], author[1], when, committer[0], committer[1], when,
                      "m", trailers=trailers)


FRANK, GRACE, CAROL = ("Frank", "f@x"), ("Grace", "g@x"), ("Carol", "c@x")


def test_a_merge_credits_the_authors_it_brings_in_and_its_own_author_as_merger() -> None:
    merge = _info("m", CAROL, ("GitHub", "noreply@github.com"),
                  (("Reviewed-by", "Erin <e@x>"), ("approved-BY", "h@x")))
    brought = [_info("b", GRACE, day=3), _info("a", FRANK, day=2), _info("c", FRANK, day=4,
               trailers=(("Co-authored-by", "Ivan <i@x>"),))]
    assert people.credited(merge, brought) == (
        Person("proposer", "Frank", "f@x"), Person("proposer", "Grace", "g@x"),
        Person("merger", "Carol", "c@x"), Person("reviewer", "Erin", "e@x"),
        Person("approver", "", "h@x"), Person("coauthor", "Ivan", "i@x"))


def test_a_direct_commit_is_proposed_by_its_author_and_landed_by_its_committer() -> None:
    squashed = _info("s", FRANK, CAROL, (("Signed-off-by", "Frank <f@x>"),
                                        ("Reviewed-by", "just a name"), ("Reviewed-by", "")))
    assert people.credited(squashed, []) == (
        Person("proposer", "Frank", "f@x"), Person("merger", "Carol", "c@x"),
        Person("reviewer", "just a name", ""))


def test_a_message_cannot_claim_to_be_the_proposer_or_write_without_end() -> None:
    flood = (*[("Reviewed-by", f"R{n} <r{n}@x>") for n in range(1000)],
             ("Proposed-by", "Mallory <m@evil>"), ("Merged-by", "Mallory <m@evil>"))
    credited = people.credited(_info("s", FRANK, trailers=flood), [])
    assert credited[:2] == (Person("proposer", "Frank", "f@x"),
                            Person("merger", "Frank", "f@x"))
    assert len(credited) == people.MAX_PEOPLE
    assert all(p.email != "m@evil" for p in credited)
    long = people.credited(_info("s", ("x" * 300, "y" * 300)), [])
    assert {len(p.name) for p in long} == {255}


def test_merged_in_lists_what_each_first_parent_merge_brought(registry: Registry) -> None:
    git = registry.repo.git
    registry.commit("base", "Ada <ada@x>", "2024-07-01T00:00:00Z")
    start = registry.repo.head.commit.hexsha
    git.checkout("-q", "-b", "feature")
    (registry.root / "a.txt").write_text("a")
    one = registry.commit("one", "Frank <f@x>", "2024-07-02T00:00:00Z")
    git.checkout("-q", "-b", "inner")
    (registry.root / "b.txt").write_text("b")
    two = registry.commit("two", "Grace <g@x>", "2024-07-03T00:00:00Z")
    git.checkout("-q", "feature")
    subprocess.run(["git", "merge", "-q", "--no-ff", "inner", "-m", "inner merge"],
                   cwd=registry.root, check=True)
    inner_merge = registry.repo.head.commit.hexsha
    git.checkout("-q", "main")
    (registry.root / "c.txt").write_text("c")
    direct = registry.commit("direct", "Carol <c@x>", "2024-07-04T00:00:00Z")
    subprocess.run(["git", "merge", "-q", "--no-ff", "feature", "-m", "outer merge"],
                   cwd=registry.root, check=True)
    outer = registry.repo.head.commit.hexsha
    brought = GitHistory(str(registry.root)).merged_in(start, "HEAD")
    assert set(brought) == {outer} and direct not in brought
    assert sorted(brought[outer]) == sorted([one, two, inner_merge])
    # A second merge of the same branch brings only what is new.
    git.checkout("-q", "feature")
    (registry.root / "d.txt").write_text("d")
    three = registry.commit("three", "Frank <f@x>", "2024-07-05T00:00:00Z")
    git.checkout("-q", "main")
    subprocess.run(["git", "merge", "-q", "--no-ff", "feature", "-m", "again"],
                   cwd=registry.root, check=True)
    again = GitHistory(str(registry.root)).merged_in(outer, "HEAD")
    assert list(again.values()) == [[three]]

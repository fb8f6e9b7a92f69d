"""Who a change is credited to, as an auditor reads it. Pure: commits in, people out.

A first-parent commit lands a change on the branch. When it is a merge, its author merged it
and the authors of the commits it brought in proposed it; otherwise its author proposed it and
its committer put it on the branch. Reviewers, approvers and co-authors are what the
`Reviewed-by:`, `Approved-by:` and `Co-authored-by:` trailers of those commits claim (trailers
are parsed as git parses them; like any commit text they are the committer's word, and are
recorded as such).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from reconciler.git.objects import CommitInfo, parse_ident
from reconciler.limits import NAME_CHARS

ROLES = ("proposer", "merger", "reviewer", "approver", "coauthor")
TRAILER_ROLES = {"reviewed-by": "reviewer", "approved-by": "approver",
                 "co-authored-by": "coauthor"}
MAX_PEOPLE = 100  # per commit: a message of 16,000 characters must not write rows without end


class Person(NamedTuple):
    """Someone credited with a commit's change, in one role."""

    role: str
    name: str
    email: str


def credited(landing: CommitInfo, merged: Sequence[CommitInfo]) -> tuple[Person, ...]:
    """Who proposed, merged, reviewed, approved and co-authored what landing put on the
    branch; merged holds the commits a merge brought in (empty for any other commit)."""
    found: list[Person] = []
    if merged:
        brought = sorted(merged, key=lambda info: (info.authored_at, info.sha))
        found += [_person("proposer", info.author_name, info.author_email) for info in brought]
        found.append(_person("merger", landing.author_name, landing.author_email))
    else:
        found.append(_person("proposer", landing.author_name, landing.author_email))
        found.append(_person("merger", landing.committer_name, landing.committer_email))
    for info in (landing, *merged):
        for token, value in info.trailers:
            role = TRAILER_ROLES.get(token.lower())
            if role is not None and value:
                ident = parse_ident(value.encode())
                email = ident.email or (value if "@" in value and "<" not in value else "")
                name = ident.name if ident.email else ("" if email else value)
                found.append(_person(role, name, email))
    return tuple(dict.fromkeys(found))[:MAX_PEOPLE]


def _person(role: str, name: str, email: str) -> Person:
    return Person(role, name[:NAME_CHARS], email[:NAME_CHARS])

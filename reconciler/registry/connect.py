"""Opening the registry database: one way for every command that reads or writes it.

The URL (`--db`, `$RECONCILER_DB_URL` or the embedded file), an engine checked to answer, the
schema as the purpose needs it, and the repository's key in the database, found the same way
for apply, the audit commands and verify (by the first-parent root commit every clone shares).
Any database error inside is reported as one line, with the password hidden.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple

from sqlalchemy import URL, Engine, exc

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.git.history import GitHistory
from reconciler.git.objects import decode_path
from reconciler.limits import NAME_CHARS
from reconciler.registry import db, store

# What a command needs of the database: apply writes (a new embedded database is created when
# written); a dry run and the readers never create one; the readers need it at the current
# schema (verify lets an embedded one migrate itself, as apply would).
Purpose = Literal["write", "dry-run", "read", "verify"]


class RepositoryKey(NamedTuple):
    """How a repository is keyed in the database: its id, its name (shown), and the root commit
    it is found by (None under RECONCILER_REPOSITORY, or when a shallow clone hides it)."""

    id: str
    name: str
    root_commit: str | None


class Database(NamedTuple):
    """The database apply writes, and the repository it reconciles."""

    root: str
    url: URL
    engine: Engine
    repository: RepositoryKey
    history: GitHistory
    dry_run: bool

    @property
    def repo_id(self) -> str:
        """The repository's key in every table."""
        return self.repository.id


REPOSITORY_VARIABLE = "RECONCILER_REPOSITORY"


def repository_name(root: str) -> str:
    """The name shown for the repository: RECONCILER_REPOSITORY, else its folder's name (bytes
    that are not UTF-8 as backslash escapes, held to the column)."""
    return _override() or _text(os.path.basename(os.path.abspath(root)))[:NAME_CHARS]


def _override() -> str | None:
    value = os.environ.get(REPOSITORY_VARIABLE)
    if value is None:
        return None
    if not value.strip():
        raise ReconcilerError(f"{REPOSITORY_VARIABLE} is set but empty: set it to the "
                              "repository's name in the database, or unset it")
    name = value.strip()
    if _text(name) != name or not name.isprintable() or len(name) > NAME_CHARS:
        raise ReconcilerError(f"{REPOSITORY_VARIABLE} must be printable UTF-8 text of at most "
                              f"{NAME_CHARS} characters, not {printable(_text(name))[:80]!r}")
    return name


def _text(name: str) -> str:
    """A name from the operating system (a folder, a variable) as text every database stores:
    its bytes read as git paths are (undecodable ones as backslash escapes)."""
    return decode_path(os.fsencode(name))


def repository_key(engine: Engine | None, history: GitHistory, at: str,
                   name: str) -> RepositoryKey:
    """Which repository of the database history is (engine None: a database not created yet).

    RECONCILER_REPOSITORY names it outright. Otherwise it is found by the first-parent root
    commit of `at`, which every clone shares whatever its folder is called. A repository written
    before migration 0007 has no root commit yet: it is the one whose cursor commit is on this
    history (the one named after this folder first), and apply records its root commit. A
    shallow clone that does not reach the root is matched by its cursor commit alone. Failing
    all of these (a history rewritten from its first commit), the one named after the folder."""
    known = store.known_repositories(engine) if engine is not None else []
    override = _override()
    if override is not None:
        named = [r for r in known if r.name == override]
        return RepositoryKey(named[0].id if len(named) == 1 else store.repository_id(override),
                             override, None)
    root_commit = history.root_commit(at)
    by_root = [r for r in known if root_commit is not None and r.root_commit == root_commit]
    if by_root:
        return RepositoryKey(by_root[0].id, by_root[0].name, root_commit)
    # Before 0007 (no root commit recorded), or in a shallow clone (no root commit here): the
    # recorded repositories whose last reconciled commit is on this history.
    candidates = [r for r in known if r.cursor_commit is not None
                  and (root_commit is None or r.root_commit is None)
                  and _on_history(history, r.cursor_commit, at)]
    named = [r for r in candidates if r.id == store.repository_id(name)]
    if len(named) == 1 or len(candidates) == 1:
        chosen = (named or candidates)[0]
        return RepositoryKey(chosen.id, chosen.name, root_commit or chosen.root_commit)
    if len(candidates) > 1:
        raise ReconcilerError(
            f"the database holds {len(candidates)} repositories whose last reconciled commit "
            f"is on this history ({', '.join(sorted(printable(r.name) for r in candidates))}): "
            f"name the one to use with {REPOSITORY_VARIABLE}")
    by_name = [r for r in known if r.name == name]
    if len(by_name) == 1:  # its history is gone from git: apply says so (--reset-history)
        return RepositoryKey(by_name[0].id, name, None)
    if root_commit is None:  # a shallow clone the database does not know: apply says so
        return RepositoryKey(store.repository_id(name), name, None)
    return RepositoryKey(store.root_repository_id(root_commit), name, root_commit)


def _on_history(history: GitHistory, commit: str, at: str) -> bool:
    return history.has_commit(commit) and history.is_ancestor(commit, at)


@contextmanager
def open_registry(root: str, url: str | None, *, purpose: Purpose, at: str = "HEAD",
                  repository: RepositoryKey | None = None) -> Iterator[Database]:
    """The database of root's registry for purpose, disposed at the end, with the repository
    of at's history in it (repository_key; a rebuild passes the key of the database it
    checks)."""
    database_url = db.database_url(root, url, create=purpose == "write")
    exists = db.exists(database_url)
    if purpose in ("read", "verify") and not exists:  # reading never creates a database
        raise ReconcilerError(f"no database at {db.redacted(database_url)}: run `reconciler "
                              "apply` first")
    history = GitHistory(root)
    engine = db.make_engine(database_url)
    try:
        if exists:
            db.connect(engine, database_url)
        if purpose == "read":
            _check_schema(engine, database_url)
        elif purpose == "verify":
            db.ensure_schema(engine, database_url, migrate=False)
        if repository is None:
            repository = repository_key(engine if exists else None, history, at,
                                        repository_name(root))
        yield Database(root, database_url, engine, repository, history, purpose == "dry-run")
    except exc.DBAPIError as error:
        raise db.connect_error(database_url, error) from None
    finally:
        engine.dispose()


def _check_schema(engine: Engine, url: URL) -> None:
    """A database the audit commands can read: it holds a registry at the current schema."""
    current, head = db.schema_state(engine)
    if current is None:
        raise ReconcilerError(f"database {db.redacted(url)} holds no registry: run "
                              "`reconciler apply` first")
    if current != head:
        raise ReconcilerError(f"database {db.redacted(url)} is at schema {current}, "
                              f"this reconciler reads {head}: run `reconciler db upgrade`")

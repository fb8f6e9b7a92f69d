"""DVC remotes: which ones a repository configures, where an object lives in one, and whether
it is there, and which pinned versions a remote lacks (ART006). `records.py` reads what DVC
recorded (.dvc files, dvc.lock); this module reads where DVC keeps the bytes.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError
from reconciler.dvc.records import LEGACY_MD5, split_digest
from reconciler.source import FileProblem, Source

if TYPE_CHECKING:
    from reconciler.catalog import Catalog


class Remote(NamedTuple):
    """A DVC remote: its name and URL (local remotes: repository-relative path, scheme '')."""

    name: str
    url: str
    is_local: bool


class ConfigError(Exception):
    """A `.dvc/config` that DVC itself could not read either (line, message)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


# A named section, as DVC's config matches it: remote "name".
_NAMED = re.compile(r'^\s*remote\s*"(.*)"\s*$')


def remotes(config_text: str) -> tuple[dict[str, Remote], str | None]:
    """The remotes and the default remote of a `.dvc/config`, read as DVC reads it: configobj
    with its defaults (quotes, inline comments, lists), keys lower-cased."""
    from configobj import ConfigObj, ConfigObjError

    try:
        config = _lower_keys(ConfigObj(io.StringIO(config_text)).dict())
    except ConfigObjError as error:
        line = getattr(error, "line_number", None) or 1
        raise ConfigError(line, " ".join(str(error).split())) from None
    except RecursionError:  # sections nested past Python's limit ([[[[...]]]]): not DVC's
        raise ConfigError(1, "sections are nested too deeply") from None
    core = config.get("core")
    default = core.get("remote") if isinstance(core, dict) else None
    found: dict[str, Remote] = {}
    for section, options in config.items():
        named = _NAMED.match(section)
        if named is None or not isinstance(options, dict):
            continue
        url = options.get("url")
        if not isinstance(url, str):
            continue
        is_local = "://" not in url
        if is_local and not url.startswith("/"):
            # Relative local remotes are relative to the .dvc/ folder holding the config.
            url = posixpath.normpath(posixpath.join(".dvc", url))
        found[named.group(1)] = Remote(named.group(1), url, is_local)
    return found, default if isinstance(default, str) else None


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {key.lower(): _lower_keys(value) if isinstance(value, dict) else value
            for key, value in data.items()}


def object_path(digest: str) -> str:
    """Where DVC keeps an object inside a remote, as its HashFileDB.oid_to_path lays it out:
    `files/md5/ab/cdef...` for DVC 3 hashes, `ab/cdef...` for DVC 2 (md5-dos2unix) ones."""
    hash_name, value = split_digest(digest)
    prefix = "" if hash_name == LEGACY_MD5 else f"files/{hash_name}/"
    return f"{prefix}{value[:2]}/{value[2:]}"


def storage_uri(remote: Remote, digest: str) -> str:
    """Where a deployment reads an object: the remote's URL and the object's path (a local
    remote is addressed as a volume, `pvc://<remote name>/...`)."""
    location = object_path(digest)
    return (f"pvc://{remote.name}/{location}" if remote.is_local
            else f"{remote.url.rstrip('/')}/{location}")


def remote_of(source: Source, name: str | None) -> Remote | None:
    """The remote named (None: DVC's default) in the source's .dvc/config; None when there is
    no such remote or no config (a ConfigError when DVC could not read it either)."""
    try:
        text = source.read(".dvc/config").decode("utf-8")
    except (FileProblem, OSError, UnicodeDecodeError):
        return None
    table, default = remotes(text)
    return table.get(name or default or "")


class ObjectReader:
    """Opens objects of one hash kind by content address: from a local remote's folder
    directly, else through DVC's object database for the remote (None: DVC's default)."""

    def __init__(self, root: str, remote: str | None, hash_name: str):
        self.root, self.remote, self.hash_name = root, remote, hash_name
        self._local = _local_remote(root, remote)
        self._odb: Any = None
        self._repo: Any = None

    def open(self, value: str, digest: str) -> IO[bytes]:
        """The object's bytes, streamed (value: the digest's hex, `.dir` for a listing)."""
        if self._local is not None:
            path = os.path.join(self.root, self._local.url,
                                object_path(f"{self.hash_name}:{value}"))
            if not os.path.isfile(path):
                raise ReconcilerError(
                    f"the DVC remote '{self._local.name}' ({self._local.url}) has no object "
                    f"for {digest}: run `dvc push` at the revision that produced these bytes")
            return open(path, "rb")
        from dvc.exceptions import DvcException

        try:
            if self._odb is None:
                from dvc.repo import Repo

                self._repo = Repo(self.root)
                self._odb = self._repo.cloud.get_remote_odb(self.remote,
                                                            hash_name=self.hash_name)
            path = self._odb.oid_to_path(value)
            if not self._odb.fs.exists(path):
                raise ReconcilerError(
                    f"the DVC remote {self._odb.fs.unstrip_protocol(path)} has no object for "
                    f"{digest}: run `dvc push` at the revision that produced these bytes")
            stream: IO[bytes] = self._odb.fs.open(path, "rb")
            return stream
        except DvcException as error:
            raise ReconcilerError(f"DVC remote: {error}") from None

    def close(self) -> None:
        """Close DVC's repository, if one was opened."""
        if self._repo is not None:
            self._repo.close()


def _local_remote(root: str, remote: str | None) -> Remote | None:
    """The remote when it is a local folder read without starting DVC (its import is most of
    a small fetch: bench/get.py); None when DVC must be asked: a remote of another kind, or
    one that .dvc/config.local may override."""
    from reconciler.source import WorkTree

    if os.path.exists(os.path.join(root, ".dvc", "config.local")):
        return None
    try:
        found = remote_of(WorkTree(root), remote)
    except ConfigError:
        return None  # DVC says what is wrong with it
    return found if found is not None and found.is_local else None


def missing_from_remote(root: str, digests: list[str], remote: str | None = None) -> set[str]:
    """The digests whose objects the DVC remote lacks, asked through DVC itself."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(root) as repo:
            missing: set[str] = set()
            by_hash: dict[str, list[str]] = {}
            for digest in digests:
                by_hash.setdefault(split_digest(digest)[0], []).append(digest)
            for hash_name, group in sorted(by_hash.items()):
                odb = repo.cloud.get_remote_odb(remote, hash_name=hash_name)
                present = set(odb.oids_exist([split_digest(d)[1] for d in group]))
                missing.update(d for d in group if split_digest(d)[1] not in present)
            return missing
    except DvcException as error:
        raise ReconcilerError(f"DVC remote: {error}") from None


def unpushed_versions(root: str, current: Catalog) -> list[Diagnostic]:
    """ART006 for each version checked whose pinned bytes the DVC remote has no object for."""
    from reconciler.catalog import versions

    pinned = [(entry, index, version.digest)
              for entry in current.versioned() if entry.path in current.checked
              for index, version in enumerate(versions(entry)) if version.digest]
    missing = missing_from_remote(root, sorted({digest for _, _, digest in pinned}))
    return [entry.at(("spec", "versions", index, "digest"), "ART006",
                     f"the DVC remote has no object for {digest}",
                     "run `dvc push` for the revision that produced these bytes")
            for entry, index, digest in pinned if digest in missing]

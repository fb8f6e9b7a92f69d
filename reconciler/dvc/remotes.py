"""DVC remotes: which ones a repository configures, where an object lives in one, and whether
it is there, and which pinned versions a remote lacks (ART006). `records.py` reads what DVC
recorded (.dvc files, dvc.lock); this module reads where DVC keeps the bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import tempfile
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from reconciler.diagnostics import Diagnostic, ReconcilerError
from reconciler.dvc.records import LEGACY_MD5, split_digest
from reconciler.git.plumbing import git_blob
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


def fetch_object(root: str, digest: str, target: str, *, remote: str | None = None,
                 in_git: tuple[str, str] | None = None) -> None:
    """Stream the bytes of digest into target: from the DVC remote (None: DVC's default) by
    content address, or from git objects (in_git: commit and path) for an artifact committed
    to git. Checked against the digest before target appears: a partial or wrong download
    leaves nothing behind."""
    hash_name, value = split_digest(digest)
    if value.endswith(".dir"):
        raise ReconcilerError(f"{digest} is a directory: fetch it with `dvc get`")
    handle, partial = tempfile.mkstemp(prefix=".reconciler-get-",
                                       dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(handle, "wb") as written:
            if in_git is not None:
                with git_blob(root, *in_git) as stream:
                    found = copy_checked(stream, written)
            else:
                local = _local_object(root, remote, digest)
                if local is not None:
                    with open(local, "rb") as stream:
                        found = copy_checked(stream, written,
                                             dos2unix=hash_name == LEGACY_MD5)
                else:
                    found = _from_remote(root, hash_name, value, written, remote, digest)
        if found != value:
            raise ReconcilerError(f"the bytes fetched hash to {found}, not the pinned {digest}: "
                                  "nothing was written")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _local_object(root: str, remote: str | None, digest: str) -> str | None:
    """The object's file in a local remote, read without starting DVC (its import is most of a
    small fetch: bench/get.py); None when DVC must be asked: a remote of another kind, or one
    that .dvc/config.local may override."""
    from reconciler.source import WorkTree

    if os.path.exists(os.path.join(root, ".dvc", "config.local")):
        return None
    try:
        found = remote_of(WorkTree(root), remote)
    except ConfigError:
        return None  # DVC says what is wrong with it
    if found is None or not found.is_local:
        return None
    path = os.path.join(root, found.url, object_path(digest))
    if not os.path.isfile(path):
        raise ReconcilerError(f"the DVC remote '{found.name}' ({found.url}) has no object for "
                              f"{digest}: run `dvc push` at the revision that produced these "
                              "bytes")
    return path


def _from_remote(root: str, hash_name: str, value: str, written: IO[bytes],
                 remote: str | None, digest: str) -> str:
    """Copy the object from the DVC remote into written; its md5 as DVC computes it."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(root) as repo:
            odb = repo.cloud.get_remote_odb(remote, hash_name=hash_name)
            path = odb.oid_to_path(value)
            if not odb.fs.exists(path):
                raise ReconcilerError(
                    f"the DVC remote {odb.fs.unstrip_protocol(path)} has no object for "
                    f"{digest}: run `dvc push` at the revision that produced these bytes")
            with odb.fs.open(path, "rb") as stream:
                return copy_checked(stream, written, dos2unix=hash_name == LEGACY_MD5)
    except DvcException as error:
        raise ReconcilerError(f"DVC remote: {error}") from None


def copy_checked(stream: IO[bytes], written: IO[bytes], *, dos2unix: bool = False) -> str:
    """Copy stream into written a block at a time (memory flat in the size); the md5 of what
    was copied, as DVC computes it (DVC 2 hashed text files with CRLF made LF)."""
    raw, normalised = hashlib.md5(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    carry, binary = b"", False
    for block in iter(lambda: stream.read(1 << 20), b""):
        written.write(block)
        raw.update(block)
        if dos2unix:
            binary = binary or b"\0" in block
            text = carry + block
            carry = b"\r" if text.endswith(b"\r") else b""
            normalised.update((text[:-1] if carry else text).replace(b"\r\n", b"\n"))
    normalised.update(carry)
    return normalised.hexdigest() if dos2unix and not binary else raw.hexdigest()


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

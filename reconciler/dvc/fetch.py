"""The bytes of a digest put in place, checked: a file, or a directory DVC records as a
listing (`.dir`) of its files' digests.

Everything is written beside the target under a temporary name and renamed into place only
once every byte hashes to what was pinned: a partial or wrong download leaves nothing behind.
A listing is the remote's data named by a digest a pull request chose, so its paths are held
to plain relative paths inside the target.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from typing import IO

from reconciler.diagnostics import ReconcilerError, printable
from reconciler.dvc.records import LEGACY_MD5, split_digest
from reconciler.dvc.remotes import ObjectReader
from reconciler.files import put_in_place
from reconciler.git.plumbing import git_blob

MAX_LISTING_BYTES = 64 * 1024 * 1024  # a `.dir` listing of about 600,000 files
_MD5 = re.compile(r"[0-9a-f]{32}")


def fetch_object(root: str, digest: str, target: str, *, remote: str | None = None,
                 in_git: tuple[str, str] | None = None, replace: bool = False) -> None:
    """Put the bytes of digest at target: from the DVC remote (None: DVC's default) by
    content address, or from git objects (in_git: commit and path) for an artifact committed
    to git; a directory's files each by theirs. Whatever is at target already is left alone
    (before anything is fetched), or with replace, replaced once the new bytes are whole."""
    hash_name, value = split_digest(digest)
    directory = value.endswith(".dir")
    if directory and in_git is not None:
        raise ReconcilerError(f"{digest} is a directory DVC records, not a file in git")
    if os.path.lexists(target) and not replace:
        raise _exists(target)
    scratch = tempfile.mkdtemp(prefix=".reconciler-get-",
                               dir=os.path.dirname(os.path.abspath(target)))
    made = scratch if directory else os.path.join(scratch, "file")
    try:
        reader = ObjectReader(root, remote, hash_name)
        try:
            if directory:
                _fill_directory(reader, value, digest, made)
            else:
                _fill_file(root, reader, value, digest, made, in_git)
        finally:
            reader.close()
        try:
            put_in_place(made, target, replace=replace)
        except FileExistsError:  # made there meanwhile
            raise _exists(target) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _exists(target: str) -> ReconcilerError:
    return ReconcilerError(f"{target} exists: nothing was written (--force replaces it)")


def _fill_file(root: str, reader: ObjectReader, value: str, digest: str, path: str,
               in_git: tuple[str, str] | None) -> None:
    with open(path, "wb") as written:
        if in_git is not None:
            with git_blob(root, *in_git) as stream:
                found = copy_checked(stream, written)
        else:
            with reader.open(value, digest) as stream:
                found = copy_checked(stream, written,
                                     dos2unix=reader.hash_name == LEGACY_MD5)
    if found != value:
        raise ReconcilerError(f"the bytes fetched hash to {found}, not the pinned {digest}: "
                              "nothing was written")


def _fill_directory(reader: ObjectReader, value: str, digest: str, folder: str) -> None:
    """The listing, checked against the digest, then each file it lists, checked too."""
    with reader.open(value, digest) as stream:
        raw = stream.read(MAX_LISTING_BYTES + 1)
    if len(raw) > MAX_LISTING_BYTES:
        raise ReconcilerError(f"the listing of {digest} is over {MAX_LISTING_BYTES} bytes: "
                              "nothing was written")
    found = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if found != value.removesuffix(".dir"):
        raise ReconcilerError(f"the listing fetched hashes to {found}, not the pinned "
                              f"{digest}: nothing was written")
    for relative, md5 in listing(raw, digest):
        path = os.path.join(folder, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "xb") as written, reader.open(md5, f"{relative} ({md5})") as stream:
            got = copy_checked(stream, written, dos2unix=reader.hash_name == LEGACY_MD5)
        if got != md5:
            raise ReconcilerError(f"{printable(relative)} of {digest} hashes to {got}, not "
                                  f"{md5}: nothing was written")


def listing(raw: bytes, digest: str) -> list[tuple[str, str]]:
    """(relative path, md5) of each file a `.dir` listing names: plain relative paths, each
    once, none inside another (else one clear error: the listing is not DVC's)."""
    def refused(why: str) -> ReconcilerError:
        return ReconcilerError(f"the listing of {digest} {why}: nothing was written")

    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError):
        raise refused("is not JSON") from None
    if not isinstance(entries, list):
        raise refused("is not a list of files")
    files: dict[str, str] = {}
    folders: set[str] = set()
    for entry in entries:
        relative = entry.get("relpath") if isinstance(entry, dict) else None
        md5 = entry.get("md5") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or not isinstance(md5, str) or not _MD5.fullmatch(md5):
            raise refused("has an entry without a relpath and an md5")
        parts = relative.split("/")
        if (any(part in ("", ".", "..") for part in parts)
                or any(ord(c) < 32 or c == "\\" for c in relative)):
            raise refused(f"names '{printable(relative)}', not a plain relative path")
        parents = {"/".join(parts[:end]) for end in range(1, len(parts))}
        if relative in files or relative in folders or parents & files.keys():
            raise refused(f"names '{printable(relative)}' twice, or as a file and a folder")
        files[relative] = md5
        folders |= parents
    return sorted(files.items())


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

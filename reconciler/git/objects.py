"""Parsing what git prints, in forms no commit content can subvert. Pure: no git, no I/O.

A commit's author, committer and message come from its raw object (`git cat-file --batch`
frames every object with its length), never from `git log --format` output, where a message or
a name holding the separators could forge the fields after it. The change list comes from
`git log --format=%H --raw -z`: the only text a commit controls there is a path, and a path is
always the one token that follows its status token.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import NamedTuple

SYMLINK_MODE = 0o120000
NULL_SHA = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# What every back end stores (MySQL's DATETIME starts at year 1000); git allows any 64-bit time.
EARLIEST = datetime(1000, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59)


class CommitInfo(NamedTuple):
    """A commit as the audit trail records it; times are naive UTC."""

    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str
    author_offset: int = 0  # the author's time zone, minutes east of UTC, as git recorded it
    committer_offset: int = 0
    trailers: tuple[tuple[str, str], ...] = ()  # (token, value) as git reads them


class Change(NamedTuple):
    """One file a commit changed: its new blob, or None when it was deleted."""

    path: str
    blob: str | None
    is_link: bool = False  # a symlink: its blob is the link's text, never read as a manifest


class Ident(NamedTuple):
    """The name, email and time of an `author` or `committer` header line."""

    name: str
    email: str
    when: datetime
    offset: int = 0  # minutes east of UTC: the zone the time was written in


def parse_commit(sha: str, raw: bytes) -> CommitInfo:
    """A raw commit object (as `git cat-file` gives it) as the audit trail records it.

    Any bytes are accepted: text that is not valid in the commit's encoding keeps its bytes as
    backslash escapes, and NUL (which PostgreSQL cannot store) is escaped too.
    """
    head, _, body = raw.partition(b"\n\n")
    headers: dict[bytes, list[bytes]] = {}
    for line in head.split(b"\n"):
        if line.startswith(b" "):  # a continuation (gpgsig, mergetag): not ours to read
            continue
        key, _, value = line.partition(b" ")
        headers.setdefault(key, []).append(value)
    encoding = _encoding(headers.get(b"encoding", [b"utf-8"])[0])
    # The last author and committer, as `git log` shows a commit that has several.
    author = parse_ident(headers.get(b"author", [b""])[-1], encoding)
    committer = parse_ident(headers.get(b"committer", [b""])[-1], encoding)
    parents = tuple(p.decode("ascii", "replace") for p in headers.get(b"parent", []))
    message = _text(body, encoding)
    return CommitInfo(sha, parents, author.name, author.email, author.when, committer.name,
                      committer.email, committer.when, message.strip("\n"),
                      author.offset, committer.offset, tuple(trailers(message)))


def parse_ident(value: bytes, encoding: str = "utf-8") -> Ident:
    """`Name <email> 1718000000 +0200` as git splits it (split_ident_line): the name ends at
    the first '<', the email at the first '>' after it, the time and zone follow the last '>'.
    Without '<' and '>' git reads nothing at all, so neither does this (the time is then the
    epoch, never digits taken from the name). Malformed times read as the epoch."""
    start = value.find(b"<")
    end = value.find(b">", start + 1) if start >= 0 else -1
    if end < 0:
        return Ident("", "", utc_time(b""))
    stamp = value[value.rfind(b">") + 1:].split()
    return Ident(_text(value[:start], encoding).strip(), _text(value[start + 1:end], encoding),
                 utc_time(stamp[0] if stamp else b""), _offset(stamp[1] if len(stamp) > 1 else b""))


_ZONE = re.compile(rb"([+-])(\d\d)(\d\d)")


def _offset(zone: bytes) -> int:
    """git's `+0200` as minutes east of UTC; anything else (git accepts junk) reads as 0."""
    match = _ZONE.fullmatch(zone)
    if match is None:
        return 0
    minutes = int(match[2]) * 60 + int(match[3])
    return min(minutes, 24 * 60 - 1) * (-1 if match[1] == b"-" else 1)


def _encoding(name: bytes) -> str:
    """The text encoding a commit names; UTF-8 for a name Python does not know or a codec that
    is not a text encoding (base64, rot13: a commit may name any of them)."""
    try:
        found = codecs.lookup(name.decode("ascii"))
    except (LookupError, UnicodeDecodeError):
        return "utf-8"
    return found.name if getattr(found, "_is_text_encoding", True) else "utf-8"


def _text(raw: bytes, encoding: str) -> str:
    """raw as text: undecodable bytes as backslash escapes, NUL and lone surrogates (which
    utf-7 and others can produce, and no database stores) escaped too."""
    try:
        text = raw.decode(encoding, errors="backslashreplace")
    except (UnicodeError, LookupError, TypeError, ValueError):  # refuses the handler
        text = raw.decode("utf-8", errors="backslashreplace")
    if not text.isascii():
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.replace("\x00", "\\x00")


_SURROGATE = re.compile("[\ud800-\udfff]")


def utc_time(epoch: bytes) -> datetime:
    """A git timestamp (seconds since the epoch) as naive UTC, held to what every database
    stores; anything else reads as the epoch."""
    try:
        seconds = int(epoch)
    except ValueError:
        seconds = 0
    try:
        when = datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        return LATEST if seconds > 0 else EARLIEST
    return min(max(when, EARLIEST), LATEST)


def decode_path(raw: bytes) -> str:
    """A path as git stores it (any bytes but NUL) as text: invalid UTF-8 stays distinct, as
    backslash escapes, however the path was listed (ls-tree, log)."""
    return raw.decode("utf-8", errors="backslashreplace")


def log_changes(tokens: Iterable[str]) -> Iterator[tuple[str, list[tuple[str, str, str, str]]]]:
    """(sha, [(path, new mode, new blob, status)]) per commit of `git log --format=%H --raw
    -z --no-renames` split on NUL, oldest first as listed. Raises ValueError on a token that
    is neither a sha, a status nor the path after one: the output is not what was asked for."""
    sha: str | None = None
    changes: list[tuple[str, str, str, str]] = []
    status: list[str] | None = None
    for token in tokens:
        if status is not None:  # a path: whatever its bytes, it is only a path
            changes.append((token, status[1], status[3], status[4]))
            status = None
            continue
        token = token.lstrip("\n")
        if token.startswith(":"):
            status = token[1:].split()
            if len(status) != 5:
                raise ValueError(f"unexpected git log status {token!r}")
        elif _SHA.fullmatch(token):
            if sha is not None:
                yield sha, changes
            sha, changes = token, []
        elif token:
            raise ValueError(f"unexpected git log output {token[:80]!r}")
    if sha is not None:
        yield sha, changes


# Trailers git itself writes, which make a mostly-prose last paragraph count as trailers.
_GIT_GENERATED = ("Signed-off-by: ", "(cherry picked from commit ")
_COMMENT = "#"  # core.commentChar's default
_SPACE = " \t\r"  # what git's isspace() takes for blank, in a line (no newline left)
_FOLD = re.compile(r"\n[ \t\r]*")


def trailers(message: str) -> list[tuple[str, str]]:
    """(token, value) of each trailer of a commit message, as `git log --format=%(trailers:
    only,unfold)` finds them: the last paragraph (never the title) when it is all trailers,
    or at least a quarter trailers with one that git generates; folded values unfolded."""
    lines = message.split("\n")
    while lines and not lines[0].strip(_SPACE):  # the subject is the first line with text
        lines.pop(0)
    end = _end_of_message(lines)
    grouped: list[str] = []  # the block's lines, each continuation joined to its trailer
    folds = False
    for line in lines[_trailer_block_start(lines, end):end]:
        if folds and _indented(line):
            grouped[-1] += "\n" + line
            continue
        grouped.append(line)
        folds = _separator(line) >= 1
    found = []
    for text in grouped:
        separator = _separator(text)
        if separator >= 1 and not text.startswith(_COMMENT):
            value = _FOLD.sub(" ", text[separator + 1:].strip(_SPACE)).strip(_SPACE)
            found.append((text[:separator].strip(_SPACE), value))
    return found


def _end_of_message(lines: list[str]) -> int:
    """The lines before the trailing comments and blank lines git ignores."""
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip(_SPACE) or lines[end - 1].startswith(_COMMENT)):
        end -= 1
    return end


def _trailer_block_start(lines: list[str], end: int) -> int:
    """Where the trailer block starts; end when the message has none (git's trailer.c)."""
    title_end = next((number for number, line in enumerate(lines)
                      if not line.startswith(_COMMENT) and not line.strip(_SPACE)), len(lines))
    trailer_lines = non_trailer_lines = continuation_lines = 0
    recognized = False
    only_spaces = True
    for number in range(end - 1, title_end - 1, -1):
        line = lines[number]
        if line.startswith(_COMMENT):
            non_trailer_lines += continuation_lines
            continuation_lines = 0
            continue
        if not line.strip(_SPACE):
            if only_spaces:
                continue
            non_trailer_lines += continuation_lines
            if (recognized and trailer_lines * 3 >= non_trailer_lines) or (
                    trailer_lines and not non_trailer_lines):
                return number + 1
            return end
        only_spaces = False
        if line.startswith(_GIT_GENERATED):
            trailer_lines += 1
            continuation_lines = 0
            recognized = True
        elif _separator(line) >= 1:
            trailer_lines += 1
            continuation_lines = 0
        elif _indented(line):
            continuation_lines += 1
        else:
            non_trailer_lines += 1 + continuation_lines
            continuation_lines = 0
    return end


def _indented(line: str) -> bool:
    return line[:1] in (" ", "\t", "\r")


_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _separator(line: str) -> int:
    """The index of the ':' after a trailer token (letters, digits, '-', then optional spaces
    or tabs), or -1 (git's find_separator)."""
    spaced = False
    for index, char in enumerate(line):
        if char == ":":
            return index
        if not spaced and char in _TOKEN_CHARS:
            continue
        if index > 0 and char in " \t":
            spaced = True
            continue
        break
    return -1

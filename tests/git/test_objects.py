"""Parsing git's output: no commit content (message, name, email, path) can forge a field."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.git import objects as gitobjects

SHA = "a" * 40
PARENT = "b" * 40


def _commit(author: bytes, message: bytes, committer: bytes | None = None,
            extra: bytes = b"") -> bytes:
    return (b"tree " + b"c" * 40 + b"\nparent " + PARENT.encode() + b"\nauthor " + author
            + b"\ncommitter " + (committer or author) + b"\n" + extra + b"\n" + message)


def test_separators_in_a_message_are_only_text() -> None:
    forged = b"fix\x1e" + b"f" * 40 + b"\x1f\x1fMallory\x1fm@evil\x1f0\x1f"
    info = gitobjects.parse_commit(SHA, _commit(b"Ada <ada@example.com> 1718000000 +0200",
                                                forged))
    assert (info.sha, info.parents) == (SHA, (PARENT,))
    assert (info.author_name, info.author_email) == ("Ada", "ada@example.com")
    assert info.message == forged.decode()
    assert info.authored_at == datetime(2024, 6, 10, 6, 13, 20)


def test_any_bytes_in_names_and_messages_are_kept_and_storable() -> None:
    info = gitobjects.parse_commit(SHA, _commit(b"A\x1fda \xff <a\x00@x> 1 +0000",
                                                b"m\x00sg \xc3\x28"))
    assert info.author_name == "A\x1fda \\xff" and info.author_email == "a\\x00@x"
    assert info.message == "m\\x00sg \\xc3("
    assert "\x00" not in info.message + info.author_email


def test_times_out_of_every_database_range_are_held_to_it() -> None:
    far = gitobjects.parse_commit(SHA, _commit(b"A <a@x> 299000000000 +0000", b"m"))
    assert far.authored_at == gitobjects.LATEST  # year 11476
    early = gitobjects.parse_commit(SHA, _commit(b"A <a@x> -62000000000 +0000", b"m"))
    assert early.authored_at == gitobjects.EARLIEST
    broken = gitobjects.parse_commit(SHA, _commit(b"A <a@x> soon +0000", b"m"))
    assert broken.authored_at == datetime(1970, 1, 1)
    assert gitobjects.parse_commit(SHA, _commit(b"no brackets", b"m")).author_email == ""


def test_encoding_header_and_signature_continuations() -> None:
    raw = _commit("Zoë <z@x> 0 +0000".encode("latin-1"), "café".encode("latin-1"),
                  extra=b"encoding ISO-8859-1\ngpgsig -----BEGIN PGP\n author Mallory <m@x> 0\n")
    info = gitobjects.parse_commit(SHA, raw)
    assert (info.author_name, info.message) == ("Zoë", "café")


def test_log_paths_are_only_paths() -> None:
    hostile = "manifests/x.yaml\n" + "d" * 40 + "\n:100644 100644 " + "e" * 40
    tokens = [SHA, "\n:000000 100644 " + "0" * 40 + " " + "e" * 40 + " A", hostile,
              ":100644 120000 " + "e" * 40 + " " + "f" * 40 + " T", "manifests/y.yaml",
              PARENT, ""]
    assert list(gitobjects.log_changes(tokens)) == [
        (SHA, [(hostile, "100644", "e" * 40, "A"), ("manifests/y.yaml", "120000", "f" * 40,
                                                    "T")]),
        (PARENT, [])]


@given(st.binary(max_size=200), st.binary(max_size=60), st.binary(max_size=60))
def test_parse_commit_never_fails_and_keeps_the_sha(message: bytes, name: bytes,
                                                    email: bytes) -> None:
    author = name.replace(b"\n", b" ") + b" <" + email.replace(b"\n", b" ") + b"> 5 +0000"
    info = gitobjects.parse_commit(SHA, _commit(author, message))
    assert info.sha == SHA and info.parents == (PARENT,)
    assert "\x00" not in info.message + info.author_name + info.author_email


def test_the_zone_a_time_was_written_in_is_kept() -> None:
    zones = {b"+0200": 120, b"-0530": -330, b"+0000": 0, b"+9999": 24 * 60 - 1, b"junk": 0,
             b"": 0, b"+02:00": 0}
    for zone, minutes in zones.items():
        info = gitobjects.parse_commit(SHA, _commit(b"A <a@x> 1718000000 " + zone, b"m"))
        assert (info.author_offset, info.committer_offset) == (minutes, minutes), zone
        assert info.authored_at.isoformat() == "2024-06-10T06:13:20"  # the moment, in UTC


TRAILER_CASES = [
    "Title\n\nReviewed-by: A <a@x>\n",
    "Title\n\nbody text\n\nReviewed-by: A <a@x>\nApproved-by: B <b@x>\n",
    "Reviewed-by: A <a@x>\n",  # a title is never a trailer
    "Title\n\nSome prose\nReviewed-by: A <a@x>\n",  # not all trailers, none git's own
    "Title\n\nprose\nmore prose\nSigned-off-by: S <s@x>\nReviewed-by: A <a@x>\n",  # 25%
    "Title\n\n(cherry picked from commit abc)\np1\np2\np3\np4\nReviewed-by: Z <z@x>\n",
    "Title\n\nReviewed-by: A\n  continued here\nCo-authored-by: C <c@x>\n",
    "Title\n\nKey : spaced\nOther:\tTab\n",
    "Title\n\nReviewed-by: A <a@x>\n# a comment\n\n\n",
    "Title\n\nbody\n---\nReviewed-by: D <d@x>\n",  # no divider in commit messages
    "Title\n\n Reviewed-by: indented\n",
    "Title\n\nhttp://example.com: nope\nReviewed-by: Q\n",
    "Title\n\nReviewed-by: A <a@x>  \n   more  \n",
    "Title\n\nReviewed-by: A\n# c\n  cont\n",
    "T\n\nReviewed-by:\n",
    "T\n\nReviewed-by: \u00c4 <\u00e4@x>\n",
    "T\n\nReviewed-by: a\r\n",
    "T\n# comment\n\nReviewed-by: a\n",
    "\n\nReviewed-by: leading blank lines\n",
]
TRAILER_TEXT = st.lists(st.sampled_from([
    "Reviewed-by: A <a@x>", "Approved-by: b@x", "Co-authored-by: C <c@x>", "  folded",
    "\tfolded", "prose line", "", " ", "# comment", "Signed-off-by: S <s@x>", "Key : v",
    "(cherry picked from commit 1234)", "---", "x-y:z", "-: dash", "a b: c", "Title",
    "Reviewed-by: \u00e9 <\u00e9@x>"]), max_size=12).map("\n".join)


@given(st.lists(TRAILER_TEXT, min_size=20, max_size=20))
@settings(max_examples=3, deadline=None)
def test_trailers_are_read_as_git_reads_them(tmp_path_factory: Any, generated: list[str]
                                             ) -> None:
    root = tmp_path_factory.mktemp("trailers")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x"}
    tree = subprocess.run(["git", "-C", str(root), "mktree"], input=b"", capture_output=True,
                          check=True).stdout.decode().strip()
    for message in [*TRAILER_CASES, *generated]:
        sha = subprocess.run(["git", "-C", str(root), "commit-tree", tree],
                             input=message.encode(), capture_output=True, env=env,
                             check=True).stdout.decode().strip()
        expected = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%(trailers:only,unfold)", sha],
            capture_output=True, check=True).stdout.decode()
        raw = subprocess.run(["git", "-C", str(root), "cat-file", "commit", sha],
                             capture_output=True, check=True).stdout
        info = gitobjects.parse_commit(sha, raw)
        assert [f"{token}: {value}" for token, value in info.trailers] == [
            line for line in expected.split("\n") if line], message


def _git(root: str, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", "-C", root, *args], input=stdin, capture_output=True,
                          check=True).stdout.decode("utf-8", "backslashreplace").strip()


def test_who_and_when_read_as_git_log_shows_them(tmp_path: Any) -> None:
    """Commit objects git accepts but writes nothing like: two author headers, an ident with
    no email, an email with an extra '>', codecs that are not text or refuse the handler. The
    trail says what `git log` says."""
    root = str(tmp_path)
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=A", "-c", "user.email=a@x", "commit", "-q", "--allow-empty",
         "-m", "base")
    tree = _git(root, "rev-parse", "HEAD^{tree}")
    heads = {
        "two authors": b"author First <f@x> 1700000000 +0000\n"
                       b"author Second <s@x> 1700000100 +0000\n",
        "no email": b"author NoEmail 1700000000 +0000\n",
        "extra >": b"author Name <a@b>> 1700000000 +0000\n",
    }
    for label, author in heads.items():
        raw = (f"tree {tree}\n".encode() + author
               + b"committer C <c@x> 1700000000 +0000\n\n" + label.encode() + b"\n")
        sha = _git(root, "hash-object", "-t", "commit", "-w", "--literally", "--stdin",
                   stdin=raw)
        info = gitobjects.parse_commit(sha, raw)
        shown = _git(root, "log", "-1", "--format=%an%x00%ae", sha).split("\x00")
        assert [info.author_name, info.author_email] == shown, label
        if label == "no email":  # git reads no time either: never one taken from the name
            assert info.authored_at == datetime(1970, 1, 1)
    for codec in ("base64", "rot13", "utf-7", "idna", "hex", "no-such-codec"):
        raw = (f"tree {tree}\n".encode() + b"author Ann <ann@x> 1700000000 +0000\n"
               b"committer Ann <ann@x> 1700000000 +0000\nencoding " + codec.encode()
               + b"\n\nmessage +2D3- \xff\n")
        info = gitobjects.parse_commit("f" * 40, raw)
        info.message.encode("utf-8")  # storable and hashable: no lone surrogate
        assert info.author_name == "Ann" and info.message.startswith("message")

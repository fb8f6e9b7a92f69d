"""edit/text: insertions land where they are meant, in the file's own line endings, and the
guard refuses an edit that breaks the file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import loader
from reconciler.diagnostics import ReconcilerError
from reconciler.edit.text import Edit, apply_edits, json_text, line_after, scalar, still_valid

MODEL = """spec:
  versions:
    - version: "1.0.0"
      artifact: models/a.pkl   # a comment stays
  stages: {}
"""


def test_edits_apply_bottom_up_so_each_keeps_its_position() -> None:
    edited = apply_edits(MODEL, [Edit(4, 0, "      digest: md5:x\n"), Edit(0, 0, "# top\n")])
    lines = edited.splitlines()
    assert lines[0] == "# top"  # and the later edit still went where it was meant: before stages
    assert lines[5:7] == ["      digest: md5:x", "  stages: {}"]
    assert "# a comment stays" in edited


def test_an_edit_keeps_the_files_line_endings() -> None:
    crlf = MODEL.replace("\n", "\r\n")
    edited = apply_edits(crlf, [Edit(4, 0, "      digest: md5:x\n")])
    assert "\n" not in edited.replace("\r\n", "")


def test_line_after_a_block_mapping_is_the_line_after_its_last_value() -> None:
    doc = loader.load("m.yaml", MODEL.encode()).documents[0]
    version = doc.node_at(("spec", "versions", 0))
    assert version is not None
    assert line_after(version) == 4  # the line of `stages:`, where an insertion goes before


def test_the_guard_refuses_text_that_no_longer_loads() -> None:
    assert still_valid("m.yaml", MODEL)
    assert not still_valid("m.yaml", apply_edits(MODEL, [Edit(1, 2, "{")]))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                      blacklist_characters="\x00")))
def test_a_value_written_reads_back_as_the_text_it_was(text: str) -> None:
    """A line separator, a NEL, DEL, a C1 control, a BOM: each escaped, none folded or refused
    (a NUL no manifest may hold: YML010)."""
    loaded = loader.load("m.yaml", f"value: {scalar(text)}\n".encode())
    assert loaded.diagnostics == () and loaded.documents[0].data == {"value": text}


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON_VALUES = st.recursive(TEXT | st.integers(-2**63, 2**63 - 1) | st.booleans() | st.none(),
                           lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner),
                           max_leaves=12)


@given(JSON_VALUES)
def test_params_and_metrics_written_read_back_as_they_were(value: object) -> None:
    """What register and pin copy from DVC's records (any JSON value) reads back alike."""
    loaded = loader.load("m.yaml", f"value: {json_text(value, sort_keys=True)}\n".encode())
    assert loaded.diagnostics == () and loaded.documents[0].data == {"value": value}


def test_bytes_that_were_not_utf8_are_refused_not_written() -> None:
    with pytest.raises(ReconcilerError, match=r'"a\\udcffb" is not UTF-8 text'):
        scalar("a\udcffb")

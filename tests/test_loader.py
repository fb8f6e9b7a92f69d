"""Unit tests of the strict YAML loader: plain data out, positions kept, ambiguity refused."""

from __future__ import annotations

import re
import time
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import limits, loader


def _codes(raw: bytes) -> list[tuple[str, int, int]]:
    return [(d.code, d.line, d.col) for d in loader.load("f.yaml", raw).diagnostics]


def test_plain_data_and_positions() -> None:
    raw = b"a: 1\nb:\n  - x: 'yes'\n    y: 2024-06-01\n  - [1.5, true, null]\n"
    (doc,) = loader.load("f.yaml", raw).documents
    assert doc.data == {"a": 1, "b": [{"x": "yes", "y": "2024-06-01"}, [1.5, True, None]]}
    assert doc.position(("b", 0, "y")) == (4, 8)
    assert doc.position(("b", 0, "y"), key=True) == (4, 5)
    assert doc.position(("b", 1, 2)) == (5, 17)
    # A missing step points at the deepest node that exists.
    assert doc.position(("b", 0, "nope")) == (3, 5)


def test_numbers_keep_their_yaml_12_meaning() -> None:
    (doc,) = loader.load("f.yaml", b"a: 1.10\nb: 0x1F\nc: -7\nd: .inf\n").documents
    assert doc.data["a"] == 1.1  # the spec layer rejects it where a string is expected
    assert doc.data["b"] == 31
    assert doc.data["c"] == -7
    assert doc.data["d"] == float("inf")


def test_several_documents_per_file() -> None:
    loaded = loader.load("f.yaml", b"---\na: 1\n---\nb: 2\n...\n")
    assert [d.data for d in loaded.documents] == [{"a": 1}, {"b": 2}]
    assert loaded.documents[1].position(("b",)) == (4, 4)


def test_empty_file_has_no_documents() -> None:
    loaded = loader.load("f.yaml", b"# nothing here\n")
    assert loaded.documents == () and loaded.diagnostics == ()


def test_yaml_11_booleans_are_refused_everywhere() -> None:
    for word in (b"yes", b"No", b"ON", b"off"):
        assert _codes(b"key: " + word + b"\n") == [("YML003", 1, 6)]
    assert _codes(b"key: 'yes'\n") == []


def test_duplicate_keys_report_the_second_occurrence() -> None:
    assert _codes(b"a:\n  b: 1\n  c: 2\n  b: 3\n") == [("YML002", 4, 3)]


def test_alias_bomb_is_refused_quickly() -> None:
    levels = [b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 20):
        name, prev = chr(97 + i).encode(), chr(96 + i).encode()
        levels.append(name + b": &" + name + b" [" + b",".join([b"*" + prev] * 9) + b"]")
    start = time.perf_counter()
    codes = _codes(b"\n".join(levels) + b"\n")
    assert codes == [("YML004", 1, 4)]
    assert time.perf_counter() - start < 5  # 9**20 expanded nodes would never finish


def test_deep_nesting_is_refused_before_the_composer_recurses() -> None:
    for depth in (65, 1_000, 5_000, 200_000):  # libyaml itself refuses 1,000 levels
        raw = b"a: " + b"[" * depth + b"]" * depth + b"\n"
        assert _codes(raw) == [("YML009", 1, 3 + loader.MAX_DEPTH)]  # under the mapping
    block = b"".join(b"  " * i + b"k:\n" for i in range(100)) + b"  " * 100 + b"k: 1\n"
    assert _codes(block)[0][0] == "YML009"
    shallow = loader.MAX_DEPTH - 1  # under the document's mapping: just deep enough
    assert _codes(b"a: " + b"[" * shallow + b"]" * shallow + b"\n") == []


def test_depth_found_on_the_nodes_matches_the_event_scan(monkeypatch: Any) -> None:
    # Files with few brackets are composed first and measured on the nodes; the event scan
    # that guards the composer against huge inputs must reach the same verdict at the same place.
    deep = loader.MAX_DEPTH
    shapes = [
        b"a: " + b"[" * (deep + 1) + b"]" * (deep + 1) + b"\n",
        b"x: 1\n---\n" + b"b:\n" + b"- " * deep + b"y\n",
        b"".join(b"  " * i + b"k:\n" for i in range(deep + 6)) + b"  " * (deep + 6) + b"k: 1\n",
        b"a: {b: " + b"{c: " * (deep - 2) + b"1" + b"}" * (deep - 1) + b"\n",
        b"a: {b: " + b"{c: " * (deep - 1) + b"1" + b"}" * deep + b"\n",
        b"versions:\n" + b"- {a: [1], b: {c: [2]}}\n" * 300,  # many brackets, all shallow
    ]
    by_nodes = [_codes(raw) for raw in shapes]
    monkeypatch.setattr(loader, "SAFE_OPENERS", 0)
    assert [_codes(raw) for raw in shapes] == by_nodes
    assert [codes[0][0] if codes else None for codes in by_nodes] == [
        "YML009", "YML009", "YML009", None, "YML009", None]


def test_byte_order_mark_and_crlf() -> None:
    (doc,) = loader.load("f.yaml", b"\xef\xbb\xbfa: 1\r\nb: [x]\r\n").documents
    assert doc.data == {"a": 1, "b": ["x"]} and doc.position(("b",)) == (2, 4)


def test_ampersand_inside_strings_is_not_an_anchor() -> None:
    (doc,) = loader.load("f.yaml", b"a: 'R&D'\nb: x & y\n").documents
    assert doc.data == {"a": "R&D", "b": "x & y"}


def test_size_bound() -> None:
    raw = b"a: '" + b"x" * limits.MAX_FILE_BYTES + b"'\n"
    assert _codes(raw)[0][0] == "FIL002"


def test_binary_and_non_utf8() -> None:
    assert _codes(b"a: 1\nb: \x00\n") == [("FIL003", 2, 4)]
    assert _codes(b"a: 1\nb: caf\xe9\n") == [("FIL003", 2, 7)]


def test_tabs_get_a_hint() -> None:
    (diagnostic,) = loader.load("f.yaml", b"a:\n\tb: 1\n").diagnostics
    assert (diagnostic.code, diagnostic.line) == ("YML001", 2)
    assert "tabs" in diagnostic.hint


def test_tags_other_than_core_are_refused() -> None:
    assert _codes(b"a: !!python/name:os.system\n")[0][0] == "YML005"
    assert _codes(b"a: !!set {x}\n")[0][0] == "YML005"
    assert _codes(b"a: !!str 12\n") == []


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    # PyYAML writes 1e5-like strings unquoted (YAML 1.1 reads them as strings); the loader reads
    # them as YAML 1.2 does, as numbers: that difference is intended, not a round-trip failure.
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(
        lambda text: not re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+", text)))
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(alphabet="abcdefgh-_", min_size=1, max_size=8), children,
                        max_size=4)),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcxyz", min_size=1, max_size=5), _documents,
                       min_size=1, max_size=5))
def test_anything_pyyaml_writes_reads_back_identically(data: dict[str, object]) -> None:
    raw = yaml.safe_dump(data, allow_unicode=True).encode("utf-8")
    loaded = loader.load("f.yaml", raw)
    assert loaded.diagnostics == ()
    assert loaded.documents[0].data == data


@given(st.floats(allow_nan=False))
def test_every_float_renders_back_to_itself_in_both_readers(value: float) -> None:
    from reconciler.render.quote import quote

    text = f"a: {quote(value)}\n"
    assert yaml.safe_load(text)["a"] == value  # YAML 1.1 (PyYAML, most Kubernetes tools)
    (document,) = loader.load("x.yaml", text.encode()).documents
    assert document.data["a"] == value


@given(st.floats(allow_nan=False, allow_infinity=False),
       st.sampled_from(["{:e}", "{:E}", "{!r}", "{:.3e}", "{:g}"]))
def test_yaml12_floats_are_numbers(value: float, form: str) -> None:
    written = form.format(value)
    (document,) = loader.load("x.yaml", f"loss: {written}\n".encode()).documents
    assert document.data["loss"] == float(written)
    quoted = loader.load("x.yaml", f'loss: "{written}"\n'.encode()).documents[0]
    assert quoted.data["loss"] == written  # quoted, it stays the text it is


_PLAIN = st.one_of(
    st.text(alphabet="0123456789+-._:eExXoObBaAfFtTnNyYlLsSuUrR~=<", min_size=1, max_size=12),
    st.sampled_from(["yes", "No", "on", "OFF", "null", "~", "true", "False", "0x1F", "0o17",
                     "0b101", "1_000", "1:30", "2024-06-01", "2001-12-14t21:59:43.10-05:00",
                     ".inf", "-.Inf", ".NaN", "1.5", "-0", "<<", "="]))


@given(_PLAIN)
def test_the_resolver_agrees_with_safeloader(text: str) -> None:
    # The loader's own resolve() stands in for PyYAML's generic one on every plain scalar.
    expected = yaml.SafeLoader.resolve(yaml.SafeLoader(""), yaml.ScalarNode, text, (True, False))
    assert loader._plain_tag(text) == expected
    if expected == "tag:yaml.org,2002:str" and re.fullmatch(
            r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+", text):
        assert loader._plain_tag(text, yaml12_floats=True) == "tag:yaml.org,2002:float"
    else:
        assert loader._plain_tag(text, yaml12_floats=True) == expected

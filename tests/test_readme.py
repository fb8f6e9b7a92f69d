"""README.md cannot go stale: its field tables come from the JSON Schema, its examples validate
and use every field, and its two commands are what CI runs.

Regenerate the tables with `UPDATE_README=1 python -m pytest tests/test_readme.py`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from reconciler import api, loader, spec
from tests.conftest import PROJECT, Registry

README = PROJECT / "README.md"
BEGIN = "<!-- fields: generated from the JSON Schema by tests/test_readme.py -->"
END = "<!-- /fields -->"


def _type(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"] if p.get("type") != "null")
    if "$ref" in prop:  # a nested model, or pydantic's JsonValue (any JSON)
        return "any JSON value" if prop["$ref"].endswith("/JsonValue") else "mapping"
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{value}`" for value in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop['items'])}"
    if kind == "object":
        inner = prop.get("additionalProperties")
        return f"map of {_type(inner)}" if isinstance(inner, dict) and inner else "map"
    if not kind:
        return "any JSON value"
    return str(kind)


def _rows(defs: dict[str, Any], name: str, prefix: str) -> list[tuple[str, str, str, str]]:
    """(field path, type, required, description) of every field under the definition name."""
    definition = defs[name]
    rows = []
    for field, prop in sorted(definition["properties"].items()):
        if field in ("apiVersion", "kind"):
            continue
        path = f"{prefix}{field}"
        required = "yes" if field in definition.get("required", ()) else ""
        rows.append((path, _type(prop), required, prop.get("description", "")))
        rows += _nested(defs, prop, path)
    return rows


def _nested(defs: dict[str, Any], prop: dict[str, Any], path: str) -> list[tuple[str, ...]]:
    for option in prop.get("anyOf", [prop]):
        if _type(option) not in ("mapping", "list of mapping", "map of mapping"):
            continue
        if "$ref" in option:
            return _rows(defs, option["$ref"].rsplit("/", 1)[1], f"{path}.")
        if option.get("type") == "array" and "$ref" in option["items"]:
            return _rows(defs, option["items"]["$ref"].rsplit("/", 1)[1], f"{path}[].")
        inner = option.get("additionalProperties")
        if isinstance(inner, dict) and "$ref" in inner:
            return _rows(defs, inner["$ref"].rsplit("/", 1)[1], f"{path}.<name>.")
    return []


def field_tables() -> str:
    """The README's Markdown tables of every field of each kind."""
    defs = api.schema()["$defs"]
    parts = []
    for kind in spec.KINDS:
        parts.append(f"**{kind}** ({defs[kind]['description']})\n\n"
                     "| field | type | required | what it is for |\n| --- | --- | --- | --- |")
        for path, kind_, required, description in _rows(defs, kind, ""):
            text = " ".join(description.split()).replace("|", "\\|")
            parts.append(f"| `{path}` | {kind_} | {required} | {text} |")
        parts.append("")
    return "\n".join(parts)


def _field_types(kind: str) -> dict[str, str]:
    return {path: type_ for path, type_, _, _ in _rows(api.schema()["$defs"], kind, "")}


def _used_paths(data: Any, types: dict[str, str], prefix: str = "") -> set[str]:
    """The schema's field paths that data fills in (free-form maps count as one field)."""
    found = set()
    if isinstance(data, dict):
        named = types.get(prefix[:-1]) == "map of mapping"  # e.g. stages: keys are names
        for key, value in data.items():
            path = f"{prefix}<name>" if named else f"{prefix}{key}"
            found.add(path)
            if named or types.get(path, "") in ("mapping", "list of mapping", "map of mapping"):
                found |= _used_paths(value, types, f"{path}.")
    elif isinstance(data, list):
        for item in data:
            found |= _used_paths(item, types, f"{prefix[:-1]}[].")
    return found


def _examples() -> dict[str, Any]:
    """The README's full examples: the YAML block under 'Every field, by example'."""
    text = README.read_text()
    section = text.split("### Every field, by example", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    loaded = loader.load("README.md", block.group(1).encode())
    assert loaded.diagnostics == ()
    return {document.data["kind"]: document.data for document in loaded.documents}


def test_field_tables_are_generated_from_the_schema() -> None:
    text = README.read_text()
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    expected = f"{before}{BEGIN}\n\n{field_tables()}\n{END}{after}"
    if os.environ.get("UPDATE_README"):
        README.write_text(expected)
    assert text == expected, "README field tables are stale: UPDATE_README=1 to regenerate"


@pytest.mark.parametrize("kind", spec.KINDS)
def test_examples_validate_and_use_every_field(kind: str) -> None:
    document = _examples()[kind]
    assert not isinstance(spec.parse(document), list)
    rows = _rows(api.schema()["$defs"], kind, "")
    types = {path: type_ for path, type_, _, _ in rows}
    deprecated = [path for path, _, _, text in rows if text.startswith("Deprecated")]
    missing = {path for path in set(types) - _used_paths(document, types)
               if not path.startswith(tuple(deprecated))} - {"apiVersion", "kind"}
    assert not missing, f"the README's {kind} example leaves out {sorted(missing)}"


def test_the_two_commands_are_what_ci_runs() -> None:
    readme, ci = README.read_text(), (PROJECT / ".ci" / "run").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", readme.split("## Two commands", 1)[1], re.S)
    install, tests = commands[0], commands[1]
    assert "pip install -e '.[dev]'" in install and install.endswith("reconciler apply")
    assert tests in ci.splitlines()


def test_the_python_example_runs_as_written(registry: Registry, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The README's `From Python` block, run in a registry as a user would run it there."""
    block = re.findall(r"```python\n(.*?)\n```", README.read_text().split("### From Python")[1],
                       re.S)[0]
    monkeypatch.chdir(registry.root)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "version.added" in printed and "fraud" in printed

"""Every diagnostic is one line in every format, whatever the values it quotes hold."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic, printable, some_of
from reconciler.report import diagnostics as report
from tests.conftest import Registry

INJECTION = "x\n::error file=README.md,line=1::forged\r::warning::also\u2028\u202egnp.exe"


def _diagnostic(text: str) -> Diagnostic:
    return Diagnostic(f"manifests/{text}.yaml", 3, 5, "REF001", f"unknown dataset '{text}'",
                      f"did you mean '{text}'?")


def test_text_and_github_keep_each_diagnostic_on_its_own_lines() -> None:
    d = _diagnostic(INJECTION)
    text = report.text([d], 1).splitlines()
    assert len(text) == 3 and text[0].startswith("manifests/x\\n::error")
    github = report.github([d], 1).splitlines()
    assert len(github) == 2 and github[0].startswith("::error file=manifests/x\\n")
    assert not any(line.startswith(("::error file=README", "::warning")) for line in
                   text + github)
    markdown = report.markdown([d], 1)
    assert "\n::" not in markdown and "\u202e" not in markdown
    parsed = json.loads(report.as_json("validate", [d], 1))  # JSON escapes by itself
    assert parsed["diagnostics"][0]["message"] == d.message


@given(st.text())
def test_printable_leaves_one_line_and_keeps_printable_text(text: str) -> None:
    shown = printable(text)
    assert len(shown.splitlines()) <= 1
    if text.isprintable():
        assert shown == text


def test_a_value_with_a_workflow_command_cannot_start_a_log_line(registry: Registry) -> None:
    fraud = registry.root / "manifests" / "models" / "fraud.yaml"
    fraud.write_text(fraud.read_text().replace(
        "      metrics:", '      trainedOn: [{dataset: "x\\n::error file=README.md::forged", '
                         'version: "1"}]\n      metrics:'))
    for fmt in ("text", "github"):
        done = subprocess.run([sys.executable, "-m", "reconciler", "validate", "--format", fmt],
                              cwd=registry.root, capture_output=True, text=True, check=False)
        assert done.returncode == 1
        lines = done.stdout.splitlines()
        assert not any(line.startswith("::error file=README") for line in lines), lines
        assert any("\\n::error file=README.md::forged" in line for line in lines)


def test_a_list_of_names_in_a_message_stays_short() -> None:
    assert some_of([]) == "none"
    assert some_of(["b", "a"]) == "a, b"
    names = [f"model-{n:05d}" for n in range(300)]
    assert some_of(names) == ", ".join(names[:8]) + " and 292 more"

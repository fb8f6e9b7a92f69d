"""The bad-input corpus: each file names the rule it breaks and marks the line with `# <-`.

Every file is dropped into a real git + DVC registry and validated the way pre-commit calls
validate (just that path); the expected code must be reported at the marked line, as an error
(or warning for SEC codes), with no traceback and nothing else going wrong.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import api
from reconciler.diagnostics import CODES
from tests.conftest import Registry

CORPUS = Path(__file__).parent / "corpus" / "bad"
CASES = sorted(CORPUS.glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, int]:
    raw = path.read_bytes()
    code = re.match(rb"# expect: ([A-Z]{3}[0-9]{3})", raw)
    assert code, f"{path.name}: first line must be '# expect: CODE'"
    lines = raw.split(b"\n")
    marked = [number for number, line in enumerate(lines, start=1) if b"# <-" in line]
    assert len(marked) == 1, f"{path.name}: mark exactly one line with '# <-'"
    return code.group(1).decode(), marked[0]


def test_corpus_is_large_and_covers_codes() -> None:
    codes = {_expectation(path)[0] for path in CASES}
    assert len(CASES) >= 40
    assert codes <= set(CODES)
    families = {code[:3] for code in codes}
    assert families >= {"YML", "FIL", "SPC", "NAM", "REF", "STG", "SEC", "ART", "POL", "VER"}


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_bad_input(case: Path, registry: Registry) -> None:
    code, line = _expectation(case)
    target = f"manifests/corpus/{case.name}"
    registry.write(target, case.read_bytes())

    result = api.validate(str(registry.root), [str(registry.root / target)])

    found = [(d.code, d.line) for d in result.diagnostics if d.path == target]
    assert (code, line) in found, f"expected {code} at line {line}, got {result.diagnostics}"
    assert result.ok is (CODES[code][0] == "warning")
    for diagnostic in result.diagnostics:
        assert diagnostic.message and "\n" not in diagnostic.message


@pytest.mark.parametrize("case", [c for c in CASES if c.stem in
                                  ("yml-alias-bomb", "spc-version-float", "fil-nul")],
                         ids=lambda path: path.stem)
def test_cli_reports_bad_input_without_traceback(case: Path, registry: Registry) -> None:
    code, line = _expectation(case)
    target = registry.write(f"manifests/{case.name}", case.read_bytes())
    done = subprocess.run([sys.executable, "-m", "reconciler", "validate", "--format", "json",
                           str(target)], cwd=registry.root, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["format_version"] == 1
    assert {"code": code, "line": line} in [
        {"code": d["code"], "line": d["line"]} for d in report["diagnostics"]]

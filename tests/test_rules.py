"""rules on plain data: catalogs built from files held in memory (no git, no DVC)."""

from __future__ import annotations

import hashlib

from reconciler import catalog, rules
from reconciler.diagnostics import Diagnostic
from reconciler.source import FileProblem

DIGEST = "md5:" + "a" * 32
STAGING = ("manifests/staging.yaml",
           "apiVersion: reconciler/v1\nkind: Environment\nmetadata: {name: staging}\n"
           "spec: {namespace: ml-staging, target: kserve}\n")
PRODUCTION = ("manifests/production.yaml",
              "apiVersion: reconciler/v1\nkind: Environment\nmetadata: {name: production}\n"
              "spec:\n  namespace: ml-prod\n  target: kserve\n"
              "  promotion: {from: staging, requireMetrics: {auc: \">= 0.9\"}}\n")


class MemorySource:
    """A Source over a dict of files: what rules see, without a repository."""

    root = "/nonexistent"
    rev = None

    def __init__(self, files: dict[str, str]):
        self.files = {path: text.encode() for path, text in files.items()}

    def manifest_paths(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith("manifests/"))

    def dvc_paths(self) -> list[str]:
        return sorted(p for p in self.files if p.endswith(".dvc"))

    def exists(self, path: str) -> bool:
        return path in self.files

    def read(self, path: str) -> bytes:
        if path not in self.files:
            raise FileProblem("FIL004", f"no file '{path}'")
        return self.files[path]


def _model(stages: str, versions: str = "") -> tuple[str, str]:
    body = (f'    - {{version: "1.0.0", artifact: m.pkl, digest: {DIGEST}, '
            'metrics: {auc: 0.95}}\n' + versions)
    return ("manifests/fraud.yaml", "apiVersion: reconciler/v1\nkind: Model\n"
            f"metadata: {{name: fraud}}\nspec:\n  framework: sklearn\n  versions:\n{body}"
            f"  stages:\n{stages}")


def _version(version: str, auc: float) -> str:
    """Another version, of other bytes: a retrain into the same path (what DVC records now is
    the first version's, and only the newest pin is compared with it)."""
    digest = "md5:" + hashlib.md5(version.encode()).hexdigest()
    return (f'    - {{version: "{version}", artifact: m.pkl, digest: {digest}, '
            f'metrics: {{auc: {auc}}}}}\n')


def _dvc(newest: str | None = None) -> tuple[str, str]:
    """m.pkl.dvc as DVC writes it, recording the first version's bytes or those of newest."""
    md5 = DIGEST[4:] if newest is None else hashlib.md5(newest.encode()).hexdigest()
    return ("m.pkl.dvc", f"outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: m.pkl\n")


def _check(files: list[tuple[str, str]], base: list[tuple[str, str]] | None = None
           ) -> list[tuple[str, int]]:
    current = catalog.build(MemorySource(dict(files)))
    before = catalog.build(MemorySource(dict(base))) if base is not None else None
    found: list[Diagnostic] = current.diagnostics + rules.check(current, before)
    return sorted((d.code, d.line) for d in found)


def test_a_clean_registry_has_no_findings() -> None:
    assert _check([STAGING, PRODUCTION, _dvc(), _model('    staging: {version: "1.0.0"}\n')]) \
        == []


def test_promotion_that_skips_staging() -> None:
    base = [STAGING, PRODUCTION, _dvc(), _model('    staging: {version: "1.0.0"}\n')]
    second = _version("1.1.0", 0.5)
    head = [STAGING, PRODUCTION, _dvc("1.1.0"),
            _model('    staging: {version: "1.0.0"}\n    production: {version: "1.1.0"}\n',
                   second)]
    assert [code for code, _ in _check(head, base)] == ["POL001", "POL002"]


def test_a_rollback_is_told_by_history_not_by_the_order_of_versions() -> None:
    """Without a git history (files in memory), moving production back to a version listed
    earlier is not proof that production served it: the required stage is judged."""
    second = _version("1.1.0", 0.95)
    base = [STAGING, PRODUCTION, _dvc(),
            _model('    staging: {version: "1.1.0"}\n    production: {version: "1.1.0"}\n',
                   second)]
    head = [STAGING, PRODUCTION, _dvc(),
            _model('    staging: {version: "1.1.0"}\n    production: {version: "1.0.0"}\n',
                   second)]
    assert [code for code, _ in _check(head, base)] == ["POL001"]


def test_names_references_and_stages() -> None:
    found = _check([STAGING, _dvc(), _model('    prod: {version: "9.9.9", '
                                             'canary: {version: "1.0.0", traffic: 101}}\n')])
    assert [code for code, _ in found] == ["REF004", "REF005", "STG001"]

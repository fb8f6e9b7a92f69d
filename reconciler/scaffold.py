"""`reconciler init`: the files of a new model repository, from the starters in
reconciler/starter/. Nothing is written until every file has been checked: an existing file
is refused (without --force) before any other is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, NamedTuple

from reconciler import distribution
from reconciler.diagnostics import ReconcilerError
from reconciler.files import check_writable, write_all

if TYPE_CHECKING:
    from reconciler.source import Source

CI_CHOICES = ("github", "gitlab", "none")
HOOKS_REPO = distribution.REPOSITORY  # the published pre-commit hooks, and the releases
IGNORED = (".reconciler/", "/site/")  # the embedded database; `reconciler site`'s pages
# GitHub and GitLab read CODEOWNERS from these places (both also accept the root).
CODEOWNERS = {"github": ".github/CODEOWNERS", "gitlab": ".gitlab/CODEOWNERS",
              "none": "CODEOWNERS"}
CI_FILES = {"github": (".github/workflows/reconciler.yml", "github-workflow.yml"),
            "gitlab": (".gitlab-ci.yml", "gitlab-ci.yml")}
# A CODEOWNERS owner: @user, @org/team (GitHub, GitLab groups nest) or an email address.
_OWNER = re.compile(r"@[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
                    r"|[A-Za-z0-9_.%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A path CODEOWNERS takes literally: anything else (a glob or escape character, a space, a
# comment sign) would own other files, or none.
_LITERAL_PATH = re.compile(r"[A-Za-z0-9_./-]+")


class Planned(NamedTuple):
    """A file init writes: its path (relative to the folder) and its text."""

    path: str
    text: str


class InitResult(NamedTuple):
    """What init wrote, what it appended to, and the approvers and files it could not use."""

    written: list[str]
    appended: list[str]
    skipped_owners: list[str]
    unowned_paths: list[str]  # Environment files whose names CODEOWNERS would read as patterns


def plan_files(ci: str, target: str, branch: str = "main", templates: bool = False
               ) -> list[Planned]:
    """Every file a new repository gets, in the order they are written."""
    from reconciler import spec

    if ci not in CI_CHOICES:
        raise ReconcilerError(f"--ci must be one of {', '.join(CI_CHOICES)}")
    if target not in spec.TARGETS:
        raise ReconcilerError(f"--target must be one of {', '.join(spec.TARGETS)}")
    # One file per environment: CODEOWNERS owns files, and each environment's approvers
    # must own what it serves, and nothing else.
    files = [Planned(f"manifests/environments/{env}.yaml",
                     _starter(f"{env}.yaml").replace("{target}", target))
             for env in ("staging", "production")]
    files += [Planned("manifests/models/example.yaml", _starter("model.yaml")),
              Planned("manifests/datasets/example.yaml", _starter("dataset.yaml")),
              Planned(".pre-commit-config.yaml", _pre_commit_config())]
    if ci in CI_FILES:
        path, starter = CI_FILES[ci]
        files.append(Planned(path, _starter(starter).replace("{branch}", branch)
                             .replace("{render}", distribution.release_requirement("render"))
                             .replace("{apply}", distribution.release_requirement("apply"))))
    if templates:
        files += _templates()
    return files


def init(folder: str, *, ci: str = "github", target: str = "kserve", force: bool = False,
         templates: bool = False) -> InitResult:
    """Scaffold a model repository in folder (see plan_files); CODEOWNERS from the approvers
    of every Environment then under manifests/, and .gitignore entries appended."""
    root = os.path.abspath(folder)
    if not os.path.isdir(root):
        raise ReconcilerError(f"{folder}: no such folder")
    files = plan_files(ci, target, _branch(root), templates)
    check_writable(root, [*(f.path for f in files), CODEOWNERS[ci]], force=force)
    owners, skipped, unowned = _codeowners(_WithPlanned(root, files), CODEOWNERS[ci])
    if owners:
        files.append(Planned(CODEOWNERS[ci], owners))
    ignored = _ignored(root, IGNORED)
    # Every file or none (a full disk, a quota): a half-made repository is worse than none.
    write_all([(os.path.join(root, f.path), f.text)
               for f in [*files, *([ignored] if ignored else [])]])
    return InitResult([f.path for f in files], [".gitignore"] if ignored else [], skipped,
                      unowned)


def _starter(name: str) -> str:
    return resources.files("reconciler").joinpath("starter", name).read_text("utf-8")


def _pre_commit_config() -> str:
    return ("# reconciler's hooks, the fast local check (the gate is `reconciler plan` in CI, a\n"
            "# required status check with code-owner review): pin writes missing digests (and\n"
            "# fails once, like a formatter), validate checks every manifest change; both\n"
            "# also run when a .dvc file or dvc.lock changes.\n"
            "repos:\n"
            f"  - repo: {HOOKS_REPO}\n"
            f"    rev: {distribution.release_tag()}\n"
            "    hooks:\n"
            "      - id: reconciler-pin\n"
            "      - id: reconciler-validate\n")


def _templates() -> list[Planned]:
    from reconciler.render.engine import builtin_templates

    shipped = builtin_templates()
    return [Planned(f"templates/{path.parent.name}/{path.name}", path.read_text("utf-8"))
            for path in sorted(shipped.glob("*/*.j2"))]


def _branch(root: str) -> str:
    """The branch CI applies on: the current branch of root's repository, else main."""
    head = os.path.join(root, ".git", "HEAD")
    try:
        with open(head, encoding="utf-8") as handle:
            ref = handle.read().strip()
    except OSError:
        return "main"
    name = ref.removeprefix("ref: refs/heads/")
    return name if name != ref and re.fullmatch(r"[A-Za-z0-9._/-]+", name) else "main"


class _WithPlanned:
    """The work tree as it will be once the planned files are written (a Source): what
    CODEOWNERS is made from, before anything is written."""

    def __init__(self, root: str, planned: list[Planned]):
        from reconciler.source import WorkTree

        self._tree = WorkTree(root)
        self.root = self._tree.root
        self.rev: str | None = None  # the work tree
        self._planned = {f.path: f.text.encode("utf-8") for f in planned}

    def manifest_paths(self) -> list[str]:
        """The manifests on disk and planned."""
        from reconciler.paths import is_manifest_path

        planned = {p for p in self._planned if is_manifest_path(p)}
        return sorted(set(self._tree.manifest_paths()) | planned)

    def dvc_paths(self) -> list[str]:
        """The DVC files on disk (init plans none)."""
        return self._tree.dvc_paths()

    def exists(self, path: str) -> bool:
        """Whether a file is planned or on disk at path."""
        return path in self._planned or self._tree.exists(path)

    def read(self, path: str) -> bytes:
        """A planned file's text, else the file on disk (read as validate reads it)."""
        planned = self._planned.get(path)
        return planned if planned is not None else self._tree.read(path)

    def committed_digest(self, path: str) -> tuple[str, int] | None:
        """As on disk (init plans no artifact)."""
        return self._tree.committed_digest(path)


def _codeowners(source: Source, itself: str) -> tuple[str, list[str], list[str]]:
    """CODEOWNERS lines for the Environment manifests of source, from their approvers (an
    Environment's file says what it serves), and for the CODEOWNERS file itself, which every
    approver owns: who owns what changes only with their review."""
    from reconciler import catalog

    found = catalog.build(source)
    lines, skipped, unowned = [], [], []
    for path in sorted({entry.path for entry in found.environments.values()}):
        approvers = [a for entry in found.environments.values() if entry.path == path
                     for a in entry.manifest.spec.approvers]
        usable = [a for a in dict.fromkeys(approvers) if _OWNER.fullmatch(a)]
        skipped += [a for a in approvers if not _OWNER.fullmatch(a)]
        if usable and _LITERAL_PATH.fullmatch(path):
            lines.append(f"/{path} {' '.join(usable)}")
        elif usable:
            unowned.append(path)
    if not lines:
        return "", skipped, unowned
    everyone = dict.fromkeys(owner for line in lines for owner in line.split()[1:])
    lines.append(f"/{itself} {' '.join(everyone)}")
    header = ("# Written by `reconciler init` from the approvers of each Environment. An\n"
              "# Environment's file says what it serves and how: a change to it (a promotion,\n"
              "# a rollback, a canary, its policy) needs their review, as `reconciler plan`\n"
              "# lists. Turn on required review from code owners in the branch rules.\n")
    return header + "\n".join(lines) + "\n", skipped, unowned


def _ignored(root: str, entries: Iterable[str]) -> Planned | None:
    """.gitignore with the entries it lacks appended; None when it has them all."""
    path = os.path.join(root, ".gitignore")
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    missing = [e for e in entries if e not in text.splitlines()]
    if not missing:
        return None
    separator = "" if not text or text.endswith("\n") else "\n"
    return Planned(".gitignore", text + separator + "\n".join(missing) + "\n")

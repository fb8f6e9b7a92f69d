"""How this project is installed: its distribution name, its release, and the install lines
that hints and generated files print.

The import package and the command are `reconciler`, but the distribution is not: the name
`reconciler` on the package index belongs to an unrelated project, so a line that said
`pip install reconciler` would install a stranger's code. Releases are tags of the hooks'
repository (`v` + the version), and everything generated installs from that tag, so the CI a
repository runs installs exactly the version its pre-commit hooks pin.
"""

from __future__ import annotations

import json
import shlex
from importlib import metadata

from reconciler import __version__

NAME = "reconciler-gitops"  # free on PyPI when chosen (2026-12-03); never `reconciler`
REPOSITORY = "https://github.com/reconciler-dev/reconciler"  # the hooks and the releases


def release_tag(version: str = __version__) -> str:
    """The git tag of a release, as the generated .pre-commit-config.yaml pins it."""
    return f"v{version}"


def release_requirement(extras: str = "", repository: str = REPOSITORY,
                        version: str = __version__) -> str:
    """A pip requirement for this project with extras at a release tag of its repository."""
    return f"{NAME}{_extras(extras)} @ git+{repository}@{release_tag(version)}"


def install_line(extras: str = "") -> str:
    """The pip command that adds extras to this very installation: from the folder, the VCS
    commit or the index version it was installed from (PEP 610's direct_url.json)."""
    origin = _direct_url()
    if origin is None:  # from an index (or unknown): this version, under this project's name
        requirement = f"{NAME}{_extras(extras)}=={__version__}"
        return f"pip install {shlex.quote(requirement)}"
    url = origin.get("url", "")
    vcs = origin.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("commit_id"):
        requirement = f"{NAME}{_extras(extras)} @ git+{url}@{vcs['commit_id']}"
        return f"pip install {shlex.quote(requirement)}"
    if isinstance(url, str) and url.startswith("file://"):
        folder = url.removeprefix("file://")
        dir_info = origin.get("dir_info")
        editable = isinstance(dir_info, dict) and dir_info.get("editable") is True
        return f"pip install {'-e ' if editable else ''}{shlex.quote(folder + _extras(extras))}"
    return f"pip install {shlex.quote(f'{NAME}{_extras(extras)} @ {url}')}"


def _extras(extras: str) -> str:
    return f"[{extras}]" if extras else ""


def _direct_url() -> dict[str, object] | None:
    # Every distribution of the name, not the first found: run from a checkout, the build's
    # egg-info folder in the working directory shadows the installed one, which alone says
    # where it was installed from.
    for found in metadata.distributions(name=NAME):
        text = found.read_text("direct_url.json")
        try:
            origin = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(origin, dict):
            return origin
    return None

""".dvc/config is read as DVC reads it (configobj): quotes, inline comments, odd layouts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reconciler import api
from reconciler.dvc.remotes import ConfigError, remotes
from tests.conftest import Registry, dvc_env

CONFIG = """\
[core]
    remote = store   # the default, with a comment
    autostage = true
['remote "store"']
    url = s3://bucket/models  ; another comment style
[ 'remote "local" ' ]
    url = "../remote"
['remote "nfs"']
    url = /mnt/shared/dvc
"""


def _dvc(registry: Registry, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=registry.root,
                          capture_output=True, text=True, check=True, env=dvc_env()).stdout


def test_remotes_agree_with_dvc(registry: Registry) -> None:
    (registry.root / ".dvc" / "config").write_text(CONFIG)
    found, default = remotes(CONFIG)
    assert default == _dvc(registry, "remote", "default").strip() == "store"
    # `dvc config --list` prints one `remote.NAME.url=URL` a line (`dvc remote list` wraps
    # long lines to the terminal's width).
    listed = {key.split(".")[1]: value for key, _, value in (
        line.partition("=") for line in _dvc(registry, "config", "--list", "--project")
        .splitlines()) if key.startswith("remote.") and key.endswith(".url")}
    assert set(found) == set(listed)
    assert {name: remote.url for name, remote in found.items() if not remote.is_local} == {
        name: url for name, url in listed.items() if "://" in url}
    assert found["store"].url == "s3://bucket/models  ; another comment style"  # as DVC reads
    assert found["local"].url == "remote" and found["nfs"].url == "/mnt/shared/dvc"


def test_a_config_dvc_cannot_read_is_one_diagnostic(registry: Registry) -> None:
    with pytest.raises(ConfigError):
        remotes("[core\nremote = x\n")
    (registry.root / ".dvc" / "config").write_text("[core\nremote = x\n")
    (problem,) = api.render(str(registry.root)).diagnostics
    assert (problem.path, problem.code) == (".dvc/config", "ART005")

"""Fixtures: real git repositories with real DVC, made in temporary folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import git
import pytest
from hypothesis import settings

# No property test is timed: the machines are noisy (a first call that imports a module can take
# a second), and speed is the benches' to measure.
settings.register_profile("reconciler", deadline=None)
settings.load_profile("reconciler")

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Whether this run is CI's (database tests then must run). CI=true also makes apply refuse the
# embedded database unless asked for by name; tests of that set it themselves, and the rest run
# as on a developer's machine.
IN_CI = os.environ.pop("CI", "") == "true"
PROJECT = Path(__file__).resolve().parent.parent

ENVIRONMENTS = {
    "manifests/environments/staging.yaml": """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: staging}
spec:
  namespace: ml-staging
  target: kserve
""",
    "manifests/environments/production.yaml": """\
apiVersion: reconciler/v1
kind: Environment
metadata: {name: production}
spec:
  namespace: ml-prod
  target: kserve
  promotion:
    from: staging
    requireMetrics: {auc: ">= 0.9"}
""",
}


@dataclass
class Registry:
    """A git + DVC repository with a local DVC remote, driven the way users drive one."""

    root: Path
    repo: git.Repo

    def write(self, relative: str, text: str | bytes) -> Path:
        """Write a file (text or bytes), making folders."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def dvc(self, *args: str) -> str:
        """Run the real DVC command line in this repository."""
        done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=self.root,
                              capture_output=True, text=True, check=False, env=dvc_env())
        assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def digest(self, artifact: str) -> str:
        """What DVC recorded for artifact, as a manifest pins it (via our own adapter)."""
        from reconciler.dvc.records import DvcIndex
        from reconciler.source import WorkTree

        output = DvcIndex(WorkTree(str(self.root))).resolve(artifact)
        assert output is not None, f"{artifact} is not tracked"
        return output.digest

    def commit(self, message: str, author: str = "Ada Lovelace <ada@example.com>",
               date: str = "2024-06-01T10:00:00+00:00") -> str:
        """Stage everything and commit with the given author and date; return the sha."""
        self.repo.git.add(A=True)
        name, email = author[:-1].split(" <")
        actor = git.Actor(name, email)
        when = datetime.fromisoformat(date)
        offset = when.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        date = f"{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        commit = self.repo.index.commit(message, author=actor, committer=actor,
                                        author_date=date, commit_date=date)
        return commit.hexsha


def dvc_env() -> dict[str, str]:
    """The environment for DVC subprocesses: no analytics, no network, our interpreter."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def dvc_project(root: Path, user: tuple[str, str] = ("Test", "test@example.com")) -> Registry:
    """`git init` (branch main, user as committer) and `dvc init` in a new folder root."""
    project = Registry(root, git.Repo.init(root, initial_branch="main"))
    with project.repo.config_writer() as config:
        config.set_value("user", "name", user[0])
        config.set_value("user", "email", user[1])
    project.dvc("init", "-q")
    return project


def raw_data_source(root: Path) -> Registry:
    """A repository whose raw.csv is DVC-tracked: what `dvc import` brings data from."""
    source = dvc_project(root)
    source.write("raw.csv", "id,amount\n1,10\n2,20\n")
    source.dvc("add", "-q", "raw.csv")
    source.commit("raw data")
    source.repo.close()
    return source


def model_manifest(name: str, versions: list[tuple[str, str, str | None]],
                   stages: str = "", extra: str = "") -> str:
    """A Model manifest; versions are (version, artifact, digest or None)."""
    lines = ["apiVersion: reconciler/v1", "kind: Model", "metadata:", f"  name: {name}",
             "  owner: ml@example.com", "spec:", "  framework: sklearn", "  versions:"]
    for version, artifact, digest in versions:
        lines += [f"    - version: \"{version}\"", f"      artifact: {artifact}"]
        if digest:
            lines.append(f"      digest: {digest}")
        lines.append("      metrics: {auc: 0.93}")
    if stages:
        lines += ["  stages:", *("    " + line for line in stages.strip("\n").split("\n"))]
    return "\n".join(lines) + "\n" + extra


def environment_manifest(path: str, serves: dict[str, str], extra: str = "") -> str:
    """One of ENVIRONMENTS with extra spec lines and `serves` entries (model -> flow YAML)."""
    lines = [f"    {model}: {stage}" for model, stage in serves.items()]
    return ENVIRONMENTS[path] + extra + ("  serves:\n" + "\n".join(lines) + "\n" if lines else "")


def _make_template(root: Path) -> None:
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    registry = Registry(root, repo)
    registry.dvc("init", "-q")
    # Relative, so every copy of the template has its own remote beside it.
    registry.dvc("remote", "add", "-d", "local", "../remote")
    registry.write("models/fraud.pkl", b"fraud weights v1\n" + bytes(range(256)))
    registry.write("data/transactions.parquet", b"PAR1" + bytes(range(200)) + b"PAR1")
    registry.dvc("add", "-q", "models/fraud.pkl", "data/transactions.parquet")
    registry.dvc("push", "-q")
    for path, text in ENVIRONMENTS.items():
        registry.write(path, text)
    registry.write("manifests/datasets/transactions.yaml", f"""\
apiVersion: reconciler/v1
kind: Dataset
metadata: {{name: transactions, owner: data@example.com}}
spec:
  versions:
    - version: "2024-06"
      artifact: data/transactions.parquet
      digest: {registry.digest("data/transactions.parquet")}
""")
    registry.write("manifests/models/fraud.yaml", model_manifest(
        "fraud", [("1.0.0", "models/fraud.pkl", registry.digest("models/fraud.pkl"))],
        stages='staging: {version: "1.0.0"}\nproduction: {version: "1.0.0"}'))
    registry.commit("Register fraud 1.0.0")


@pytest.fixture(scope="session")
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session: dvc init/add/push are slow, copying is not."""
    base = tmp_path_factory.mktemp("template")
    _make_template(base / "repo")
    return base


def copy_registry(template: Path, destination: Path) -> Registry:
    """A working copy of a template folder: the repository and the DVC remote beside it."""
    shutil.copytree(template, destination, dirs_exist_ok=True, symlinks=True)
    return Registry(destination / "repo", git.Repo(destination / "repo"))


@pytest.fixture
def registry(registry_template: Path, tmp_path: Path) -> Iterator[Registry]:
    """A fresh copy of the template registry: models/fraud.pkl 1.0.0, dataset, two environments."""
    copy = copy_registry(registry_template, tmp_path / "r")
    yield copy
    copy.repo.close()


SERVERS = {"mariadb": "RECONCILER_TEST_MYSQL_URL", "postgresql": "RECONCILER_TEST_POSTGRES_URL"}


@pytest.fixture(scope="session")
def history_template(registry_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template registry with a history of commits (tests/test_apply.build_history), built
    once for the whole session: here, not in a test module, so every module shares it."""
    from tests.test_apply import build_history

    base = tmp_path_factory.mktemp("history")
    registry = copy_registry(registry_template, base)
    build_history(registry)
    registry.repo.close()
    return base


@pytest.fixture
def history(history_template: Path, tmp_path: Path) -> Iterator[Registry]:
    """A fresh copy of the history registry."""
    copy = copy_registry(history_template, tmp_path / "h")
    yield copy
    copy.repo.close()


def _scratch_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database on the server of base_url, and how to drop it."""
    import sqlalchemy

    name = f"reconciler_t_{uuid.uuid4().hex[:12]}"
    base = sqlalchemy.make_url(base_url)
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")

    def drop() -> None:
        with admin.connect() as connection:
            if base.get_backend_name() == "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def server_url(backend: str) -> str:
    """The base URL of a test server, or skip (fail in CI) when it is not configured."""
    variable = SERVERS[backend]
    url = os.environ.get(variable)
    if not url:
        message = f"{backend} tests need {variable} (see .ci/run)"
        if IN_CI:
            pytest.fail(message + ": CI must run them")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository as its users' pip and pre-commit find it: a clone with this version's
    release tag (the tag `init` pins) on the commit under test."""
    from reconciler import distribution

    clone = tmp_path_factory.mktemp("release") / "reconciler"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "tag", distribution.release_tag()], check=True)
    return clone


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each back end (a scratch database on the servers)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
        return
    url, drop = _scratch_database(server_url(request.param))
    try:
        yield url
    finally:
        drop()

"""`reconciler import gto`: a GTO registry (artifacts in dvc.yaml, actions in git tags) turned
into manifests, and its history into the audit database, so `audit history` covers a model's
whole life. Reads git through `source`, DVC records through `dvc`; GTO itself is never imported.

Each registered version becomes a version pinned to what DVC recorded for the artifact's path
at the tag's commit (digest, size, and `rev:` that commit), with metrics and params from that
commit's DVC metrics/params files; each stage becomes an Environment, and what it serves now
its `serves:`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import yaml

from reconciler import spec
from reconciler.diagnostics import ReconcilerError, printable
from reconciler.dvc import metrics as dvcmetrics
from reconciler.dvc.records import MD5, DvcFileError, Output, parse_dvc_file
from reconciler.files import check_writable, write_all
from reconciler.git.objects import parse_commit, parse_ident
from reconciler.git.plumbing import read_at, read_objects, resolve_commit, run_git
from reconciler.gto import tags as gtoregistry
from reconciler.gto.tags import Action, ArtifactState
from reconciler.limits import DNS_LABEL_CHARS, MAX_FILE_BYTES, VERSION_CHARS, is_dns_label
from reconciler.paths import plain_path

IMPORTED = "gto"  # payload["imported"] of every event an import writes


class GtoImport(NamedTuple):
    """What `import gto` found and did: manifests (written, or to write), what it left out,
    names it changed to DNS-1123 labels, and the events it imported into the database."""

    manifests: dict[str, str]
    written: list[str]
    skipped: list[str]
    renamed: dict[str, str]
    events: int | None


def import_registry(root: str, db: str | None = None, *, write: bool = False,
                    target: str | None = None, force: bool = False, history: bool = False
                    ) -> GtoImport:
    """Turn the GTO registry of root into manifests (written with write) and, with history,
    its whole history into the database at db (before the first apply)."""
    imported = read_registry(
        root, target=target,  # naive UTC, as every time read from git is
        read_at=datetime.now(UTC).replace(microsecond=0, tzinfo=None))
    problems = checked(imported)
    if problems:
        raise ReconcilerError(f"the imported manifests would not validate: {problems[0]}")
    written: list[str] = []
    if write:
        check_writable(root, list(imported.manifests), force=force)
        write_all([(os.path.join(root, path), text)
                   for path, text in sorted(imported.manifests.items())])
        written = sorted(imported.manifests)
    events = None
    if history:
        from reconciler import reconcile

        events = reconcile.import_history(root, db, imported)
    return GtoImport(imported.manifests, written, imported.skipped, imported.renamed, events)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Artifact:
    """An artifact of dvc.yaml's `artifacts:` (or artifacts.yaml)."""

    name: str
    path: str
    type: str | None
    desc: str | None = None
    labels: list[str] = field(default_factory=list)


@dataclass
class Version:
    """A GTO version as a manifest pins it (digest None: its bytes cannot be pinned)."""

    version: str
    commit: str
    digest: str | None
    size: int | None
    metrics: dict[str, float]
    params: dict[str, Any]


@dataclass
class Imported:
    """What an import found: manifests to write (path -> text), and what it left out."""

    manifests: dict[str, str]
    skipped: list[str]
    renamed: dict[str, str]
    actions: list[Action]
    versions: dict[tuple[str, str], Version]  # (artifact, version) -> how it is pinned
    names: dict[str, str]  # GTO artifact or stage name -> manifest name
    models: dict[str, Artifact]  # the artifacts imported as models
    at: str  # the commit whose dvc.yaml declared the artifacts
    # When the registry was read: no tag lands later (see history_events). None: an import
    # recorded before that rule, derived again as it was.
    read_at: datetime | None


def read_registry(root: str, *, target: str | None = None, at: str = "HEAD",
                  tags: frozenset[str] | None = None, read_at: datetime | None = None
                  ) -> Imported:
    """Read the GTO registry of root as declared at commit `at`: artifacts, tags (only those
    named, when tags is given: what an earlier import read), and each version's record.
    read_at is the moment it is read (an import's now; an earlier import's as it recorded it,
    to derive that import again)."""
    if target is not None and target not in spec.TARGETS:
        raise ReconcilerError(f"--target must be one of {', '.join(spec.TARGETS)}")
    head = resolve_commit(root, at)
    artifacts = read_artifacts(root, head)
    actions, unfit = _storable([action for action in read_actions(root)
                                if tags is None or action.tag in tags])
    states = gtoregistry.fold(actions)
    skipped: list[str] = []
    if unfit:
        skipped.append(f"{len(unfit)} tags whose version is no version a manifest can hold "
                       f"(at most {VERSION_CHARS} of letters, digits and ._+-): "
                       f"{', '.join(printable(tag[:80]) for tag in unfit[:5])}"
                       f"{' ...' if len(unfit) > 5 else ''}")
    models: dict[str, Artifact] = {}
    for name in sorted(set(artifacts) | set(states)):
        artifact = artifacts.get(name)
        if artifact is None:
            skipped.append(f"{name}: has tags but is not in dvc.yaml's artifacts (no path)")
        elif artifact.type != "model":
            skipped.append(f"{name}: type {artifact.type or '(none)'}, not a model")
        elif _URL.match(artifact.path) or not plain_path(artifact.path):
            skipped.append(f"{name}: path {artifact.path!r} is outside the repository, so no "
                           "version can be pinned")
        else:
            models[name] = artifact
    names, renamed = _manifest_names([*models, *{s for n in models
                                                 for s in states.get(n, ArtifactState()).assigned}])
    versions = _pinned_versions(root, models, states)
    unpinned = sorted(f"{a}@{v}" for (a, v), pinned in versions.items() if pinned.digest is None)
    if unpinned:
        skipped.append(f"{len(unpinned)} versions whose artifact neither DVC nor git holds at "
                       f"their commit: {', '.join(unpinned[:10])}"
                       f"{' ...' if len(unpinned) > 10 else ''}")
    manifests = _manifests(models, states, versions, names, target)
    return Imported(manifests, skipped, renamed, actions, versions, names, models, head,
                    read_at)


def read_artifacts(root: str, commit: str) -> dict[str, Artifact]:
    """Artifacts declared in dvc.yaml's `artifacts:` (DVC 3) and the older artifacts.yaml."""
    found: dict[str, Artifact] = {}
    files = read_at(root, [(commit, "artifacts.yaml"), (commit, "dvc.yaml")], MAX_FILE_BYTES)
    for path in ("artifacts.yaml", "dvc.yaml"):  # dvc.yaml wins where both declare one
        data = dvcmetrics.yaml_data(path, files.get((commit, path)))
        declared = data if path == "artifacts.yaml" else data.get("artifacts", {})
        for name, entry in (declared or {}).items() if isinstance(declared, dict) else []:
            if isinstance(name, str) and isinstance(entry, dict) and isinstance(
                    entry.get("path"), str):
                labels = entry.get("labels")
                found[name] = Artifact(
                    name, entry["path"], entry.get("type") if isinstance(entry.get("type"), str)
                    else None, entry.get("desc") if isinstance(entry.get("desc"), str) else None,
                    [str(label) for label in labels] if isinstance(labels, list) else [])
    return found


def read_actions(root: str) -> list[Action]:
    """Every GTO tag of root as an action, from the raw tag and commit objects."""
    listed = run_git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/tags")
    refs: list[tuple[str, str]] = []
    for line in listed.decode("utf-8", "replace").splitlines():
        sha, _, ref = line.partition(" ")
        tag = ref.removeprefix("refs/tags/")
        if gtoregistry.parse_tag(tag) is not None:
            refs.append((sha, tag))
    objects = read_objects(root, [sha for sha, _ in refs], {"tag", "commit"})
    actions = []
    commits: dict[str, tuple[str, str]] = {}  # lightweight tags: tag -> its commit
    for sha, tag in refs:
        kind, raw = objects[sha]
        name = gtoregistry.parse_tag(tag)
        assert name is not None
        if kind == "commit":
            commits[tag] = (sha, tag)
            continue
        head = raw.partition(b"\n\n")[0]
        fields: dict[bytes, bytes] = {}  # the first of a repeated header, as git reads tags
        for header in head.split(b"\n"):
            key, space, value = header.partition(b" ")
            if space:
                fields.setdefault(key, value)
        target = fields.get(b"object", b"").decode("ascii", "replace")
        tagger = parse_ident(fields.get(b"tagger", b""))
        if fields.get(b"type") == b"tag":  # a tag of a tag: GTO counts it, at its commit
            target = _peeled(root, target)
        elif fields.get(b"type") != b"commit":
            continue
        if target:
            actions.append(Action(tag, name, target, tagger.name, tagger.email, tagger.when))
    infos = {sha: parse_commit(sha, raw) for sha, (kind, raw) in read_objects(
        root, [sha for sha, _ in commits.values()], {"commit"}).items()}
    for sha, tag in commits.values():
        info, name = infos[sha], gtoregistry.parse_tag(tag)
        assert name is not None
        actions.append(Action(tag, name, sha, info.author_name, info.author_email,
                              info.committed_at))
    return gtoregistry.ordered(actions)


MAX_TAG_CHAIN = 16  # tags of tags followed to a commit (git's own peeling has no limit)


def _peeled(root: str, sha: str) -> str:
    """The commit a chain of tag objects ends at ("" when it ends elsewhere or goes on)."""
    for _ in range(MAX_TAG_CHAIN):
        if not sha:
            return ""
        try:
            kind, raw = read_objects(root, [sha], {"tag", "commit", "tree", "blob"}).get(
                sha, ("", b""))
        except ReconcilerError:  # a missing object
            return ""
        if kind == "commit":
            return sha
        if kind != "tag":
            return ""
        header = raw.partition(b"\n\n")[0]
        sha = next((line[7:].decode("ascii", "replace") for line in header.split(b"\n")
                    if line.startswith(b"object ")), "")
    return ""


def _storable(actions: list[Action]) -> tuple[list[Action], list[str]]:
    """The actions whose version a manifest, and so every database, can hold; the tags of the
    others (the same for every back end: SQLite would store what the servers refuse)."""
    kept, unfit = [], []
    for action in actions:
        version = action.name.version
        if version is None or (len(version) <= VERSION_CHARS
                               and spec.VERSION_PATTERN.fullmatch(version)):
            kept.append(action)
        else:
            unfit.append(action.tag)
    return kept, unfit


def _manifest_names(names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """GTO names (letters, digits, '_', '/', ':') as DNS-1123 labels; the ones that change."""
    mapped: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for name in dict.fromkeys(names):
        label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:DNS_LABEL_CHARS].strip("-")
        if not is_dns_label(label):
            raise ReconcilerError(f"GTO name {name!r} has no DNS-1123 form")
        if label in mapped.values():
            raise ReconcilerError(f"GTO names {name!r} and "
                                  f"{next(k for k, v in mapped.items() if v == label)!r} would "
                                  f"both be named {label!r}")
        mapped[name] = label
        if label != name:
            renamed[name] = label
    return mapped, renamed


def _pinned_versions(root: str, models: dict[str, Artifact],
                     states: dict[str, ArtifactState]) -> dict[tuple[str, str], Version]:
    """Every registered version of the models, pinned to DVC's record at its commit; the
    DVC files, metrics and params of all commits are read in one round trip."""
    wanted: list[tuple[str, str]] = []
    for name, artifact in models.items():
        for commit in states.get(name, ArtifactState()).versions.values():
            wanted += [(commit, f"{artifact.path}.dvc"), (commit, "dvc.lock"),
                       (commit, "dvc.yaml"), (commit, "params.yaml")]
    wanted = sorted(set(wanted))
    files = read_at(root, wanted, MAX_FILE_BYTES)  # a larger one is no file DVC wrote
    # dvc.yaml and params.yaml rarely change between commits (and dvc.yaml declares every
    # artifact): each distinct content is parsed once, not once per version.
    parsed: dict[tuple[str, bytes | None], dict[str, Any]] = {}

    def data_at(commit: str, path: str) -> dict[str, Any]:
        raw = files.get((commit, path))
        if (path, raw) not in parsed:
            parsed[(path, raw)] = dvcmetrics.data(path, raw)
        return parsed[(path, raw)]

    commits = {commit for commit, path in wanted if path == "dvc.yaml"}
    files.update(read_at(root, [(commit, path) for commit in commits
                                for path in _metric_files(data_at(commit, "dvc.yaml"), None)],
                         MAX_FILE_BYTES))
    # Artifacts committed to git itself: the bytes at the commit, read only where DVC has no
    # record (a model file can be large).
    unrecorded = [(commit, artifact.path) for name, artifact in models.items()
                  for commit in states.get(name, ArtifactState()).versions.values()
                  if _recorded(files, commit, artifact.path) is None]
    committed = {key: (hashlib.md5(raw, usedforsecurity=False).hexdigest(), len(raw))
                 for key, raw in read_at(root, unrecorded).items()}
    pinned = {}
    for name, artifact in models.items():
        for version, commit in states.get(name, ArtifactState()).versions.items():
            output = _recorded(files, commit, artifact.path)
            digest, size = (output.digest, output.size) if output else (None, None)
            if digest is None and (commit, artifact.path) in committed:
                md5, size = committed[(commit, artifact.path)]
                digest = f"{MD5}:{md5}"
            stage = output.lineage.stage if output and output.lineage else ""
            metrics: dict[str, float] = {}
            for path in _metric_files(data_at(commit, "dvc.yaml"), stage):
                metrics.update(dvcmetrics.numbers(data_at(commit, path)))
            params = dvcmetrics.flat(data_at(commit, "params.yaml"))
            pinned[(name, version)] = Version(version, commit, digest, size, metrics, params)
    return pinned


def _recorded(files: dict[tuple[str, str], bytes], commit: str, path: str) -> Output | None:
    """What DVC recorded for path at commit: in path.dvc, else in the top dvc.lock (with the
    stage that produced it)."""
    for dvc_path in (f"{path}.dvc", "dvc.lock"):
        raw = files.get((commit, dvc_path))
        for output in _outputs(dvc_path, raw) if raw is not None else ():
            if output.path == path:
                return output
    return None


@functools.lru_cache(maxsize=4096)
def _outputs(dvc_path: str, raw: bytes) -> tuple[Output, ...]:
    """A DVC file's outputs, parsed once per content (a dvc.lock is the same at most of the
    commits that register versions)."""
    try:
        return tuple(parse_dvc_file(dvc_path, raw))
    except DvcFileError:
        return ()


def _metric_files(dvc_yaml: dict[str, Any], stage: str | None) -> list[str]:
    """The metrics files dvc.yaml declares at the top level, and those of the stage that
    produced an artifact ("": none did; None: those of every stage, to read them all at once)."""
    stages = dvc_yaml.get("stages") if isinstance(dvc_yaml.get("stages"), dict) else {}
    producers = [s for s in stages or {} if isinstance(s, str)] if stage is None else [stage]
    found = dvcmetrics.top_level_metrics(dvc_yaml)
    for producer in producers:
        found += [p for p in dvcmetrics.stage_metrics(dvc_yaml, producer) if p not in found]
    return found


def _manifests(models: dict[str, Artifact], states: dict[str, ArtifactState],
               versions: dict[tuple[str, str], Version], names: dict[str, str],
               target: str | None) -> dict[str, str]:
    files: dict[str, str] = {}
    serves: dict[str, dict[str, Any]] = {}  # environment -> model -> what it serves
    for name, artifact in sorted(models.items()):
        state = states.get(name, ArtifactState())
        listed = [versions[(name, v)] for v in state.versions
                  if v not in state.deregistered and versions[(name, v)].digest is not None]
        if not listed:
            continue
        metadata: dict[str, Any] = {"name": names[name]}
        if artifact.desc:
            metadata["description"] = artifact.desc
        metadata["labels"] = {label: "true" for label in artifact.labels
                              if re.fullmatch(r"[A-Za-z0-9._/-]{1,63}", label)}
        metadata["annotations"] = {"gto.artifact": name, "imported-from": "gto"}
        for stage, version in ({} if state.deprecated else state.stages()).items():
            if (name, version) in versions and versions[(name, version)].digest is not None:
                serves.setdefault(names[stage], {})[names[name]] = {"version": version}
        files[f"manifests/models/{names[name]}.yaml"] = _dump({
            "apiVersion": spec.API_VERSION, "kind": "Model", "metadata": metadata,
            "spec": {"framework": "custom",
                     "versions": [_version(artifact.path, v, state.deprecated) for v in listed]}})
    stages = sorted({s for n in models for s in states.get(n, ArtifactState()).assigned})
    for stage in stages:
        served = serves.get(names[stage], {})
        files[f"manifests/environments/{names[stage]}.yaml"] = _dump({
            "apiVersion": spec.API_VERSION, "kind": "Environment",
            "metadata": {"name": names[stage],
                         "annotations": {"gto.stage": stage, "imported-from": "gto"}},
            "spec": {**({"namespace": names[stage], "target": target} if target else {}),
                     **({"serves": served} if served else {})}})
    return dict(sorted(files.items()))


def _version(path: str, version: Version, deprecated: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"version": version.version, "artifact": path,
                             "digest": version.digest, "size": version.size,
                             "rev": version.commit}
    if version.metrics:
        entry["metrics"] = version.metrics
    if version.params:
        entry["params"] = version.params
    if deprecated:
        entry["deprecated"] = True
    return {k: v for k, v in entry.items() if v is not None}


def _dump(document: dict[str, Any]) -> str:
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=100)
    return "# imported from GTO by `reconciler import gto`\n" + text


def checked(imported: Imported) -> list[str]:
    """Problems the written manifests would have (each must load and parse as written)."""
    from reconciler import loader

    problems = []
    for path, text in sorted(imported.manifests.items()):
        loaded = loader.load(path, text.encode("utf-8"))
        problems += [f"{d.path}:{d.line}:{d.col}: {d.code} {d.message}"
                     for d in loaded.diagnostics]
        for document in loaded.documents:
            parsed = spec.parse(document.data)
            if isinstance(parsed, list):
                problems += [f"{path}: {error.code} {error.message}" for error in parsed]
    return problems


def history_events(imported: Imported
                   ) -> Iterator[tuple[Action, datetime, tuple[str, dict[str, Any]]]]:
    """Per tag of an imported model, in order, the one audit event it becomes: (the action,
    when it landed, (type, fields) with name, version, environment and payload); every
    payload marked imported, with the tag, GTO's name for the action (`gto`) and when the
    registry was read (`importedAt`). A tag dated after that moment (its tagger's clock,
    2100 say) lands then, its own date kept as `taggedAt`: no period opens in the future."""
    states: dict[str, ArtifactState] = {}
    # GTO's tags of one version point at one commit, so a stage can be assigned twice at one
    # commit (a return to a version): the second is told apart (`occurrence`), or its serving
    # period would be the first's row.
    assigned: dict[tuple[str, str, str], int] = {}
    for action in imported.actions:
        artifact, kind = action.name.artifact, action.name.action
        if artifact not in imported.models:
            continue  # not a model that was imported
        state = states.setdefault(artifact, ArtifactState())
        stage = action.name.stage
        before = state.serving(stage) if stage is not None else None
        gtoregistry.apply_action(state, action)
        mark: dict[str, Any] = {"imported": IMPORTED, "tag": action.tag, "gto": kind,
                                "at": imported.at}
        landed = action.when
        if imported.read_at is not None:
            mark["importedAt"] = imported.read_at.isoformat()
            landed = min(action.when, imported.read_at)
            if landed != action.when:
                mark["taggedAt"] = action.when.isoformat()
        name, version = imported.names[artifact], action.name.version
        if kind == gtoregistry.REGISTER and version is not None:
            pinned = imported.versions.get((artifact, version))
            path = imported.models[artifact].path
            record = _version(path, pinned, False) if pinned else {"artifact": path}
            yield action, landed, ("version.added", {"name": name, "version": version,
                                                     "payload": {**record, **mark}})
        elif kind == gtoregistry.DEREGISTER:
            yield action, landed, ("version.removed", {"name": name, "version": version,
                                                       "payload": mark})
        elif kind == gtoregistry.DEPRECATE:
            yield action, landed, ("model.retired", {"name": name, "version": None,
                                                     "payload": mark})
        elif stage is not None:
            kind_, fields = _stage_event(name, imported.names[stage], before,
                                         state.serving(stage), mark)
            if kind_ == "stage.assigned":
                key = (name, imported.names[stage], action.commit)
                assigned[key] = assigned.get(key, 0) + 1
                if assigned[key] > 1:
                    fields["payload"] = {**fields["payload"], "occurrence": assigned[key]}
            yield action, landed, (kind_, fields)


def _stage_event(name: str, env: str, before: str | None, after: str | None,
                 mark: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An assignment or unassignment as what the stage serves before and after it."""
    if after is not None and (after != before or mark["gto"] == gtoregistry.ASSIGN):
        return ("stage.assigned", {"name": name, "version": after, "environment": env,
                                   "payload": {"from": before, "to": after, "kind": "imported",
                                               **mark}})
    if after is None and before is not None:
        return ("stage.removed", {"name": name, "version": None, "environment": env,
                                  "payload": {"from": before, **mark}})
    # An unassignment of a version the stage no longer served: history only.
    return ("stage.unassigned", {"name": name, "version": None, "environment": env,
                                 "payload": mark})

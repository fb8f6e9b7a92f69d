"""The whole desired state at one revision: every manifest loaded, parsed and indexed by name.

With `only` (how pre-commit calls validate) just those files are checked in full; the rest of
the repository is read only as far as references need: Datasets and Environments in full, and
for Models just their names, found by a cheap scan that falls back to a full load when unsure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reconciler import loader, serving, spec
from reconciler.diagnostics import Diagnostic, ReconcilerError, printable, some_of
from reconciler.dvc import lineage
from reconciler.dvc import records as dvc
from reconciler.dvc.records import DvcIndex, Output
from reconciler.loader import Document, Loc
from reconciler.paths import is_manifest_path
from reconciler.source import FileProblem, Source

if TYPE_CHECKING:
    from reconciler.dvc.metrics import RecordedMetrics
    from reconciler.source import FilesAt, GitRevision

M = TypeVar("M", spec.Model, spec.Dataset, spec.Environment)


@dataclass(frozen=True)
class Entry(Generic[M]):
    """A parsed manifest and the YAML document it came from (for positions)."""

    manifest: M
    doc: Document
    # Environment name -> the Environment document whose `serves` gives this model that
    # stage (see serving): a finding about the stage points there.
    served_from: dict[str, Document] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.manifest.metadata.name

    @property
    def path(self) -> str:
        """The manifest file, repository-relative."""
        return self.doc.path

    def at(self, loc: Loc, code: str, message: str, hint: str = "", *,
           key: bool = False) -> Diagnostic:
        """A diagnostic located at loc inside this manifest (a stage an Environment's file
        gives the model: at that Environment's `serves` entry)."""
        doc = self.doc
        if loc[:2] == ("spec", "stages") and len(loc) > 2 and loc[2] in self.served_from:
            doc = self.served_from[str(loc[2])]
            loc = ("spec", "serves", self.name, *loc[3:])
        line, col = doc.position(loc, key=key)
        # Messages quote manifest values: escaped here, each stays one line wherever it goes.
        return Diagnostic(doc.path, line, col, code, printable(message), printable(hint))


@dataclass
class Catalog:
    """Models, datasets and environments by name, plus what DVC records for their artifacts."""

    source: Source
    models: dict[str, Entry[spec.Model]] = field(default_factory=dict)
    datasets: dict[str, Entry[spec.Dataset]] = field(default_factory=dict)
    environments: dict[str, Entry[spec.Environment]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    # Files loaded in full only because a checked Dataset/Environment may break their references.
    dependents: set[str] = field(default_factory=set)
    # Every file loaded in full (parsed, or tried): what a plan reads again at its base.
    read_in_full: set[str] = field(default_factory=set)
    # In paths mode, the models of the files only scanned for their names: name -> path.
    scanned_models: dict[str, str] = field(default_factory=dict)
    # (path, bytes) -> manifests of every file that loaded cleanly: replay.History reuses them.
    parsed_files: dict[tuple[str, bytes], list[spec.Manifest]] = field(default_factory=dict)
    # The same files with their documents, so another catalog of the same bytes (the base of
    # a plan) registers them without parsing them again.
    loaded_files: dict[tuple[str, bytes], list[tuple[Document, spec.Manifest]]] = field(
        default_factory=dict)
    # How "served before" is judged (promotion.from, rollbacks): on the first-parent history
    # of the registry branch when the caller knows it, else of this catalog's own revision.
    # apply's replay knows what served since its walk started (served_known) and names the
    # commit it started at (registry_rev; None: the beginning) for what lies before.
    registry_rev: str | None = None
    served_known: set[tuple[str, str, str]] | None = None
    dvc: DvcIndex = field(init=False)
    _on_registry: bool | None = None
    _committed: dict[str, Output | None] = field(default_factory=dict)  # artifacts in git
    _metrics: dict[str, RecordedMetrics | None] = field(default_factory=dict)  # artifact -> metrics

    def __post_init__(self) -> None:
        self.dvc = DvcIndex(self.source)

    @property
    def rev(self) -> str | None:
        """The commit this catalog was read at; None for the working tree."""
        return self.source.rev

    def output(self, artifact: str) -> Output | None:
        """What DVC records for an artifact path at this revision, or for a file committed
        to git itself, its bytes' digest (recorded_in dvc.IN_GIT)."""
        found = self.dvc.resolve(artifact)
        if found is None and artifact not in self._committed:
            self._committed[artifact] = dvc.committed(
                artifact, self.source.committed_digest(artifact))
        return found or self._committed.get(artifact)

    def recorded_metrics(self, output: Output) -> RecordedMetrics | None:
        """The metrics DVC records for output at this revision: its stage's metrics files
        (None when it records none: see dvcmetrics)."""
        from reconciler.dvc import metrics as dvcmetrics

        if output.path not in self._metrics:
            self._metrics[output.path] = dvcmetrics.recorded_metrics(self.source, output.lineage)
        return self._metrics[output.path]

    def recorded_metrics_at(self, commit: str, output: Output) -> RecordedMetrics | None:
        """The metrics DVC recorded for output at commit (what output_at found there)."""
        from reconciler.dvc import metrics as dvcmetrics
        from reconciler.source import GitRevision

        return dvcmetrics.recorded_metrics(GitRevision(self.source.root, commit),
                                           output.lineage)

    def output_at(self, rev: str, artifact: str) -> tuple[str, Output | None]:
        """(the commit rev names, what DVC recorded for artifact there); ReconcilerError
        when rev names no commit."""
        from reconciler.dvc import history as dvchistory

        return dvchistory.at_revision(self.source.root, rev, artifact)

    def recorded_digests(self, artifact: str, recorded_in: str) -> set[str]:
        """Every digest DVC recorded for artifact in the history that leads here (in
        artifact.dvc, in recorded_in, or in the top-level dvc.lock)."""
        from reconciler.dvc import history as dvchistory
        from reconciler.git.plumbing import has_head

        if self.rev is None and not has_head(self.source.root):
            return set()
        if recorded_in == dvc.IN_GIT:
            return dvchistory.committed_over_history(self.source.root, self.rev or "HEAD",
                                                     artifact)
        return set(dvchistory.over_history(self.source.root, self.rev or "HEAD", artifact,
                                           dvchistory.recorders(artifact, recorded_in)))

    def on_registry(self) -> bool:
        """Whether this catalog's revision is on the registry branch's first-parent history
        (what it serves then has served there); True when no registry branch is known."""
        if self._on_registry is None:
            from reconciler.git.history import GitHistory

            self._on_registry = (self.served_known is not None  # a replayed commit's parent
                                 or self.registry_rev is None or self.rev is None
                                 or GitHistory(self.source.root).on_first_parent(
                                     self.rev, self.registry_rev))
        return self._on_registry

    def served_earlier(self, model: str, environments: tuple[str, ...], version: str) -> bool:
        """Whether one of environments served version of model at some commit of the
        registry branch's first-parent history (this catalog's revision's, when none is
        known)."""
        from reconciler import servinghistory

        if self.served_known is not None:  # git only for what lies before the replay's walk
            known, history = self.served_known, self.registry_rev
        else:
            known, history = set(), self.registry_rev or self.rev
        return servinghistory.served(self.source.root, known, history, model, environments,
                                     version)

    def versioned(self) -> list[Entry[spec.Model] | Entry[spec.Dataset]]:
        """Every manifest that has versions pinned to artifacts: models, then datasets."""
        return [*self.models.values(), *self.datasets.values()]


def model_named(catalog: Catalog, name: str, where: str = "") -> Entry[spec.Model]:
    """The model called name, or the one error a command gives for a name no manifest holds
    (where: the revision it was looked for at, when that is not the work tree)."""
    entry = catalog.models.get(name)
    if entry is None:
        raise ReconcilerError(f"no model '{printable(name)}'{where} (known: "
                              f"{some_of({*catalog.models, *catalog.scanned_models})})")
    return entry


def path_of(catalog: Catalog, model: str) -> str | None:
    """The file that defines model, loaded in full or only scanned (None: no file does)."""
    entry = catalog.models.get(model)
    return entry.path if entry is not None else catalog.scanned_models.get(model)


def versions(entry: Entry[spec.Model] | Entry[spec.Dataset]) -> Sequence[spec.ArtifactVersion]:
    """The versions of a model or dataset: each pins an artifact to its digest."""
    return entry.manifest.spec.versions


def build(source: Source, only: list[str] | None = None, *, rest: bool = True,
          known: Catalog | None = None,
          loaded: dict[tuple[str, bytes], list[tuple[Document, spec.Manifest]]] | None = None
          ) -> Catalog:
    """Load the catalog of source; with only, check just those files in full (and, unless
    rest is False, load of the other files what checking them needs). Files whose bytes known
    (a catalog of another revision) loaded cleanly are taken from it, not parsed again; loaded
    is such a cache kept by the caller (and filled here)."""
    catalog = Catalog(source)
    if known is not None:
        catalog.loaded_files = known.loaded_files
    elif loaded is not None:
        catalog.loaded_files = loaded
    all_paths = source.manifest_paths()
    catalog.checked = set(all_paths if only is None else only)
    if only is None:
        for path in all_paths:
            _load_file(catalog, path)
    else:
        for path in only:
            _load_passed(catalog, path)
        if rest:
            _load_the_rest(catalog, all_paths)
    _fold_serving(catalog)
    return catalog


def build_base(base: GitRevision | FilesAt, current: Catalog,
               changed: Iterable[str] | None) -> Catalog:
    """The catalog at base that current is checked against as a change of changed (None:
    every manifest). A change checked file by file is read at base as far as current was read
    in full, and the changed files: a checked model's stages come from the Environments'
    files, and a checked Environment's models are compared with what they were; without them
    at base, every stage they serve would look newly arrived and be judged by the gates again
    (and apply would record what the gates found). Fetched in one round trip; a file with the
    same bytes at both is parsed once."""
    at_base = None if changed is None else sorted(
        path for path in current.read_in_full.union(changed)
        if is_manifest_path(path) and base.exists(path))
    base.prefetch(at_base)
    return build(base, at_base, rest=False, known=current)


def _fold_serving(catalog: Catalog) -> None:
    """Give each model the stages its Environments' files say it serves (see serving); the
    file of a checked model is checked with the Environment files that serve it, since a
    change of its versions can break what they say."""
    served = serving.served_by({name: e.manifest for name, e in catalog.environments.items()})
    for model_name, stages in served.items():
        entry = catalog.models.get(model_name)
        if entry is None:
            continue
        docs = {env_name: catalog.environments[env_name].doc for env_name in stages}
        catalog.models[model_name] = Entry(serving.with_stages(entry.manifest, stages),
                                           entry.doc, docs)
        if entry.path in catalog.checked:
            catalog.checked.update(doc.path for doc in docs.values())


def _load_passed(catalog: Catalog, path: str) -> None:
    """A file pre-commit passed: loaded in full, or the reason it cannot be."""
    if not is_manifest_path(path):
        catalog.diagnostics.append(Diagnostic(
            path, 1, 1, "FIL004", "not a manifest of this repository",
            "manifests are .yaml/.yml files under manifests/"))
    elif not catalog.source.exists(path):
        catalog.diagnostics.append(Diagnostic(path, 1, 1, "FIL004", "no such file"))
    else:
        _load_file(catalog, path)


def _load_the_rest(catalog: Catalog, all_paths: list[str]) -> None:
    """The files not passed, as far as checking the passed ones needs them: every Dataset and
    Environment; models only scanned for their names (NAM002), unless a passed Dataset or
    Environment changed, which can break references from any model."""
    shared = [e.path for e in catalog.datasets.values()] + [
        e.path for e in catalog.environments.values()]
    shared_changed = any(path in catalog.checked for path in shared)
    model_names = catalog.scanned_models
    for path in all_paths:
        if path in catalog.checked:
            continue
        try:
            raw: bytes | None = catalog.source.read(path)
        except FileProblem:
            raw = None  # _load_file reads it again and records why
        kinds = _scan(raw) if raw is not None else None
        only_models = kinds is not None and all(kind == "Model" for kind, _ in kinds)
        if only_models and not shared_changed:
            model_names.update((name, path) for _, name in kinds or [])
        else:
            _load_file(catalog, path, raw)
            if shared_changed:
                catalog.dependents.add(path)
    for name, entry in catalog.models.items():
        if name in model_names:
            catalog.diagnostics.append(entry.at(
                ("metadata", "name"), "NAM002",
                f"Model '{name}' is also defined in {model_names[name]}"))


def _load_file(catalog: Catalog, path: str, raw: bytes | None = None) -> None:
    catalog.read_in_full.add(path)
    if raw is None:
        try:
            raw = catalog.source.read(path)
        except FileProblem as problem:
            catalog.diagnostics.append(Diagnostic(path, 1, 1, problem.code, problem.message,
                                                  problem.hint))
            return
    reused = catalog.loaded_files.get((path, raw))
    if reused is not None:
        for doc, manifest in reused:
            _register(catalog, doc, manifest)
        catalog.parsed_files[(path, raw)] = [manifest for _, manifest in reused]
        return
    loaded = loader.load(path, raw)
    catalog.diagnostics.extend(loaded.diagnostics)
    clean: list[tuple[Document, spec.Manifest]] = []
    for doc in loaded.documents:
        parsed = spec.parse(doc.data)
        if isinstance(parsed, list):
            catalog.diagnostics.extend(_located(doc, error) for error in parsed)
        else:
            clean.append((doc, parsed))
            _register(catalog, doc, parsed)
    if not loaded.diagnostics and len(clean) == len(loaded.documents):
        catalog.parsed_files[(path, raw)] = [manifest for _, manifest in clean]
        catalog.loaded_files[(path, raw)] = clean


def _located(doc: Document, error: spec.SpecError) -> Diagnostic:
    line, col = doc.position(error.loc, key=error.at_key)
    hint = error.hint
    node = doc.node_at(error.loc)
    if error.code == "SPC005" and node is not None:
        hint = f"quote it: \"{node.value}\", so YAML keeps it as written"
    return Diagnostic(doc.path, line, col, error.code, error.message, hint)


def _register(catalog: Catalog, doc: Document, manifest: spec.Manifest) -> None:
    table: dict[str, Entry[spec.Model]] | dict[str, Entry[spec.Dataset]] | dict[
        str, Entry[spec.Environment]]
    if isinstance(manifest, spec.Model):
        table = catalog.models
    elif isinstance(manifest, spec.Dataset):
        table = catalog.datasets
    else:
        table = catalog.environments
    entry: Entry[Any] = Entry(manifest, doc)
    name = manifest.metadata.name
    first = table.get(name)
    if first is not None:
        catalog.diagnostics.append(entry.at(
            ("metadata", "name"), "NAM002",
            f"{manifest.kind} '{name}' is already defined at {first.path}:"
            f"{first.doc.position(('metadata', 'name'))[0]}"))
        if first.path in catalog.checked and entry.path not in catalog.checked:
            # Paths mode loads the files passed first: report on the one being checked too.
            catalog.diagnostics.append(first.at(
                ("metadata", "name"), "NAM002",
                f"{manifest.kind} '{name}' is also defined in {entry.path}"))
        return
    table[name] = entry


_KIND_LINE = re.compile(rb"^kind:[ \t]*['\"]?([A-Za-z]+)['\"]?[ \t]*(?:#.*)?$", re.M)
_NAME_BLOCK = re.compile(
    rb"^metadata:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*[ \t]+name:[ \t]*['\"]?([a-z0-9.-]+)['\"]?"
    rb"[ \t]*(?:#.*)?$", re.M)
_NAME_FLOW = re.compile(rb"^metadata:[ \t]*\{[ \t]*name:[ \t]*['\"]?([a-z0-9.-]+)['\"]?[ \t]*[,}]",
                        re.M)


# apply checks each replayed commit as validate would, scanning every other manifest at each:
# each is scanned once while unchanged (bench/backfill.py).
@functools.lru_cache(maxsize=8192)
def _scan(raw: bytes) -> tuple[tuple[str, str], ...] | None:
    """(kind, name) of each document by a line scan; None when the scan cannot be sure."""
    kinds = _KIND_LINE.findall(raw)
    names = sorted([*_NAME_BLOCK.finditer(raw), *_NAME_FLOW.finditer(raw)],
                   key=lambda m: m.start())
    documents = raw.count(b"\n---") + 1
    if not kinds or len(kinds) != len(names) or len(kinds) != documents:
        return None
    return tuple((k.decode(), n.group(1).decode()) for k, n in zip(kinds, names, strict=True))


@dataclass(frozen=True)
class Snapshot:
    """The desired state at one commit as plain data: what `diff` compares. No positions."""

    models: dict[str, spec.Model]
    datasets: dict[str, spec.Dataset]
    environments: dict[str, spec.Environment]
    outputs: dict[str, Output]


EMPTY = Snapshot({}, {}, {}, {})


def _add_upstream(catalog: Catalog, output: Output, outputs: dict[str, Output]) -> None:
    """The outputs of the stages before output's, so diff can follow lineage through them
    (read only when there is a stage: a repository of `dvc add`ed files reads nothing more)."""
    pending = [output]
    while pending:
        current = pending.pop()
        for dep in current.lineage.deps if current.lineage is not None else ():
            producer = lineage.producer_of(
                dep.path, lambda path: outputs.get(path) or catalog.dvc.resolve(path))
            if producer is not None and producer.path not in outputs:
                outputs[producer.path] = producer
                pending.append(producer)


def snapshot(catalog: Catalog) -> Snapshot:
    """The catalog's desired state as plain data, what diff compares (as replay makes it)."""
    outputs: dict[str, Output] = {}
    for entry in catalog.versioned():
        for version in versions(entry):
            if version.artifact in outputs:  # its stages are followed already (lineage fan-out)
                continue
            output = catalog.output(version.artifact)
            if output is not None:
                outputs[version.artifact] = output
                _add_upstream(catalog, output, outputs)
    return Snapshot({name: e.manifest for name, e in catalog.models.items()},
                    {name: e.manifest for name, e in catalog.datasets.items()},
                    {name: e.manifest for name, e in catalog.environments.items()}, outputs)

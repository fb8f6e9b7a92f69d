"""Checks over a catalog (and, with a base revision, over the change from it): diagnostics only.

Each check is a plain function from catalogs to diagnostics; `check` runs them all.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reconciler import policy, spec
from reconciler.catalog import Catalog, Entry, versions
from reconciler.diagnostics import Diagnostic, ReconcilerError, some_of
from reconciler.dvc.records import Output
from reconciler.limits import is_dns_label
from reconciler.paths import escapes

if TYPE_CHECKING:
    from reconciler.dvc.metrics import RecordedMetrics

_SECRET_KEY = re.compile(r"(?i)(passw(or)?d|secret|token|api[_-]?key|access[_-]?key|"
                         r"private[_-]?key|credential)")
_SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{36}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[0-9a-zA-Z]{24}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_REFERENCE_VALUE = re.compile(r"\$\{.*\}|vault:.*|secretRef:.*")

Versioned = Entry[spec.Model] | Entry[spec.Dataset]
# What a change to a Dataset or Environment can break in models defined elsewhere.
REFERENCE_CODES = frozenset({"REF001", "REF002", "REF004", "LAY001", "LAY003"})


def check(catalog: Catalog, base: Catalog | None = None) -> list[Diagnostic]:
    """Every diagnostic for catalog; with base, also immutability and promotion policy."""
    found = [*_names(catalog), *_versions(catalog), *_references(catalog), *_stages(catalog),
             *_layout(catalog), *_targets(catalog), *_requirements(catalog), *_secrets(catalog),
             *_artifacts(catalog, base)]
    if base is not None:
        found += [*_immutability(catalog, base), *_promotions(catalog, base),
                  *_deprecated_arrivals(catalog, base)]
    return found


def check_change(current: Catalog, base: Catalog | None) -> list[Diagnostic]:
    """What validate reports for the files current checks, as a change from base: loading,
    every rule, and what DVC's records say (the references of other files only where a
    checked Dataset or Environment may break them)."""
    found = current.diagnostics + check(current, base)
    found = [d for d in found if d.path in current.checked
             or (d.path in current.dependents and d.code in REFERENCE_CODES)]
    return found + current.dvc.diagnostics


def _names(catalog: Catalog) -> Iterator[Diagnostic]:
    entries: list[Entry[Any]] = [*catalog.versioned(), *catalog.environments.values()]
    for entry in entries:
        name = entry.name
        if not is_dns_label(name):
            yield entry.at(("metadata", "name"), "NAM001",
                           f"name '{name}' is not a DNS-1123 label",
                           "lower-case letters, digits and '-', starting and ending with a "
                           "letter or digit, at most 63 characters")


def _versions(catalog: Catalog) -> Iterator[Diagnostic]:
    for entry in catalog.versioned():
        seen: dict[str, int] = {}
        digests: dict[str, str] = {}
        for index, version in enumerate(versions(entry)):
            if version.version in seen:
                yield entry.at(("spec", "versions", index, "version"), "VER001",
                               f"version '{version.version}' is listed twice",
                               f"first at spec.versions[{seen[version.version]}]")
            seen.setdefault(version.version, index)
            if version.digest is not None and version.digest in digests:
                yield entry.at(("spec", "versions", index, "digest"), "VER002",
                               f"version '{version.version}' has the same bytes as "
                               f"'{digests[version.digest]}' ({version.digest})",
                               "a retrain that produced identical bytes: register it once, or "
                               "check that the right artifact was pinned")
            digests.setdefault(version.digest or "", version.version)


def _references(catalog: Catalog) -> Iterator[Diagnostic]:
    for entry in catalog.models.values():
        versions = {v.version for v in entry.manifest.spec.versions}
        for index, version in enumerate(entry.manifest.spec.versions):
            here = ("spec", "versions", index)
            yield from _trained_on(catalog, entry, here, version)
            parent = version.parent
            if parent is not None and (parent not in versions or parent == version.version):
                yield entry.at((*here, "parent"), "REF003",
                               f"parent '{parent}' is not another version of this model")
        for env_name in entry.manifest.spec.stages:
            if env_name not in catalog.environments:
                yield entry.at(("spec", "stages", env_name), "REF004",
                               f"unknown environment '{env_name}'",
                               _known("environments", catalog.environments), key=True)
    for env in catalog.environments.values():
        promotion = env.manifest.spec.promotion
        if promotion and promotion.from_ and promotion.from_ not in catalog.environments:
            yield env.at(("spec", "promotion", "from"), "REF004",
                         f"unknown environment '{promotion.from_}'",
                         _known("environments", catalog.environments))


def _trained_on(catalog: Catalog, entry: Entry[spec.Model], here: tuple[str | int, ...],
                version: spec.ModelVersion) -> Iterator[Diagnostic]:
    for ref_index, ref in enumerate(version.trained_on):
        dataset = catalog.datasets.get(ref.dataset)
        if dataset is None:
            yield entry.at((*here, "trainedOn", ref_index, "dataset"), "REF001",
                           f"unknown dataset '{ref.dataset}'",
                           _known("datasets", catalog.datasets))
        elif ref.version not in {v.version for v in dataset.manifest.spec.versions}:
            yield entry.at((*here, "trainedOn", ref_index, "version"), "REF002",
                           f"dataset '{ref.dataset}' has no version '{ref.version}'",
                           _known("versions", [v.version for v in dataset.manifest.spec.versions]))


def _stages(catalog: Catalog) -> Iterator[Diagnostic]:
    for entry in catalog.models.values():
        versions = {v.version for v in entry.manifest.spec.versions}
        for env_name, stage in entry.manifest.spec.stages.items():
            here = ("spec", "stages", env_name)
            if stage.version not in versions:
                yield entry.at((*here, "version"), "REF005",
                               f"stage '{env_name}' serves unknown version '{stage.version}'",
                               _known("versions", sorted(versions)))
            if stage.canary is not None:
                if stage.canary.version not in versions:
                    yield entry.at((*here, "canary", "version"), "REF006",
                                   f"canary serves unknown version '{stage.canary.version}'",
                                   _known("versions", sorted(versions)))
                if not 0 <= stage.canary.traffic <= 100:
                    yield entry.at((*here, "canary", "traffic"), "STG001",
                                   f"canary traffic {stage.canary.traffic} is not a percentage",
                                   "use 0 to 100")
                env = catalog.environments.get(env_name)
                if (env is not None and env.manifest.spec.target == "kserve"
                        and env.manifest.spec.deployment_mode == "RawDeployment"):
                    yield entry.at((*here, "canary"), "STG003",
                                   f"environment '{env_name}' runs KServe in RawDeployment "
                                   "mode, where a canary splits no traffic",
                                   "KServe honours canaryTrafficPercent only in Serverless "
                                   "mode: set deploymentMode: Serverless on the Environment, "
                                   "or remove the canary")
            if stage.replicas is not None and stage.replicas.min > stage.replicas.max:
                yield entry.at((*here, "replicas"), "STG002",
                               f"replicas min {stage.replicas.min} > max {stage.replicas.max}")


def _layout(catalog: Catalog) -> Iterator[Diagnostic]:
    """What an environment serves is said in its own file (`serves`), once. A model may still
    say it in its own file (the earlier layout, which history holds) only for environments
    without approvers: there it would escape their review."""
    for serving_env in catalog.environments.values():
        for model_name in serving_env.manifest.spec.serves:
            if model_name not in catalog.models and model_name not in catalog.scanned_models:
                yield serving_env.at(("spec", "serves", model_name), "REF008",
                                     f"serves unknown model '{model_name}'",
                                     _known("models", [*catalog.models, *catalog.scanned_models]),
                                     key=True)
    for entry in catalog.models.values():
        own = Entry(entry.manifest, entry.doc)  # located in the model's file, not redirected
        for env_name in entry.manifest.spec.stages:
            if entry.doc.node_at(("spec", "stages", env_name)) is None:
                continue  # given by the Environment's file
            env = catalog.environments.get(env_name)
            where = env.path if env is not None else "its Environment's file"
            move = (f"say it in spec.serves of {where} (`reconciler migrate` moves every "
                    "model's stages there)")
            if env_name in entry.served_from:
                yield own.at(("spec", "stages", env_name), "LAY003",
                             f"what '{env_name}' serves of this model is said twice: here and "
                             f"in {where}", "keep the Environment's and remove this one",
                             key=True)
            elif env is not None and env.manifest.spec.approvers:
                yield own.at(("spec", "stages", env_name), "LAY001",
                             f"what '{env_name}' serves is said in the Model's file, which its "
                             f"approvers ({', '.join(env.manifest.spec.approvers)}) do not own: "
                             "the forge would not ask them", move, key=True)


def _targets(catalog: Catalog) -> Iterator[Diagnostic]:
    """An environment's target names a template: shipped, or the repository's own (else
    render fails, and only after apply has written the database)."""
    for env in catalog.environments.values():
        target = env.manifest.spec.target
        if target is not None and env.manifest.spec.namespace is None:
            yield env.at(("spec", "target"), "ENV001",
                         f"environment '{env.name}' deploys with '{target}' but names no "
                         "namespace", "add spec.namespace, or remove spec.target to make it "
                         "a stage that deploys nothing")
        if target is None or target in spec.TARGETS or catalog.source.exists(
                f"templates/{target}/{spec.TEMPLATE}"):
            continue
        close = difflib.get_close_matches(target, spec.TARGETS, n=1)
        yield env.at(("spec", "target"), "REF007", f"no template for target '{target}'",
                     (f"did you mean '{close[0]}'? " if close else "")
                     + f"use one of {', '.join(spec.TARGETS)} or add "
                       f"templates/{target}/{spec.TEMPLATE}")


def _requirements(catalog: Catalog) -> Iterator[Diagnostic]:
    for env in catalog.environments.values():
        promotion = env.manifest.spec.promotion
        for metric, expression in (promotion.require_metrics if promotion else {}).items():
            if policy.requirement(metric, expression) is None:
                yield env.at(("spec", "promotion", "requireMetrics", metric), "POL003",
                             f"requirement '{expression}' for {metric} is not understood",
                             "write an operator and a number, e.g. \">= 0.9\"")


def _secrets(catalog: Catalog) -> Iterator[Diagnostic]:
    for entry in catalog.models.values():
        for index, version in enumerate(entry.manifest.spec.versions):
            yield from _secrets_in(entry, ("spec", "versions", index, "params"), version.params)
        for env_name, stage in entry.manifest.spec.stages.items():
            yield from _secrets_in(entry, ("spec", "stages", env_name, "env"), stage.env)
    for env in catalog.environments.values():
        yield from _secrets_in(env, ("spec", "values"), env.manifest.spec.values)


def _secrets_in(entry: Entry[Any], loc: tuple[str | int, ...], value: Any,
                key: str = "") -> Iterator[Diagnostic]:
    if isinstance(value, dict):
        for child_key, child in value.items():
            yield from _secrets_in(entry, (*loc, child_key), child, child_key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _secrets_in(entry, (*loc, index), child, key)
    elif (isinstance(value, str) and value and not _REFERENCE_VALUE.fullmatch(value)
          and (_SECRET_VALUE.search(value) or (key and _SECRET_KEY.search(key)))):
        yield entry.at(loc, "SEC001", f"'{loc[-1]}' looks like a secret in plain text",
                       "manifests are public to everyone who can read the repository; "
                       "reference a Kubernetes Secret or ${ENV_VAR} instead")


def _artifacts(catalog: Catalog, base: Catalog | None) -> Iterator[Diagnostic]:
    """What DVC records for each checked manifest's versions. Only checked files: a model
    loaded because a checked Environment serves it keeps only reference findings
    (check_change), and its artifacts cost git and file reads for nothing."""
    for entry in catalog.versioned():
        if entry.path not in catalog.checked:
            continue
        listed = versions(entry)
        by_path: dict[str, list[int]] = {}
        for index, version in enumerate(listed):
            if escapes(version.artifact) or not version.artifact:
                yield entry.at(("spec", "versions", index, "artifact"), "ART001",
                               f"artifact '{version.artifact}' is not a path inside the "
                               "repository", "write it relative to the repository root, "
                               "without '..'")
            else:
                by_path.setdefault(version.artifact, []).append(index)
        old = _version_keys(base, entry) if base is not None else None
        settled = _pinned_alike(base, entry) if base is not None else set()
        for path, indices in by_path.items():
            yield from _artifact_pins(catalog, entry, path, indices, old, settled)


def _metrics_as_recorded(entry: Versioned, index: int, output: Output,
                         recorded: RecordedMetrics | None, at: str = "") -> Iterator[Diagnostic]:
    """A model version being added says the metrics DVC records for its bytes (the metrics
    files of the stage that produced them, at this revision, or at the revision a `rev:`
    names: at): a gate judges numbers a pipeline wrote, not numbers typed by hand. Metrics
    DVC does not record stay as typed."""
    version = versions(entry)[index]
    if not recorded or not isinstance(version, spec.ModelVersion):
        return
    wrong = [(key, version.metrics.get(key), value) for key, value in sorted(recorded.items())
             if key not in version.metrics
             or not math.isclose(version.metrics[key], value, rel_tol=1e-9, abs_tol=1e-12)]
    if not wrong:
        return
    key, said, value = wrong[0]
    files = ", ".join(recorded.files)
    shown = "says nothing" if said is None else f"says {said:g}"
    more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
    loc = ("spec", "versions", index, "metrics", *((key,) if said is not None else ()))
    yield entry.at(loc, "MET001",
                   f"version '{version.version}' {shown} for {key}, but DVC records {value:g} "
                   f"({files}, stage {output.lineage.stage if output.lineage else '?'}{at})"
                   f"{more}",
                   "metrics come from what the pipeline wrote: remove the version's metrics "
                   "and digest and run `reconciler pin`, which fills them from DVC")


def _artifact_pins(catalog: Catalog, entry: Versioned, path: str, indices: list[int],
                   old: set[str] | None, settled: set[str]) -> Iterator[Diagnostic]:
    listed = versions(entry)
    added = [i for i in indices if old is None or listed[i].version not in old]
    # The newest version of a path is the one DVC's current record must match (under a base:
    # when it is being added; an older training added later is checked against history).
    newest_added = indices[-1] if old is None or indices[-1] in added else None
    output = catalog.output(path)
    if output is None:
        yield entry.at(("spec", "versions", indices[-1], "artifact"), "ART002",
                       f"'{path}' is neither tracked by DVC nor committed to git at this "
                       "revision",
                       f"run `dvc add {path}` (or make it a dvc.yaml stage output) and commit "
                       "the .dvc file / dvc.lock")
        return
    if newest_added is not None and listed[newest_added].digest == output.digest:
        yield from _metrics_as_recorded(entry, newest_added, output,
                                        catalog.recorded_metrics(output))
    for index in indices:
        version, loc = listed[index], ("spec", "versions", index)
        if version.rev is not None:
            if version.version not in settled:
                yield from _pinned_at_rev(catalog, entry, path, index, index in added)
        elif index == newest_added and version.digest is None:
            yield entry.at((*loc, "version"), "ART003",
                           f"version '{version.version}' has no digest; DVC records "
                           f"{output.digest} for {path}",
                           "run `reconciler pin` to write it")
        elif index == newest_added and version.digest != output.digest:
            being_added = old is not None  # under a base: this is the version being added
            yield entry.at((*loc, "digest"), "ART004",
                           f"version '{version.version}' pins {version.digest} but DVC records "
                           f"{output.digest} for {path} (in {output.recorded_in})",
                           "pin what DVC records (remove the digest and run `reconciler pin`), "
                           "or `dvc add` the bytes this version is; an older training is "
                           "named with `rev:`" if being_added else
                           "a version is its bytes: if the file was retrained, add a new version "
                           "instead; otherwise `dvc checkout` the pinned bytes")
        elif version.digest is None:
            yield entry.at((*loc, "version"), "ART003",
                           f"version '{version.version}' has no digest pinned",
                           f"only the newest version of {path} can be pinned from DVC's current "
                           "record; name the commit whose DVC record holds its bytes with "
                           "`rev:` and run `reconciler pin`")
        elif (old is not None and index in added and version.digest != output.digest
              and not _recorded_once(catalog, path, version.digest, output)):
            yield entry.at((*loc, "digest"), "ART009",
                           f"version '{version.version}' pins {version.digest}, which DVC never "
                           f"recorded for {path} in this history",
                           "name the commit whose DVC record holds its bytes with `rev:` (pin "
                           "fills digest and size from it), or pin what DVC records")
        elif (version.size is not None and version.digest == output.digest
              and output.size is not None and version.size != output.size):
            yield entry.at((*loc, "size"), "ART004",
                           f"version '{version.version}' gives size {version.size} but DVC "
                           f"records {output.size} for {path}", "remove size; pin writes it")


def _recorded_once(catalog: Catalog, path: str, digest: str | None, output: Any) -> bool:
    """Whether DVC recorded digest for path at some commit of the history being checked."""
    return digest is not None and digest in catalog.recorded_digests(path, output.recorded_in)


def _pinned_at_rev(catalog: Catalog, entry: Versioned, path: str, index: int,
                   being_added: bool) -> Iterator[Diagnostic]:
    """A version that names the revision whose DVC record holds its bytes: pinned as
    recorded there (ART007), or the revision is unknown (ART008); being added, it says the
    metrics DVC recorded there (MET001)."""
    version, loc = versions(entry)[index], ("spec", "versions", index)
    try:
        commit, output = catalog.output_at(version.rev or "", path)
    except ReconcilerError:
        yield entry.at((*loc, "rev"), "ART008",
                       f"rev '{version.rev}' names no commit of this repository",
                       "a commit sha or a tag that git knows here (fetch tags in CI)")
        return
    if output is None:
        yield entry.at((*loc, "rev"), "ART007",
                       f"DVC records nothing for {path} at rev '{version.rev}' "
                       f"({commit[:12]})", "name the commit whose .dvc file or dvc.lock "
                       "recorded this version's bytes")
    elif version.digest is None:
        yield entry.at((*loc, "version"), "ART003",
                       f"version '{version.version}' has no digest; DVC recorded "
                       f"{output.digest} for {path} at rev '{version.rev}'",
                       "run `reconciler pin` to write it")
    elif version.digest != output.digest or (
            version.size is not None and output.size is not None
            and version.size != output.size):
        yield entry.at((*loc, "digest"), "ART007",
                       f"version '{version.version}' pins {version.digest} (size "
                       f"{version.size}) but DVC recorded {output.digest} (size {output.size}) "
                       f"for {path} at rev '{version.rev}' ({commit[:12]})",
                       "remove digest and size and run `reconciler pin`")
    elif being_added:
        yield from _metrics_as_recorded(entry, index, output,
                                        catalog.recorded_metrics_at(commit, output),
                                        f", at rev '{version.rev}'")


def _at_base(base: Catalog, entry: Versioned) -> Any:
    """The same model or dataset in the base catalog, or None when it is new."""
    table: dict[str, Any] = base.models if isinstance(entry.manifest, spec.Model) else base.datasets
    return table.get(entry.name)


def _pinned_alike(base: Catalog, entry: Versioned) -> set[str]:
    """The versions pinned to a revision exactly as the base pins them (rev, digest, size):
    checked against that revision's DVC record when they landed, and a commit's record never
    changes. Reading it again for each costs git processes per version: an imported GTO
    registry (a rev per version) took seconds on every pre-commit run (bench/gto.py)."""
    old = _at_base(base, entry)
    if old is None:
        return set()
    before = {v.version: (v.rev, v.digest, v.size) for v in versions(old) if v.rev is not None}
    return {v.version for v in versions(entry)
            if v.rev is not None and before.get(v.version) == (v.rev, v.digest, v.size)}


def _version_keys(base: Catalog, entry: Versioned) -> set[str]:
    old = _at_base(base, entry)
    return {v.version for v in versions(old)} if old else set()


def _immutability(catalog: Catalog, base: Catalog) -> Iterator[Diagnostic]:
    for entry in catalog.versioned():
        old = _at_base(base, entry)
        if old is None:
            continue
        old_versions = {v.version: v for v in versions(old)}
        old_digests = {v.version: v.digest for v in versions(old)}
        current = {v.version for v in versions(entry)}
        for index, version in enumerate(versions(entry)):
            landed = old_versions.get(version.version)
            if landed is None or landed is version:  # the same bytes at both: parsed once
                continue
            if landed.digest is not None and version.digest != landed.digest:
                yield entry.at(("spec", "versions", index, "digest"), "IMM001",
                               f"version '{version.version}' was pinned to {landed.digest}; "
                               f"it cannot change to {version.digest}",
                               "versions are immutable once landed: add a new version")
            changed = policy.content_changes(landed, version)
            for field in (k for k in changed if k != "digest"):  # the digest: IMM001 above
                yield entry.at(("spec", "versions", index, field), "IMM003",
                               f"version '{version.version}' landed with {field} "
                               f"{_short(changed[field]['from'])}; it cannot change to "
                               f"{_short(changed[field]['to'])}",
                               "a landed version is its content: add a new version instead")
        if isinstance(entry.manifest, spec.Model):
            served = policy.served_in(old.manifest) | policy.served_in(entry.manifest)
            for removed in sorted(set(old_digests) - current):
                for env_name in sorted(served.get(removed, ())):
                    yield entry.at(("spec", "versions"), "IMM002",
                                   f"version '{removed}' was removed but environment "
                                   f"'{env_name}' serves it",
                                   "move the stage to another version first, and prefer "
                                   "`deprecated: true` to removing a version")


def _short(value: Any) -> str:
    shown = json.dumps(value, sort_keys=True)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _promotions(catalog: Catalog, base: Catalog) -> Iterator[Diagnostic]:
    environments = {name: env.manifest for name, env in catalog.environments.items()}
    for entry in catalog.models.values():
        old = base.models.get(entry.name)
        for found in policy.violations(old.manifest if old else None, entry.manifest,
                                       environments, base_on_registry=base.on_registry()):
            env_name, version = found.environment, found.version
            loc = ("spec", "stages", env_name, *(("canary",) if found.canary else ()),
                   "version")
            if found.rule == "POL001" and found.required_stage is not None:
                if base.served_earlier(entry.name, (found.required_stage, env_name), version):
                    continue  # served there before, or here before (a rollback)
                branch = base.registry_rev or "this branch"
                yield entry.at(loc, "POL001",
                               f"version '{version}' goes to {env_name} but never served in "
                               f"{found.required_stage} on {branch}'s first-parent history",
                               f"environment {env_name} requires promotion from "
                               f"{found.required_stage}: land a change that serves it in "
                               f"{found.required_stage} on {branch} first")
            elif found.requirement is not None:
                wanted = found.requirement
                shown = "is missing" if found.value is None else f"is {found.value}"
                yield entry.at(loc, "POL002",
                               f"{env_name} requires {wanted.metric} {wanted.op} "
                               f"{wanted.threshold:g}; version '{version}' {shown}",
                               "promote a version whose metrics meet the environment's "
                               "requirement")


def _deprecated_arrivals(catalog: Catalog, base: Catalog) -> Iterator[Diagnostic]:
    """A deprecated version arriving in an environment: promoted or made a canary, an error;
    rolled back to, a warning (the way back may be the only one left)."""
    for entry in catalog.models.values():
        old = base.models.get(entry.name)
        before = old.manifest.spec.stages if old else {}
        versions = entry.manifest.spec.versions
        deprecated = {v.version for v in versions if v.deprecated}
        for env_name, stage in sorted(entry.manifest.spec.stages.items()):
            previous = before.get(env_name)
            if stage.version in deprecated and (previous is None
                                                or previous.version != stage.version):
                # A rollback returns to a version this environment served before, on the
                # registry branch (whatever order the versions are listed in).
                rollback = previous is not None and base.served_earlier(
                    entry.name, (env_name,), stage.version)
                yield entry.at(("spec", "stages", env_name, "version"),
                               "POL005" if rollback else "POL004",
                               f"version '{stage.version}' is deprecated and goes to "
                               f"{env_name}" + (" (a rollback)" if rollback else ""),
                               "promote a version that is not deprecated" if not rollback
                               else "roll back to a version that is not deprecated if one "
                               "will do")
            canary = stage.canary.version if stage.canary else None
            was = previous.canary.version if previous and previous.canary else None
            if canary in deprecated and canary != was:
                yield entry.at(("spec", "stages", env_name, "canary", "version"), "POL004",
                               f"version '{canary}' is deprecated and is made a canary in "
                               f"{env_name}", "canary a version that is not deprecated")


def _known(what: str, names: Any) -> str:
    return f"known {what}: {some_of(names)}" if names else f"there are no {what}"

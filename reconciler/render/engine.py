"""catalog -> deployment configs: sandboxed Jinja2, quoted values, validated before written.

For each environment and each model it serves, `templates/<target>/model.yaml.j2` renders the
documents of `deploy/<env>/<model>.yaml`. Templates come from the repository's own `templates/`
first, then the ones shipped with reconciler. Every `{{ expression }}` passes through
`yamlquote.quote` (Jinja's finalize), so no manifest value can add structure to the output.
Every document is parsed back and validated against its schema before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import loader, spec
from reconciler.catalog import Catalog, Entry
from reconciler.diagnostics import Diagnostic, printable
from reconciler.dvc.records import IN_GIT
from reconciler.dvc.remotes import ConfigError, Remote, remotes, storage_uri
from reconciler.render.quote import quote
from reconciler.source import FileProblem, Source

KUBERNETES_VERSION = "1.30"
_SCHEMAS = {("serving.kserve.io/v1beta1", "InferenceService"):
            "kserve-inferenceservice-v1beta1.schema.json",
            ("mlops.seldon.io/v1alpha1", "Model"): "seldon-model-v1alpha1.schema.json",
            ("mlops.seldon.io/v1alpha1", "Experiment"): "seldon-experiment-v1alpha1.schema.json"}


@dataclass(frozen=True)
class Rendered:
    """One output file: where it goes (relative to the output folder) and its bytes."""

    environment: str
    model: str
    path: str
    text: str

    @property
    def digest(self) -> str:
        """sha256 of the file, as recorded in the index and the database."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def builtin_templates() -> Path:
    """The templates shipped with reconciler (in the package when installed, else the repo's)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("reconciler's templates are missing from this installation")


def _environment(source: Source) -> Any:
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined

    from reconciler.render.sandbox import BudgetedEnvironment

    loaders = [_repository_templates(source), FileSystemLoader(str(builtin_templates()))]
    return BudgetedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                                finalize=quote, autoescape=False, trim_blocks=True,
                                lstrip_blocks=True, keep_trailing_newline=True)


def _repository_templates(source: Source) -> Any:
    """A loader for the repository's own templates/, read from the revision being rendered
    (the work tree, or git objects for --rev and apply), so one revision renders one output.
    A pull request controls it: a template (or an include) is only ever a regular file, never
    read through a symlink or from a FIFO; such a file is an error, not a fall-back to the
    shipped template."""
    from jinja2 import BaseLoader, TemplateError, TemplateNotFound
    from jinja2.loaders import split_template_path

    class RepositoryTemplates(BaseLoader):
        def get_source(self, environment: Any, template: str) -> Any:
            parts = split_template_path(template)  # refuses '..', as Jinja does
            path = "/".join(["templates", *parts])
            for depth in range(len(parts)):  # a folder that is a file (a link) in git
                if source.exists("/".join(["templates", *parts[:depth]])):
                    raise TemplateError(f"{path}: a symlink in templates/ is never followed")
            if not source.exists(path):
                raise TemplateNotFound(template)
            try:
                raw = source.read(path)
            except FileProblem as problem:
                raise TemplateError(f"{path}: {problem.message}") from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TemplateError(f"{path} is not UTF-8 text") from None
            return text, path, lambda: True

    return RepositoryTemplates()


def render_catalog(catalog: Catalog, only_env: str | None = None,
                   only_models: set[str] | None = None, *, validate: bool = True
                   ) -> tuple[list[Rendered], list[Diagnostic]]:
    """Every output file of the catalog (or of one environment, or of some models), or the
    reasons it cannot be; validate=False skips checking them against their schemas."""
    from reconciler.render.sandbox import OverBudget  # Jinja2 is loaded only to render

    jinja = _environment(catalog.source)
    outputs: list[Rendered] = []
    problems: list[Diagnostic] = []
    try:
        remote_table, default_remote = _remotes(catalog)
    except ConfigError as error:
        return [], [Diagnostic(".dvc/config", error.line, 1, "ART005",
                               f"unreadable DVC config: {error.message}",
                               "fix it with `dvc remote` / `dvc config`")]
    broken: set[str | None] = set()  # targets whose template failed: one message each
    for env, entry, stage in _served(catalog, only_env, only_models):
        remote = remote_table.get(env.manifest.spec.remote or default_remote or "")
        context, missing = _context(catalog, env, entry, stage, remote)
        if missing:
            problems.append(missing)
            continue
        if env.manifest.spec.target in broken:
            continue
        try:
            result = _render_one(jinja, env, entry, context, validate)
        except OverBudget as error:
            # Nothing more is rendered: every other template could take as long again.
            problems.append(_over_budget(env, entry, error))
            break
        if isinstance(result, Diagnostic):
            problems.append(result)
            if result.code == "RND001":
                broken.add(env.manifest.spec.target)
        else:
            outputs.append(result)
    return outputs, problems


def _over_budget(env: Entry[spec.Environment], entry: Entry[spec.Model],
                 error: Exception) -> Diagnostic:
    path, line = _template_frame(error, f"{env.manifest.spec.target}/{spec.TEMPLATE}")
    return Diagnostic(path, line, 1, "RND001",
                      f"template stopped while rendering {entry.name} for {env.name}, and "
                      f"nothing after it was rendered: {error}",
                      "a template renders one deployment config: a few KB, in milliseconds")


def _served(catalog: Catalog, only_env: str | None, only_models: set[str] | None
            ) -> Iterator[tuple[Entry[spec.Environment], Entry[spec.Model], spec.Stage]]:
    """(environment, model, stage) for each model an environment serves, sorted by both."""
    for env_name in sorted(catalog.environments):
        if only_env is not None and env_name != only_env:
            continue
        if catalog.environments[env_name].manifest.spec.target is None:
            continue  # a stage only: it deploys nothing
        for model_name in sorted(catalog.models):
            entry = catalog.models[model_name]
            stage = entry.manifest.spec.stages.get(env_name)
            if stage is not None and (only_models is None or model_name in only_models):
                yield catalog.environments[env_name], entry, stage


def _remotes(catalog: Catalog) -> tuple[dict[str, Remote], str | None]:
    try:
        text = catalog.source.read(".dvc/config").decode("utf-8")
    except (FileProblem, OSError, UnicodeDecodeError):
        return {}, None  # no config: no remote (RND002 says so where one is needed)
    return remotes(text)


def _context(catalog: Catalog, env: Entry[spec.Environment], entry: Entry[spec.Model],
             stage: spec.Stage, remote: Remote | None) -> tuple[dict[str, Any],
                                                                Diagnostic | None]:
    versions = {v.version: v for v in entry.manifest.spec.versions}
    stage_loc = ("spec", "stages", env.name)
    if remote is None:
        return {}, entry.at(stage_loc, "RND002",
                            f"no DVC remote to serve {entry.name} from in {env.name}",
                            "set spec.remote of the Environment, or `dvc remote default NAME`",
                            key=True)
    serving: list[dict[str, Any]] = []
    for version_name, traffic in [(stage.version, None)] + (
            [(stage.canary.version, stage.canary.traffic)] if stage.canary else []):
        version = versions[version_name]
        recorded = catalog.output(version.artifact)
        if recorded is not None and recorded.recorded_in == IN_GIT:
            return {}, entry.at(stage_loc, "RND002",
                                f"version {version_name} of {entry.name} cannot be served by "
                                f"content address: {version.artifact} is committed to git, so "
                                "no DVC remote holds its bytes",
                                f"`git rm --cached {version.artifact}`, `dvc add` it and "
                                "`dvc push`: the digest stays the same", key=True)
        if version.digest is None or version.digest.endswith(".dir"):
            return {}, entry.at(stage_loc, "RND002",
                                f"version {version_name} of {entry.name} cannot be served by "
                                "content address: "
                                + ("it pins no digest" if version.digest is None else
                                   "directory artifacts are not supported yet"), key=True)
        serving.append({"version": version.version, "digest": version.digest,
                        "artifact": version.artifact,
                        "storageUri": storage_uri(remote, version.digest),
                        "metrics": dict(version.metrics), "traffic": traffic})
    resources = None
    if stage.resources is not None:
        resources = {k: v for k, v in (("cpu", stage.resources.cpu),
                                       ("memory", stage.resources.memory),
                                       ("nvidia.com/gpu", stage.resources.gpu)) if v is not None}
    replicas = stage.replicas or spec.Replicas()
    context = {
        "env": {"name": env.name, "namespace": env.manifest.spec.namespace,
                "target": env.manifest.spec.target,
                "deploymentMode": env.manifest.spec.deployment_mode},
        "values": dict(env.manifest.spec.values),
        "model": {"name": entry.name, "framework": entry.manifest.spec.framework,
                  "owner": entry.manifest.metadata.owner,
                  "description": entry.manifest.metadata.description,
                  "labels": dict(entry.manifest.metadata.labels)},
        "stage": {"version": serving[0], "canary": serving[1] if len(serving) > 1 else None,
                  "replicas": {"min": replicas.min, "max": replicas.max},
                  "resources": resources or None,
                  "env": [{"name": k, "value": v} for k, v in sorted(stage.env.items())]},
        "source": {"manifest": entry.path, "commit": catalog.rev},
    }
    return context, None


def _render_one(jinja: Any, env: Entry[spec.Environment], entry: Entry[spec.Model],
                context: dict[str, Any], validate: bool) -> Rendered | Diagnostic:
    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError

    from reconciler.render import sandbox

    target = env.manifest.spec.target
    name = f"{target}/{spec.TEMPLATE}"
    try:
        body = sandbox.render(jinja.get_template(name), context)
    except TemplateNotFound:
        return env.at(("spec", "target"), "RND001",
                      f"no template for target '{target}' ({name} in the repository's "
                      "templates/ or reconciler's)",
                      f"use one of {', '.join(spec.TARGETS)} or add templates/{name}")
    except TemplateSyntaxError as error:
        return Diagnostic(_template_path(error.filename, name), error.lineno or 1, 1, "RND001",
                          f"template syntax: {error.message}")
    except (TemplateError, TypeError, ValueError, ArithmeticError) as error:
        path, line = _template_frame(error, name)
        return Diagnostic(path, line, 1, "RND001",
                          f"template failed while rendering {entry.name} for {env.name}: "
                          f"{' '.join(str(error).split())}")
    # The file name is the one thing here no schema checked: escaped, it stays inside the
    # comment. The header names no commit: one revision gives one output, byte for byte,
    # whether it is rendered from the work tree or from git (render --check --rev, the digests
    # apply records in renders).
    header = (f"# Rendered by reconciler from {printable(entry.path)} for environment "
              f"{env.name}.\n# Do not edit: change the manifest or templates/{name}, then run "
              "`reconciler render`.\n")
    rendered = Rendered(env.name, entry.name, f"{env.name}/{entry.name}.yaml",
                        header + body.strip("\n") + "\n")
    return (_validated(rendered) if validate else None) or rendered


HEADER_LINES = 2  # the comment every rendered file starts with: where it came from


def body(text: str) -> str:
    """A rendered file without its header (which names the commit it was rendered at)."""
    return text.split("\n", HEADER_LINES)[-1]


def _template_path(filename: str | None, name: str) -> str:
    return filename or f"templates/{name}"


def _template_frame(error: BaseException, name: str) -> tuple[str, int]:
    """The template file and line the error happened at (Jinja rewrites tracebacks so)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith(".j2"):
            return frame.filename, frame.lineno or 1
    return f"templates/{name}", 1


def _validated(rendered: Rendered) -> Diagnostic | None:
    """None when every document parses back strictly and matches its schema."""
    out_path = f"deploy/{rendered.path}"
    loaded = loader.load(out_path, rendered.text.encode("utf-8"))
    if loaded.diagnostics:
        first = loaded.diagnostics[0]
        return first._replace(code="RND003", message=f"rendered output is not plain YAML: "
                                                     f"{first.message}")
    for document in loaded.documents:
        data = document.data
        if not isinstance(data, dict):
            return Diagnostic(out_path, 1, 1, "RND003", "a rendered document is not a mapping")
        problem = _schema_problem(data)
        if problem is not None:
            where, message = problem
            line, col = document.position(where)
            dotted = ".".join(str(step) for step in where) or "(document)"
            return Diagnostic(out_path, line, col, "RND003",
                              f"{data.get('kind')} {dotted}: {message}",
                              "fix the template, or the manifest value it came from")
    return None


def _schema_problem(document: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    key = (str(document.get("apiVersion")), str(document.get("kind")))
    if key in _SCHEMAS:
        from jsonschema.exceptions import best_match

        error = best_match(_validator(_SCHEMAS[key]).iter_errors(document))
        if error is None:
            return None
        return tuple(error.absolute_path), " ".join(error.message.split())[:300]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        inner = error.caused_by
        return tuple(inner.absolute_path), " ".join(inner.message.split())[:300]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError):
        return (), f"no schema to validate {key[1]} ({key[0]}) against"
    return None


@functools.cache
def _validator(filename: str) -> Any:
    import jsonschema

    path = Path(__file__).resolve().parent / "schemas" / filename
    return jsonschema.Draft7Validator(json.loads(path.read_text(encoding="utf-8")))

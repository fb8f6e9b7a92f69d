"""The manifest format v1 as pydantic models: Model, Dataset, Environment. Pure: no I/O.

Field names are camelCase in YAML (Kubernetes convention) and snake_case in Python.
Validation is strict: a number is never silently turned into a string, so an unquoted
`version: 1.10` is an error instead of the version "1.1".
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from reconciler.limits import (
    DNS_LABEL,
    DNS_LABEL_CHARS,
    NAME_CHARS,
    PATH_CHARS,
    TEXT_CHARS,
    VERSION_CHARS,
)

API_VERSION = "reconciler/v1"
KINDS = ("Model", "Dataset", "Environment")
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "pytorch", "tensorflow", "onnx", "triton",
              "huggingface", "mlflow", "pmml", "paddle", "custom")
TARGETS = ("kserve", "seldon", "kubernetes")
TEMPLATE = "model.yaml.j2"  # a target is templates/<target>/model.yaml.j2 (shipped or own)

VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
Version = Annotated[str, Field(min_length=1, max_length=VERSION_CHARS,
                               pattern=rf"^{VERSION_PATTERN.pattern}$")]
Digest = Annotated[str, Field(pattern=r"^(md5|md5-dos2unix):[0-9a-f]{32}(\.dir)?$")]
# A commit or tag name: never an option, a range or a reflog expression (git rev-parse checks it).
GitRev = Annotated[str, Field(max_length=NAME_CHARS, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./+-]*$")]
Quantity = Annotated[str, Field(pattern=r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                                        r"([eE][-+]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")]
Metric = float | int

# (How deep JSON may nest is the loader's MAX_DEPTH: checked once per file, not per value.)
Text = Annotated[str, Field(max_length=TEXT_CHARS)]
ShortText = Annotated[str, Field(max_length=NAME_CHARS)]
DnsLabel = Annotated[str, Field(max_length=DNS_LABEL_CHARS, pattern=rf"^{DNS_LABEL.pattern}$")]




class _Spec(BaseModel):
    # defer_build: validators are built on first use, once per top-level kind with the nested
    # models inlined, instead of once per class at import: pre-commit start-up is most of it.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              alias_generator=to_camel, populate_by_name=True,
                              defer_build=True,
                              allow_inf_nan=False)  # JSON (so every database) has no NaN


class Metadata(_Spec):
    """Kubernetes-style metadata: the name is a DNS-1123 label, unique per kind."""

    name: ShortText
    """DNS-1123 label (lower-case letters, digits, '-'; at most 63): it names the deployed
    resources."""
    owner: ShortText | None = None
    """Who answers for it: a team address or a person."""
    description: Text | None = None
    """One line for people reading the registry."""
    labels: dict[str, str] = {}
    """Key/value tags for grouping and search (kept in the registry, not deployed)."""
    annotations: dict[str, str] = {}
    """Free-form key/value notes (kept in the registry, not deployed)."""


class DatasetRef(_Spec):
    """A dataset version a model version was trained on."""

    dataset: ShortText
    """Name of a registered Dataset."""
    version: Version
    """One of that dataset's versions."""


class ArtifactVersion(_Spec):
    """What models and datasets share: a version is the bytes of an artifact, pinned by digest."""

    version: Version
    """A string, unique within the manifest (quote numbers: \"1.10\")."""
    artifact: Annotated[str, Field(max_length=PATH_CHARS)]
    """Repository-relative path DVC tracks (a .dvc file or a dvc.lock output)."""
    digest: Digest | None = None
    """md5:<32 hex> of the version's bytes as DVC records them; `reconciler pin` writes it."""
    size: int | None = Field(default=None, ge=0, lt=2**63)
    """Bytes, as DVC records them with the digest; `reconciler pin` writes it."""
    rev: GitRev | None = None
    """A git commit or tag whose DVC record holds this version's bytes (for a version older
    than what DVC records now): `pin` reads digest and size there, validate checks them."""
    deprecated: bool = False
    """Marks a version that should no longer be promoted."""
    description: Text | None = None
    """One line about this version."""


class ModelVersion(ArtifactVersion):
    """One version of a model: its bytes (artifact + digest), lineage, metrics and params."""

    trained_on: list[DatasetRef] = []
    """Dataset versions it was trained on (lineage; dvc.lock adds more by itself)."""
    parent: Version | None = None
    """The version it was fine-tuned or retrained from."""
    metrics: dict[str, float] = {}
    """Evaluation numbers, checked by environments' requireMetrics."""
    params: dict[str, JsonValue] = {}
    """Training parameters, recorded for reproducibility."""


# What a version is: once landed, none of these may change (a new version is added instead).
# description and deprecated are about the version, not of it, and may change.
CONTENT_FIELDS = ("artifact", "digest", "trained_on", "parent", "metrics", "params")


def content(version: ArtifactVersion) -> dict[str, Any]:
    """The fields that make a version what it is, as YAML names them (camelCase)."""
    fields = {name for name in CONTENT_FIELDS if name in type(version).model_fields}
    return version.model_dump(mode="json", by_alias=True, include=fields)


class Canary(_Spec):
    """A second version served beside the stage's version, with a share of the traffic."""

    version: Version
    """The canary version (one of the model's versions)."""
    traffic: int = Field(ge=-(2**31), lt=2**31)  # a database INTEGER (STG001: 0-100)
    """Percent of requests it receives, 0-100."""


class Replicas(_Spec):
    """How many serving replicas an environment runs (min <= max)."""

    # Kubernetes takes replica and GPU counts as int32 (the schemas' `format: int32`).
    min: int = Field(default=1, ge=0, lt=2**31)
    """Fewest replicas."""
    max: int = Field(default=1, ge=0, lt=2**31)
    """Most replicas (autoscaling upper bound)."""


class Resources(_Spec):
    """Kubernetes resource requests and limits of each replica."""

    cpu: Quantity | None = None
    """Kubernetes quantity, quoted: \"1\", \"500m\"."""
    memory: Quantity | None = None
    """Kubernetes quantity: 2Gi, 512Mi."""
    gpu: int | None = Field(default=None, ge=0, lt=2**31)  # int32, as replicas
    """Whole GPUs per replica."""


class Stage(_Spec):
    """What one environment serves of a model: a version, an optional canary, sizing."""

    version: Version
    """The version this environment serves."""
    canary: Canary | None = None
    """A second version taking a share of the traffic."""
    replicas: Replicas | None = None
    """Replica counts."""
    resources: Resources | None = None
    """Requests and limits per replica."""
    env: dict[str, str] = {}
    """Environment variables of the serving container."""


class ModelSpec(_Spec):
    """A model: its framework, its versions (oldest first) and what each environment serves."""

    framework: Literal[FRAMEWORKS]  # type: ignore[valid-type]
    """The model format; it picks the serving runtime."""
    versions: list[ModelVersion] = Field(min_length=1)
    """Every version ever registered, oldest first; a landed version never changes."""
    stages: dict[ShortText, Stage] = {}  # keys name environments: stored as VARCHAR(255)
    """Deprecated (LAY001): environment name -> what it serves. Say it in the
    Environment's `serves`, the file its approvers own (`reconciler migrate` moves it)."""


class Model(_Spec):
    """A registered model (kind: Model)."""

    api_version: Literal["reconciler/v1"]
    kind: Literal["Model"]
    metadata: Metadata
    """Name, owner and labels."""
    spec: ModelSpec
    """The model itself: framework, versions and what each environment serves."""


class DatasetVersion(ArtifactVersion):
    """One version of a dataset: its bytes (artifact + digest)."""

    pass


class DatasetSpec(_Spec):
    """A dataset: its versions, oldest first."""

    versions: list[DatasetVersion] = Field(min_length=1)
    """Every version ever registered, oldest first."""


class Dataset(_Spec):
    """A registered dataset (kind: Dataset)."""

    api_version: Literal["reconciler/v1"]
    kind: Literal["Dataset"]
    metadata: Metadata
    """Name, owner and labels."""
    spec: DatasetSpec
    """The dataset itself: its versions."""


class Promotion(_Spec):
    """What a version must satisfy before this environment serves it."""

    from_: str | None = Field(default=None, alias="from")
    """An environment that must have served a version before this one may."""
    require_metrics: dict[str, str] = {}
    """Metric name -> comparison a version must meet, e.g. \">= 0.9\"."""


class EnvironmentSpec(_Spec):
    """Where and how an environment deploys: namespace, template target, DVC remote, values.
    Without a target it is a stage only (batch jobs `get` what it serves; another CD system
    deploys it): its policy and approvers hold, and render and apply render nothing for it."""

    namespace: DnsLabel | None = None
    """Kubernetes namespace the configs deploy to (required with a target)."""
    target: DnsLabel | None = None
    """Template set that renders it: kserve, seldon, kubernetes, or one in templates/; none:
    a stage that deploys nothing."""
    remote: ShortText | None = None
    """DVC remote whose URL storageUri points at (default: DVC's default remote)."""
    values: dict[str, JsonValue] = {}
    """Free values the templates read as `values` (e.g. image for kubernetes)."""
    promotion: Promotion | None = None
    """The policy a version must satisfy before this environment serves it."""
    approvers: list[ShortText] = []
    """Who must approve a change to what it serves: GitHub users or teams (@org/team), or
    emails; `plan` lists them, CODEOWNERS enforces them."""
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        "Serverless", alias="deploymentMode")
    """KServe's deployment mode (the kserve target): canaries split traffic only in
    Serverless."""
    serves: dict[ShortText, Stage] = {}  # keys name models: stored as VARCHAR(255)
    """Model name -> what this environment serves of it: here, so that a change of it needs
    the review of whoever owns this file (CODEOWNERS), as `plan` lists."""


class Environment(_Spec):
    """A deployment environment (kind: Environment)."""

    api_version: Literal["reconciler/v1"]
    kind: Literal["Environment"]
    metadata: Metadata
    """Name, owner and labels."""
    spec: EnvironmentSpec
    """The environment itself: namespace, target, remote, values and promotion policy."""


Manifest = Model | Dataset | Environment
_CLASSES: dict[str, type[BaseModel]] = {"Model": Model, "Dataset": Dataset,
                                        "Environment": Environment}


class SpecError(NamedTuple):
    """A schema problem at a location of the document (loc in YAML field names)."""

    loc: tuple[str | int, ...]
    code: str
    message: str
    hint: str = ""
    at_key: bool = False


def parse(data: Any) -> Manifest | list[SpecError]:
    """Validate one document's plain data into a Model, Dataset or Environment."""
    if not isinstance(data, dict):
        return [SpecError((), "SPC008", "a manifest must be a mapping",
                          "start with apiVersion, kind, metadata and spec")]
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        where = ("apiVersion",) if "apiVersion" in data else ()
        shown = "missing" if api_version is None else f"'{api_version}' unknown"
        return [SpecError(where, "SPC001", f"apiVersion {shown}",
                          f"use apiVersion: {API_VERSION}")]
    kind = data.get("kind")
    cls = _CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        where = ("kind",) if "kind" in data else ()
        shown = "missing" if kind is None else f"'{kind}' unknown"
        return [SpecError(where, "SPC002", f"kind {shown}",
                          _did_you_mean(str(kind), KINDS) or f"one of {', '.join(KINDS)}")]
    try:
        return typing.cast(Manifest, cls.model_validate(data))
    except ValidationError as error:
        return _spec_errors(cls, error)


def _spec_errors(cls: type[BaseModel], error: ValidationError) -> list[SpecError]:
    found: dict[tuple[str | int, ...], SpecError] = {}
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        if len(loc) > 1 and loc[-1] in _JSON_VALUE_TAGS:
            loc = loc[:-1]  # which member of JsonValue's union failed: not a YAML location
        at_key = loc[-1:] == ("[key]",)  # the key itself failed (pydantic's marker)
        if at_key:
            loc = loc[:-1]
        if loc in found:
            continue
        found[loc] = _spec_error(cls, loc, detail)
        if at_key:
            found[loc] = found[loc]._replace(at_key=True)
    return list(found.values())


def _spec_error(cls: type[BaseModel], loc: tuple[str | int, ...],
                detail: Any) -> SpecError:
    kind, value, field = detail["type"], detail.get("input"), _field_name(loc)
    if kind == "extra_forbidden":
        known = _known_fields(cls, loc[:-1])
        hint = _did_you_mean(str(loc[-1]), known) or (
            f"allowed here: {', '.join(known)}" if known else "")
        return SpecError(loc, "SPC003", f"unknown field '{loc[-1]}'", hint, at_key=True)
    if kind == "missing":
        return SpecError(loc[:-1], "SPC004", f"missing required field '{loc[-1]}'",
                         f"add {loc[-1]}: ...", at_key=True)
    if kind == "string_type" and isinstance(value, bool | int | float):
        return SpecError(loc, "SPC005",
                         f"{field} must be a string, not the {_type_word(value)} {value!r}",
                         "quote it, e.g. \"1.10\", so YAML keeps it as written")
    if kind == "literal_error":
        allowed = detail.get("ctx", {}).get("expected", "")
        return SpecError(loc, "SPC006", f"{field} {value!r} is not allowed",
                         _did_you_mean(str(value), _literal_values(cls, loc))
                         or f"expected {allowed}")
    if kind == "string_too_long":
        limit = detail.get("ctx", {}).get("max_length")
        shown = field if len(field) <= 40 else f"{field[:40]}..."
        return SpecError(loc, "SPC007", f"{shown} is {len(value)} characters; the limit is "
                         f"{limit}", "what every supported database stores; shorten it")
    if kind == "finite_number":
        return SpecError(loc, "SPC007", f"{field} must be a finite number, not {value!r}",
                         "JSON, and so the database, has no NaN or infinity")
    if kind == "string_pattern_mismatch":
        return SpecError(loc, "SPC007", f"{field} {value!r} is not valid",
                         _pattern_hint(loc))
    if kind == "value_error":
        return SpecError(loc, "SPC007", f"{field}: {detail['ctx']['error']}")
    return SpecError(loc, "SPC007", f"{field}: {detail['msg']}")


_JSON_VALUE_TAGS = {"float", "int", "str", "bool", "list[...]", "dict[str,...]"}


def _field_name(loc: tuple[str | int, ...]) -> str:
    names = [step for step in loc if isinstance(step, str)]
    return names[-1] if names else "value"


def _type_word(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "number"


def _pattern_hint(loc: tuple[str | int, ...]) -> str:
    field = _field_name(loc)
    if field == "digest":
        return "a digest is md5:<32 hex digits>; `reconciler pin` writes it from DVC"
    if field in ("version", "parent"):
        return "versions are letters, digits and . _ + -, e.g. \"1.2.0\""
    if field in ("cpu", "memory"):
        return "a Kubernetes quantity as a string, e.g. \"500m\", \"2Gi\""
    return ""


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _annotation_at(cls: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type expected at loc (YAML names), following models, lists and dicts."""
    current: Any = cls
    for step in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for name, f in current.model_fields.items()
                          if (f.alias or name) == step), None)
            if field is None:
                return None
            current = field.annotation
        else:
            args = typing.get_args(current)
            if not args:
                return None
            current = args[-1] if typing.get_origin(current) is dict else args[0]
    return _unwrap(current)


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


def _known_fields(cls: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    model = _annotation_at(cls, loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _literal_values(cls: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    return [str(v) for v in typing.get_args(_annotation_at(cls, loc))]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest document, for editors and other validators."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[Model | Dataset | Environment, Field(discriminator="kind")])
    schema = adapter.json_schema(by_alias=True)
    _describe_fields(schema["$defs"])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reconciler manifest (apiVersion reconciler/v1)"
    return schema


def _describe_fields(definitions: dict[str, Any]) -> None:
    """Each field's docstring (the string under it) as its JSON Schema description.

    pydantic's use_attribute_docstrings does the same at import, parsing this module's source
    once per class: a cost on every pre-commit run (bench/validate.py) for text only the schema
    needs. So it is read here, when a schema is asked for.
    """
    import ast
    import inspect
    import sys

    docs: dict[str, dict[str, str]] = {}  # class -> field -> docstring, as written
    for node in ast.parse(inspect.getsource(sys.modules[__name__])).body:
        if isinstance(node, ast.ClassDef):
            for statement, following in zip(node.body, node.body[1:], strict=False):
                if (isinstance(statement, ast.AnnAssign)
                        and isinstance(statement.target, ast.Name)
                        and isinstance(following, ast.Expr)
                        and isinstance(following.value, ast.Constant)
                        and isinstance(following.value.value, str)):
                    docs.setdefault(node.name, {})[statement.target.id] = inspect.cleandoc(
                        following.value.value)
    for name, definition in definitions.items():
        cls = globals().get(name)
        if not isinstance(cls, type) or not issubclass(cls, BaseModel):
            continue
        for field_name, field in cls.model_fields.items():
            prop = definition.get("properties", {}).get(field.alias or field_name)
            doc = next((docs[base.__name__][field_name] for base in cls.__mro__
                        if field_name in docs.get(base.__name__, {})), None)
            if prop is not None and doc is not None:
                prop.setdefault("description", doc)

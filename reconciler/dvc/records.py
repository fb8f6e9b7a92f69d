"""The DVC adapter: what DVC records for a path, read from `.dvc` files and `dvc.lock`.

Reading these small YAML files ourselves keeps `validate` fast and works at any git revision;
`tests/dvc/test_records.py` proves the reading agrees with DVC's own. DVC itself is imported
only to talk to remotes (`--check-remote`, dvc/remotes.py).

Digests are written `<hash name>:<value>` the way DVC names its hashes: `md5` for DVC 3 outputs,
`md5-dos2unix` for outputs DVC 2 recorded (no `hash: md5` field; DVC 2 normalised line endings of
text files before hashing, so the two are different hashes of the same bytes).
"""

from __future__ import annotations

import datetime
import functools
import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic, printable
from reconciler.loader import MAX_DEPTH, MAX_EXPANDED, expands_past, plain_scalar, too_deep
from reconciler.paths import escapes
from reconciler.source import FileProblem, Source

MD5 = "md5"
# Output.recorded_in of an artifact committed to git itself rather than tracked by DVC. Its
# digest is what `dvc add` would record (DVC 3 hashes a file's bytes with md5), so it stays the
# same once the file moves to DVC; until then no DVC remote holds it.
IN_GIT = "(committed to git)"
LEGACY_MD5 = "md5-dos2unix"
MAX_STAGE_NAME = 200  # lineage records the stage a dependency came through


@dataclass(frozen=True)
class Dependency:
    """A dependency of a dvc.lock stage: a path and the digest DVC recorded for it."""

    path: str
    digest: str | None


@dataclass(frozen=True)
class StageLineage:
    """The dvc.lock stage that produced an output: what it read, with which params."""

    lock_path: str
    stage: str
    deps: tuple[Dependency, ...]
    params: dict[str, Any]
    cmd: str | list[str] | None = None


@dataclass(frozen=True)
class ImportSource:
    """Where `dvc import` took an output from: the source repository, the path in it, and
    the revision it is frozen at (`rev_lock`)."""

    url: str
    path: str
    rev_lock: str | None


@dataclass(frozen=True)
class Output:
    """One DVC-tracked output: where DVC records it and the digest of its bytes."""

    path: str
    digest: str
    size: int | None
    nfiles: int | None
    recorded_in: str
    lineage: StageLineage | None = None
    source: ImportSource | None = None  # a `dvc import`: where its bytes came from

    @property
    def hash_name(self) -> str:
        """md5 (DVC 3) or md5-dos2unix (DVC 2)."""
        return self.digest.split(":", 1)[0]

    @property
    def is_dir(self) -> bool:
        """Whether the output is a directory (its digest names a .dir listing)."""
        return self.digest.endswith(".dir")


@dataclass
class DvcIndex:
    """Every output DVC tracks at one revision, loaded lazily from the cheapest place first."""

    source: Source
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _outputs: dict[str, Output] = field(default_factory=dict)
    _read: set[str] = field(default_factory=set)
    _complete: bool = False

    def resolve(self, path: str) -> Output | None:
        """What DVC records for path, or None when DVC does not track it."""
        if path in self._outputs:
            return self._outputs[path]
        conventional = path + ".dvc"  # `dvc add x` writes x.dvc: try it before a full scan
        if conventional not in self._read and self.source.exists(conventional):
            self._load(conventional)
            if path in self._outputs:
                return self._outputs[path]
        if not self._complete:
            for dvc_path in self.source.dvc_paths():
                if dvc_path not in self._read:
                    self._load(dvc_path)
            self._complete = True
        return self._outputs.get(path)

    def _load(self, dvc_path: str) -> None:
        self._read.add(dvc_path)
        try:
            outputs = _parsed(dvc_path, self.source.read(dvc_path))
        except FileProblem as problem:
            self.diagnostics.append(Diagnostic(dvc_path, 1, 1, "ART005", problem.message))
            return
        except DvcFileError as error:
            self.diagnostics.append(Diagnostic(dvc_path, error.line, error.col, "ART005",
                                               f"cannot read DVC file: {error}",
                                               "regenerate it with `dvc add` or `dvc repro`"))
            return
        for output in outputs:
            self._outputs.setdefault(output.path, output)


class DvcFileError(ValueError):
    """A .dvc file or dvc.lock that is not what DVC writes; line and col are 1-based."""

    def __init__(self, message: str, line: int = 1, col: int = 1):
        super().__init__(message)
        self.line, self.col = line, col


# apply checks each replayed commit as validate would, with a new index per commit over files
# that mostly did not change: each is parsed once while unchanged (bench/backfill.py).
@functools.lru_cache(maxsize=4096)
def _parsed(dvc_path: str, raw: bytes) -> tuple[Output, ...]:
    return tuple(parse_dvc_file(dvc_path, raw))


def parse_dvc_file(dvc_path: str, raw: bytes) -> list[Output]:
    """The outputs one .dvc file or dvc.lock records; raises DvcFileError."""
    if posixpath.basename(dvc_path) != "dvc.lock":
        as_written = _as_dvc_writes_it(raw)
        if as_written is not None:
            return _dvcfile_outputs(dvc_path, as_written)
    try:
        deep = too_deep(raw)
        if deep is not None:
            raise DvcFileError(f"nested deeper than {MAX_DEPTH} levels", deep.line + 1,
                               deep.column + 1)
        if expands_past(raw):
            raise DvcFileError(f"its aliases expand to more than {MAX_EXPANDED} values "
                               "(DVC writes none)", 1, 1)
        data = yaml.load(raw, Loader=yaml.CSafeLoader)
    except ValueError as error:  # an integer of over 4,300 digits, which Python will not read
        raise DvcFileError(" ".join(str(error).split())[:120], 1, 1) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DvcFileError(" ".join(str(error).split()), line, col) from None
    if posixpath.basename(dvc_path) == "dvc.lock":
        return _lock_outputs(dvc_path, data)
    return _dvcfile_outputs(dvc_path, data)


# One "key: value" line of an output in the layout `dvc add` writes: a plain word for a key and
# a plain scalar without spaces, quotes, colons or comments for a value.
_OUT_LINE = re.compile(r"(- |  )([A-Za-z_][A-Za-z0-9_]*): ([A-Za-z0-9_./][A-Za-z0-9_./+-]*)")


def _as_dvc_writes_it(raw: bytes) -> dict[str, Any] | None:
    """The data of a .dvc file laid out as DVC writes it ("outs:" then flat mappings of words,
    paths, digests and sizes), read line by line; None for any other layout, which the YAML
    parser reads instead. A .dvc file is read at every commit that changes it, and this is
    much faster than PyYAML's constructor while giving the very same data (bench/backfill.py,
    docs/BENCHMARKS.md)."""
    try:
        lines = raw.decode("ascii").split("\n")
    except UnicodeDecodeError:
        return None
    if len(lines) < 3 or lines[0] != "outs:" or lines[-1] != "":
        return None
    outs: list[dict[str, Any]] = []
    for line in lines[1:-1]:
        match = _OUT_LINE.fullmatch(line)
        if match is None:
            return None
        lead, key, text = match.groups()
        if lead == "- ":
            outs.append({})
        value = plain_scalar(text)
        # A key such as `yes` or `null`, or a value that is a float, date, boolean...
        if not outs or plain_scalar(key) != key or value is None:
            return None
        outs[-1][key] = value
    return {"outs": outs}


def _dvcfile_outputs(dvc_path: str, data: Any) -> list[Output]:
    if not isinstance(data, dict) or not isinstance(data.get("outs", []), list):
        raise DvcFileError("expected a mapping with an 'outs' list")
    source = _import_source(data.get("deps"))
    return [_output(dvc_path, out, None, source) for out in data.get("outs", [])
            if _in_repo(dvc_path, out)]


SOURCE_CHARS = 2048  # a URL or path recorded with lineage (JSON payload, not an index)


def _import_source(deps: Any) -> ImportSource | None:
    """The source of a `dvc import` (.dvc deps with `repo: {url, rev_lock}`), else None."""
    if not isinstance(deps, list) or len(deps) != 1 or not isinstance(deps[0], dict):
        return None
    repo, path = deps[0].get("repo"), deps[0].get("path")
    if not isinstance(repo, dict) or not isinstance(repo.get("url"), str) or not isinstance(
            path, str):
        return None
    rev_lock = repo.get("rev_lock")
    return ImportSource(repo["url"][:SOURCE_CHARS], path[:SOURCE_CHARS],
                        rev_lock[:64] if isinstance(rev_lock, str) else None)


def _lock_outputs(lock_path: str, data: Any) -> list[Output]:
    if not isinstance(data, dict) or "stages" not in data:
        raise DvcFileError("unsupported dvc.lock format (DVC 1 lock files have no 'stages')")
    stages = data["stages"]
    if not isinstance(stages, dict):
        raise DvcFileError("'stages' must be a mapping")
    outputs: list[Output] = []
    for stage_name in stages:  # checked before sorting: names of mixed types do not sort
        _check_stage_name(stage_name)
    for stage_name, stage in sorted(stages.items()):
        if not isinstance(stage, dict):
            raise DvcFileError(f"stage '{stage_name}' must be a mapping")
        params = stage.get("params") or {}
        if not isinstance(params, dict):
            raise DvcFileError(f"stage '{stage_name}': params must be a mapping")
        lineage = StageLineage(
            lock_path=lock_path,
            stage=stage_name,
            deps=tuple(Dependency(_relative(lock_path, dep["path"]), _digest(dep))
                       for dep in _entries(stage, "deps", stage_name)
                       if _in_repo(lock_path, dep)),
            params=_json_value(params, f"stage '{stage_name}': params"),
            cmd=_command(stage.get("cmd")),
        )
        outputs.extend(_output(lock_path, out, lineage)
                       for out in _entries(stage, "outs", stage_name) if _in_repo(lock_path, out))
    return outputs


def _check_stage_name(name: Any) -> None:
    """A stage name is recorded in lineage (a VARCHAR(255) column): text DVC could write."""
    if not isinstance(name, str) or not name.isprintable() or not name:
        raise DvcFileError(f"stage name {printable(repr(name))[:80]} is not text DVC writes")
    if len(name) > MAX_STAGE_NAME:
        raise DvcFileError(f"stage name is {len(name)} characters; the limit is "
                           f"{MAX_STAGE_NAME}")


def _entries(stage: dict[str, Any], key: str, stage_name: str) -> list[Any]:
    """A stage's deps or outs: a list (absent or null: none)."""
    value = stage.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DvcFileError(f"stage '{stage_name}': {key} must be a list")
    return value


def _json_value(value: Any, where: str) -> Any:
    """value as JSON can hold it (what apply stores): a date becomes its ISO text; bytes, NaN,
    infinity and keys that are not text are refused, as a manifest would be."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DvcFileError(f"{where} hold {value!r}, which JSON has no value for")
        return value
    if isinstance(value, datetime.date):  # datetime too: both isoformat
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(item, where) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise DvcFileError(f"{where} have a key that is not text")
        return {key: _json_value(item, where) for key, item in value.items()}
    raise DvcFileError(f"{where} hold a {type(value).__name__} value, which JSON cannot")


def _in_repo(dvc_path: str, entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise DvcFileError("every out and dep needs a 'path'")
    return not escapes(_relative(dvc_path, entry["path"])) and not entry["path"].startswith("/")


def _relative(dvc_path: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(dvc_path), path))


_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")  # what DVC writes: a file's, or a directory's


def _digest(entry: dict[str, Any]) -> str | None:
    value = entry.get("md5")
    if not isinstance(value, str) or not _MD5.fullmatch(value):
        return None
    return f"{MD5 if entry.get('hash') == MD5 else LEGACY_MD5}:{value}"


def _command(cmd: Any) -> str | list[str] | None:
    """A stage's cmd as DVC writes it (one string or a list of them), else None."""
    if isinstance(cmd, str):
        return cmd[:SOURCE_CHARS]
    if isinstance(cmd, list) and all(isinstance(part, str) for part in cmd):
        return [part[:SOURCE_CHARS] for part in cmd[:32]]
    return None


def _output(dvc_path: str, out: dict[str, Any], lineage: StageLineage | None,
            source: ImportSource | None = None) -> Output:
    digest = _digest(out)
    if digest is None:
        raise DvcFileError(f"out '{out['path']}' has no md5 (only md5 outputs are supported)")
    return Output(path=_relative(dvc_path, out["path"]), digest=digest,
                  size=_count(out, "size", 2**63), nfiles=_count(out, "nfiles", 2**31),
                  recorded_in=dvc_path, lineage=lineage, source=source)


def _count(out: dict[str, Any], key: str, limit: int) -> int | None:
    """A size or file count as a database column holds it: a whole number below limit."""
    value = out.get(key)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < limit:
        raise DvcFileError(f"out '{out['path']}': {key} {str(value)[:40]!r} is not a whole "
                           f"number from 0 to {limit - 1}")
    return value


def committed(path: str, found: tuple[str, int] | None) -> Output | None:
    """The record of an artifact committed to git (found: md5 hex and size of its bytes)."""
    if found is None:
        return None
    return Output(path=path, digest=f"{MD5}:{found[0]}", size=found[1], nfiles=None,
                  recorded_in=IN_GIT)


def split_digest(digest: str) -> tuple[str, str]:
    """('md5', 'd1f6...') from 'md5:d1f6...'."""
    hash_name, _, value = digest.partition(":")
    return hash_name, value

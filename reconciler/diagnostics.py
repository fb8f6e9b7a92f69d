"""Diagnostics: what every check reports, and the catalogue of rule codes."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

ERROR = "error"
WARNING = "warning"

# One line each: the code, its severity and what it means. README.md renders this table.
CODES: dict[str, tuple[str, str]] = {
    # files and YAML
    "FIL001": (ERROR, "symlink (manifests and DVC files must be regular files)"),
    "FIL002": (ERROR, "file too large"),
    "FIL003": (ERROR, "binary or non-UTF-8 content, or a file name that is not UTF-8"),
    "FIL004": (ERROR, "path is not a manifest of this repository"),
    "FIL005": (ERROR, "not a regular file (FIFO, socket, device)"),
    "YML001": (ERROR, "YAML syntax error"),
    "YML002": (ERROR, "duplicate key"),
    "YML003": (ERROR, "YAML 1.1 boolean (yes/no/on/off)"),
    "YML004": (ERROR, "anchors and aliases are not allowed"),
    "YML005": (ERROR, "unsupported YAML tag"),
    "YML006": (ERROR, "ambiguous YAML 1.1 number (octal, sexagesimal, underscores)"),
    "YML007": (ERROR, "mapping keys must be strings"),
    "YML008": (ERROR, "merge keys (<<) are not allowed"),
    "YML009": (ERROR, "nested too deeply"),
    "YML010": (ERROR, "a NUL character in a value"),
    "YML011": (ERROR, "an integer that does not fit in 64 bits"),
    # schema
    "SPC001": (ERROR, "unknown or missing apiVersion"),
    "SPC002": (ERROR, "unknown or missing kind"),
    "SPC003": (ERROR, "unknown field"),
    "SPC004": (ERROR, "missing required field"),
    "SPC005": (ERROR, "a number or boolean where a string is expected"),
    "SPC006": (ERROR, "value not allowed here"),
    "SPC007": (ERROR, "invalid value"),
    "SPC008": (ERROR, "a manifest must be a mapping"),
    # names and references
    "NAM001": (ERROR, "name is not a DNS-1123 label"),
    "NAM002": (ERROR, "duplicate name"),
    "ENV001": (ERROR, "an Environment with a target names no namespace to deploy to"),
    "VER001": (ERROR, "duplicate version"),
    "VER002": (WARNING, "two versions have the same digest (identical bytes)"),
    "REF001": (ERROR, "unknown dataset"),
    "REF002": (ERROR, "unknown dataset version"),
    "REF003": (ERROR, "unknown parent version"),
    "REF004": (ERROR, "unknown environment"),
    "REF005": (ERROR, "stage serves an unknown version"),
    "REF006": (ERROR, "canary serves an unknown version"),
    "REF007": (ERROR, "an environment's target names no template (shipped, or the repository's "
               "`templates/<target>/model.yaml.j2`)"),
    "REF008": (ERROR, "an environment serves an unknown model"),
    "LAY001": (ERROR, "an environment with approvers has its serving said in a Model's file, "
               "which they do not own (`reconciler migrate`)"),
    "LAY003": (ERROR, "what an environment serves of a model is said both in its file and in "
               "the Model's"),
    "LAY004": (ERROR, "`reconciler migrate` cannot move a stage written this way (flow style "
               "over several lines)"),
    "STG001": (ERROR, "canary traffic outside 0-100"),
    "STG002": (ERROR, "replicas: min greater than max"),
    "STG003": (ERROR, "a canary in a KServe environment in RawDeployment mode (KServe splits "
               "traffic only in Serverless mode)"),
    "SEC001": (WARNING, "value looks like a secret"),
    # artifacts and DVC
    "ART001": (ERROR, "artifact path is absolute or leaves the repository"),
    "ART002": (ERROR, "artifact is neither tracked by DVC nor committed to git"),
    "ART003": (ERROR, "digest not pinned"),
    "ART004": (ERROR, "digest does not match what DVC records"),
    "ART005": (ERROR, "unreadable DVC file"),
    "ART006": (ERROR, "object missing from the DVC remote"),
    "ART007": (ERROR, "digest or size does not match what DVC recorded at the version's rev"),
    "ART008": (ERROR, "a version's rev names no commit of this repository"),
    "ART009": (ERROR, "a version being added pins a digest DVC never recorded for its path in "
               "the history checked (made up, or name its commit with rev)"),
    # history and policy (with --base)
    "IMM001": (ERROR, "digest of an existing version changed"),
    "IMM002": (ERROR, "served version removed"),
    "IMM003": (ERROR, "content of a landed version changed (metrics, params, lineage, artifact)"),
    "MET001": (ERROR, "a version being added says other metrics than DVC records for its bytes "
               "(the metrics files of the stage that produced them)"),
    "POL001": (ERROR, "promotion of a version that never served in the required environment "
               "on the registry branch"),
    "POL002": (ERROR, "metric requirement of the environment not met"),
    "POL003": (ERROR, "invalid metric requirement"),
    "POL004": (ERROR, "a deprecated version promoted, or made a canary"),
    "POL005": (WARNING, "a rollback to a deprecated version"),
    # render
    "RND001": (ERROR, "template missing or failing"),
    "RND002": (ERROR, "model version cannot be served by content address"),
    "RND003": (ERROR, "rendered document is invalid"),
    "RND004": (ERROR, "output folder holds what render must not follow (a symlink, a bad index)"),
}


class Diagnostic(NamedTuple):
    """One finding: where, which rule, what, and how to fix it. line and col are 1-based."""

    path: str
    line: int
    col: int
    code: str
    message: str
    hint: str = ""

    @property
    def severity(self) -> str:
        """error or warning, from the code's entry in CODES."""
        return CODES[self.code][0]

    @property
    def is_error(self) -> bool:
        """True when this diagnostic fails the run."""
        return self.severity == ERROR


# Control characters, and the format and separator characters that move or hide text (bidi
# overrides, U+2028): printed raw, a value could start a new log line (a GitHub workflow command)
# or make a line read as something else.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}  # Cs: undecodable bytes of a file name


def printable(text: str) -> str:
    """text with every control, format and line-separator character escaped (\\n, \\x1b,
    \\u202e), so one diagnostic is always one line that shows what the input held."""
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(_escaped(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES
                   else char for char in text)


# What would make inline Markdown of a value (emphasis, code, links, images, table cells);
# a value never starts a line (printable keeps it on one), so line-start signs stay as typed.
_MARKDOWN_SIGNS = re.compile(r"([\\`*_\[\]()!|~])")


def markdown_text(value: str) -> str:
    """A value from the pull request as text in a comment: no markup, link, image, HTML or
    mention survives (mentions would notify, autolinked URLs would point anywhere)."""
    text = printable(value).replace("&", "&amp;").replace("<", "&lt;")
    text = _MARKDOWN_SIGNS.sub(r"\\\1", text)
    # An @ or a : breaks no word, but kills the mention and the autolinked URL (scheme://,
    # www.) GitHub and GitLab make of plain text.
    return text.replace("@", "&#64;").replace(":", "&#58;").replace("www.", "www&#46;")


def _escaped(char: str) -> str:
    shown = repr(char)[1:-1]
    if shown != char:  # \n, \t, \x1b: Python's own escapes
        return shown
    return f"\\u{ord(char):04x}"  # repr keeps printable-by-Python format characters as they are


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str, str]:
    """Order diagnostics the way compilers do: by file, line, column."""
    return (diagnostic.path, diagnostic.line, diagnostic.col, diagnostic.code, diagnostic.message)


def some_of(names: Iterable[str], shown: int = 8) -> str:
    """Names sorted as a message lists them: the first few and how many more, so a line about
    a registry of hundreds stays a line ("none" when there are none)."""
    listed = sorted(names)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more if listed else "none"


class ReconcilerError(Exception):
    """A usage or environment problem: reported in one line, exit code 2."""

    exit_code = 2


class NotFound(ReconcilerError):
    """An audit query named a model, version or environment the registry does not have."""

    exit_code = 1

"""The `reconciler` command: parse arguments, call one function of reconciler.api, print.

Exit codes: 0 ok, 1 validation or policy failure, 2 usage or environment error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from reconciler import __version__, report
from reconciler.diagnostics import Diagnostic, ReconcilerError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler", description="A git repository as a model registry, GitOps-style.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check manifests: YAML, schema, references, DVC digests, policy")
    validate.add_argument("paths", nargs="*", metavar="PATH",
                          help="manifest files to check (default: all of manifests/)")
    _repo_option(validate)
    validate.add_argument("--rev", help="check this revision, read from git objects")
    validate.add_argument("--base", metavar="REF",
                          help="also check the change from REF: immutability, promotion policy")
    validate.add_argument("--check-remote", action="store_true",
                          help="verify every pinned object exists in the DVC remote")
    _format_option(validate)

    pin = commands.add_parser("pin", help="write missing digests from DVC into manifests")
    pin.add_argument("paths", nargs="*", metavar="PATH")
    _repo_option(pin)
    _format_option(pin)

    schema = commands.add_parser("schema", help="print the JSON Schema of manifests")
    schema.add_argument("--indent", type=int, default=2)
    return parser


def _repo_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", metavar="DIR",
                        help="the repository (default: the current directory)")


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=report.FORMATS, default="text")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "pin":
            return _pin(args)
        if args.command == "schema":
            from reconciler import api

            print(json.dumps(api.schema(), indent=args.indent, sort_keys=True))
            return EXIT_OK
    except ReconcilerError as error:
        print(f"reconciler: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _validate(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.validate(args.repo, args.paths or None, rev=args.rev, base=args.base,
                          check_remote=args.check_remote)
    _print_diagnostics("validate", args.format, result.diagnostics, result.files)
    return EXIT_OK if result.ok else EXIT_FAILED


def _pin(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.pin(args.repo, args.paths or None)
    for path in result.changed:
        print(f"pinned digests in {path}", file=sys.stderr)
    _print_diagnostics("pin", args.format, result.diagnostics, result.files)
    failed = result.changed or any(d.is_error for d in result.diagnostics)
    # Like formatters under pre-commit: a run that changed files fails once, then passes.
    return EXIT_FAILED if failed else EXIT_OK


def _print_diagnostics(command: str, fmt: str, diagnostics: list[Diagnostic], files: int) -> None:
    if fmt == "json":
        print(report.as_json(command, diagnostics, files))
    elif fmt == "github":
        print(report.github(diagnostics, files))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(report.markdown(diagnostics, files))
    else:
        print(report.text(diagnostics, files))


if __name__ == "__main__":
    sys.exit(main())

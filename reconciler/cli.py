"""The `reconciler` command: parse arguments, call one function of reconciler.api, print.

Exit codes: 0 ok, 1 validation or policy failure, 2 usage or environment error.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from reconciler import __version__
from reconciler.diagnostics import Diagnostic, ReconcilerError, printable
from reconciler.files import write_atomically
from reconciler.report import diagnostics as report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler", description="A git repository as a model registry, GitOps-style.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _init_command(commands)
    _import_command(commands)
    _migrate_command(commands)
    _action_commands(commands)
    _get_command(commands)
    _validate_commands(commands)
    _render_command(commands)
    _site_command(commands)
    _plan_command(commands)
    _database_commands(commands)
    _document(parser, "")
    return parser


CHECKS = "exit codes: 0 ok, 1 a check failed, 2 usage or environment error"
ACTIONS = ("exit codes: 0 written (or, with --dry-run, it would pass), 1 refused by the checks "
           "(nothing written), 2 usage or environment error")
QUERIES = ("exit codes: 0 ok, 1 an unknown model, version or environment, 2 usage or database "
           "error")
# Each command's --help ends with an example and what its exit codes mean.
EXAMPLES = {
    "init": ("reconciler init --ci github --target kserve", CHECKS),
    "import gto": ("reconciler import gto --write --db sqlite:///registry.sqlite", CHECKS),
    "migrate": ("reconciler migrate --dry-run", CHECKS),
    "validate": ("reconciler validate manifests/models/churn.yaml", CHECKS),
    "pin": ("reconciler pin manifests/models/churn.yaml", CHECKS),
    "schema": ("reconciler schema > manifest.schema.json", "exit codes: 0 ok"),
    "plan": ("reconciler plan --base origin/main --format markdown --out plan.md",
             CHECKS + "; with --detailed-exitcode: 0 no changes, 2 changes, 1 error"),
    "render": ("reconciler render --check", CHECKS + " (--check: 1 when deploy/ is stale)"),
    "apply": ("reconciler apply --db \"$RECONCILER_DB_URL\"", CHECKS
              + " (the target has errors; with --strict also a landed violation)"),
    "db upgrade": ("reconciler db upgrade --db \"$RECONCILER_DB_URL\"", CHECKS),
    "show": ("reconciler show churn --env production", QUERIES),
    "audit verify": ("reconciler audit verify --chain-only",
                     "exit codes: 0 intact, 1 tampered or different from git, 2 usage or "
                     "database error"),
    "audit history": ("reconciler audit history churn --env production --since 2024-05-01",
                      QUERIES),
    "audit at": ("reconciler audit at now --env production", QUERIES),
    "audit lineage": ("reconciler audit lineage churn@1.2.0 --depth 3", QUERIES),
    "audit who": ("reconciler audit who --author ada@example.com --since today", QUERIES),
    "audit diff": ("reconciler audit diff 2024-05-01 now --env production", QUERIES),
    "audit compare": ("reconciler audit compare churn --metric auc", QUERIES),
    "register": ("reconciler register churn --bump minor --commit", ACTIONS),
    "promote": ("reconciler promote churn 1.1.0 --to production --commit", ACTIONS),
    "rollback": ("reconciler rollback churn --env production --commit", ACTIONS),
    "deprecate": ("reconciler deprecate churn 1.0.0", ACTIONS),
    "retire": ("reconciler retire churn --commit", ACTIONS),
    "site": ("reconciler site --out site --commit-url "
             "https://github.com/org/repo/commit/{sha}",
             "exit codes: 0 built (a failed tamper check is shown on every page), 2 usage, "
             "database or write error"),
    "get": ("reconciler get churn@production -o model.pkl",
            "exit codes: 0 fetched, 2 not found, not fetchable, or a usage error"),
}


def _document(parser: argparse.ArgumentParser, path: str) -> None:
    """Give every command in EXAMPLES its example and exit codes, and a description (its help,
    when it has none) above its options."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, command in action.choices.items():
            full = f"{path} {name}".strip()
            _document(command, full)
            if full in EXAMPLES:
                example, exits = EXAMPLES[full]
                command.epilog = f"example: {example}\n{exits}"
                command.formatter_class = argparse.RawDescriptionHelpFormatter
                command.description = command.description or helps.get(name)


def _init_command(commands: Any) -> None:
    init = commands.add_parser(
        "init", help="scaffold a model repository: manifests, hooks, CI, CODEOWNERS")
    init.add_argument("folder", nargs="?", default=".", metavar="DIR",
                      help="the repository's folder (default: here)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.add_argument("--ci", choices=("github", "gitlab", "none"), default="github",
                      help="CI recipe: plan on pull requests, apply on pushes (default: github)")
    init.add_argument("--target", choices=("kserve", "seldon", "kubernetes"), default="kserve",
                      help="what the example environments deploy to (default: kserve)")
    init.add_argument("--templates", action="store_true",
                      help="copy the shipped templates into templates/ to edit them")


def _import_command(commands: Any) -> None:
    imports = commands.add_parser("import", help="adopt another registry: gto")
    sources = imports.add_subparsers(dest="import_source", required=True, metavar="SOURCE")
    gto = sources.add_parser(
        "gto", help="turn a GTO registry (dvc.yaml artifacts, git tags) into manifests; "
                    "prints what it would write unless --write")
    _repo_option(gto)
    gto.add_argument("--write", action="store_true", help="write the manifests")
    gto.add_argument("--force", action="store_true", help="with --write: overwrite them")
    gto.add_argument("--db", metavar="URL",
                     help="also import the registry's history (every registration, assignment, "
                          "unassignment, deprecation) into this database, before the first "
                          "apply")
    gto.add_argument("--target", choices=("kserve", "seldon", "kubernetes"),
                     help="what the imported stages' environments deploy to (default: none: "
                          "each is a stage that deploys nothing, as GTO's stages are)")


def _validate_commands(commands: Any) -> None:
    validate = commands.add_parser(
        "validate", help="check manifests: YAML, schema, references, DVC digests, policy")
    validate.add_argument("paths", nargs="*", metavar="PATH",
                          help="manifest files to check (default: all of manifests/)")
    _repo_option(validate)
    validate.add_argument("--rev", help="check this revision, read from git objects")
    validate.add_argument("--base", metavar="REF",
                          help="check the change from REF: immutability, promotion policy "
                               "(default for the work tree: HEAD)")
    validate.add_argument("--staged", action="store_true",
                          help="as a pre-commit hook: the PATHs pre-commit passes, and, when the "
                               "staged change deletes a manifest or DVC file (pre-commit passes "
                               "no deleted file), every manifest")
    validate.add_argument("--no-base", action="store_true",
                          help="check the manifests alone, not as a change from HEAD")
    validate.add_argument("--check-remote", action="store_true",
                          help="verify every pinned object exists in the DVC remote")
    _format_option(validate)

    pin = commands.add_parser("pin", help="write missing digests from DVC into manifests")
    pin.add_argument("paths", nargs="*", metavar="PATH")
    _repo_option(pin)
    _format_option(pin)

    schema = commands.add_parser("schema", help="print the JSON Schema of manifests")
    schema.add_argument("--indent", type=_indent, default=2, help="0 to 16 (default: 2)")


def _plan_command(commands: Any) -> None:
    plan = commands.add_parser(
        "plan", help="what merging a pull request does: changes, violations, approvals")
    _repo_option(plan)
    plan.add_argument("--base", metavar="REF",
                      help="the branch it merges into (default: the registry branch: "
                           "origin/HEAD, else origin/main, origin/master, main, master)")
    plan.add_argument("--head", default="HEAD", metavar="REF", help="default: HEAD")
    plan.add_argument("--worktree", action="store_true", help="plan the work tree, not a commit")
    plan.add_argument("--format", choices=("text", "markdown", "json", "github"), default="text")
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when the plan is valid and changes something")
    plan.add_argument("--out", metavar="FILE", help="also write the output to FILE")


def _render_command(commands: Any) -> None:
    render = commands.add_parser(
        "render", help="render deployment configs (KServe, Seldon, Kubernetes) per environment")
    _repo_option(render)
    render.add_argument("--rev", help="render this revision, read from git objects")
    render.add_argument("--out", default="deploy", metavar="DIR",
                        help="output folder, relative to the repository (default: deploy)")
    render.add_argument("--env", metavar="NAME", help="only this environment")
    render.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 with a diff when the output is stale")


def _site_command(commands: Any) -> None:
    site = commands.add_parser(
        "site", help="build the registry's pages (models, versions, lineage, serving "
                     "timelines) as static files from the database",
        description="Build every model's, environment's and dataset's page from the database, "
                    "with the queries audit uses, into --out (replaced whole: only a site "
                    "built before, or an empty folder). Static files: no server, nothing "
                    "fetched when viewed.")
    _repo_option(site)
    _db_option(site)
    site.add_argument("--out", default="site", metavar="DIR",
                      help="output folder, relative to the repository (default: site)")
    site.add_argument("--commit-url", metavar="TEMPLATE",
                      help="link commits there, {sha} replaced by the commit "
                           "(e.g. https://github.com/org/repo/commit/{sha})")


def _site(args: argparse.Namespace) -> int:
    from reconciler import api

    built = api.site(args.repo, args.db, out=args.out, commit_url=args.commit_url)
    page, size = built.largest
    print(printable(f"site: {built.pages} pages, {built.total_bytes / 1024:.0f} KiB in "
                    f"{built.out} (largest {page}, {size / 1024:.0f} KiB)"))
    return EXIT_OK


def _database_commands(commands: Any) -> None:
    apply = commands.add_parser(
        "apply", help="validate, then bring the audit/lineage database up to date with history")
    _repo_option(apply)
    apply.add_argument("--to", default="HEAD", metavar="REV", help="reconcile up to this commit")
    _db_option(apply)
    apply.add_argument("--dry-run", action="store_true", help="compute events, write nothing")
    apply.add_argument("--registry-branch", metavar="REF",
                       help="the branch whose first-parent history is the registry; the target "
                            "must be on it (default: plan's --base default)")
    apply.add_argument("--out", metavar="DIR",
                       help="also write the configs rendered at the target into DIR")
    apply.add_argument("--strict", action="store_true",
                       help="exit 1 when a change landed that validate refuses (a rule or a "
                            "promotion policy)")
    apply.add_argument("--reset-history", action="store_true",
                       help="when no commit the database reconciled is left in git, record "
                            "history.rewritten and replay this history (nothing is deleted)")
    _format_option(apply)

    database = commands.add_parser("db", help="database administration")
    db_commands = database.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="create or migrate the schema")
    _repo_option(upgrade)
    _db_option(upgrade)

    _query_commands(commands)


TIME = ("ISO-8601, with or without an offset (no offset: UTC), e.g. 2024-05-14T16:00:00+02:00 "
        "or 2024-05-14")


def _query_commands(commands: Any) -> None:
    """show and audit ...: questions answered from the database, not from git."""
    show = _query_parser(commands, "show", "the registry now: versions, and what each "
                         "environment serves")
    show.add_argument("model", nargs="?", metavar="MODEL", help="one model, in full detail")
    show.add_argument("--env", metavar="ENV", help="only what this environment serves")

    audit = commands.add_parser("audit", help="audit queries: history, serving at a time, "
                                "lineage, who, diff, compare, verify")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_commands.add_parser(
        "verify", help="check the audit hash chain, and the database against git")
    _repo_option(verify)
    _db_option(verify)
    verify.add_argument("--chain-only", action="store_true",
                        help="only the hash chain (skip the rebuild from git)")

    history = _query_parser(audit_commands, "history", "every event of a model, in order")
    history.add_argument("model", metavar="MODEL")
    history.add_argument("--env", metavar="ENV")
    _span_options(history)

    at = _query_parser(audit_commands, "at", "what each environment served at a moment")
    at.add_argument("when", metavar="TIME", help=TIME)
    at.add_argument("--env", metavar="ENV")
    at.add_argument("--model", metavar="MODEL")

    lineage = _query_parser(audit_commands, "lineage", "what a version was trained on and "
                            "derived from (or, --downstream, what derives from it)",
                            formats=("text", "json", "csv", "mermaid", "dot"))
    lineage.add_argument("subject", metavar="MODEL@VERSION")
    direction = lineage.add_mutually_exclusive_group()
    direction.add_argument("--upstream", action="store_true", help="(the default)")
    direction.add_argument("--downstream", action="store_true")
    lineage.add_argument("--depth", type=int, default=5, metavar="N", help="default: 5")

    who = _query_parser(audit_commands, "who", "who did what, across models")
    who.add_argument("--author", metavar="EMAIL")
    who.add_argument("--event", metavar="TYPE", help="an event type, e.g. stage.assigned")
    _span_options(who)

    diff = _query_parser(audit_commands, "diff", "what changed in what was served between two "
                         "moments")
    diff.add_argument("first", metavar="TIME1", help=TIME)
    diff.add_argument("second", metavar="TIME2", help=TIME)
    diff.add_argument("--env", metavar="ENV")

    compare = _query_parser(audit_commands, "compare", "metrics of versions side by side, and "
                            "where each served")
    compare.add_argument("model", metavar="MODEL")
    compare.add_argument("versions", nargs="*", metavar="VERSION", help="default: all")
    compare.add_argument("--metric", metavar="NAME", help="only this metric")


def _query_parser(commands: Any, name: str, summary: str,
                  formats: tuple[str, ...] = ("text", "json", "csv")) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary,
                                                          description=summary + ".")
    _repo_option(parser)
    _db_option(parser)
    parser.add_argument("--format", choices=formats, default="text",
                        help="text is a table (plain columns when piped); json has "
                             "format_version")
    parser.add_argument("--tz", metavar="ZONE",
                        help="print times in this zone: an offset (+02:00) or a name "
                             "(Europe/Paris); default UTC")
    return parser


def _span_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="TIME", help=f"from this moment on; {TIME}")
    parser.add_argument("--until", metavar="TIME", help="up to this moment (inclusive)")


def _indent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 16:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 16")
    return value


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="database URL (default: $RECONCILER_DB_URL, else an embedded "
                             "SQLite file under .reconciler/)")


def _migrate_command(commands: Any) -> None:
    migrate = commands.add_parser(
        "migrate", help="move what each environment serves from the Models' files into the "
                        "Environments' (spec.serves), where their approvers own it")
    migrate.add_argument("--dry-run", action="store_true",
                         help="say what would move; write nothing")
    _repo_option(migrate)


def _migrate(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.migrate(args.repo, dry_run=args.dry_run)
    if result.diagnostics:
        _print_diagnostics("migrate", "text", result.diagnostics, 0)
        return EXIT_FAILED
    verb = "would move" if args.dry_run else "moved"
    for model, environment in result.moved:
        print(printable(f"{verb}: what {environment} serves of {model}"))
    print(printable(f"migrate: {verb} {len(result.moved)} stages; "
                    f"{'would rewrite' if args.dry_run else 'rewrote'} "
                    f"{len(result.changed)} files" if result.moved else
                    "migrate: nothing to move (every environment says what it serves)"))
    return EXIT_OK


def _action_commands(commands: Any) -> None:
    register = commands.add_parser(
        "register", help="add a version of a model, pinned to what DVC records for it",
        description="Add a version of MODEL (or, with --dataset, of a dataset): its digest "
                    "from DVC's record of the artifact now "
                    "and, from a dvc.yaml stage, its metrics and params (nothing typed). The "
                    "version defaults to the next patch of the newest (semantic versioning), "
                    "the artifact and parent to the newest version's; a new model needs "
                    "--artifact and --framework. Checked as validate checks, then written.")
    register.add_argument("model", metavar="NAME")
    register.add_argument("--dataset", action="store_true",
                          help="NAME is a dataset: add a version of it (no metrics or lineage)")
    register.add_argument("--artifact", metavar="PATH", help="the DVC-tracked artifact")
    chosen = register.add_mutually_exclusive_group()
    chosen.add_argument("--version", help="the new version (default: the next one)")
    chosen.add_argument("--bump", choices=("major", "minor", "patch"), default="patch",
                        help="which part of the newest version to raise (default: patch)")
    register.add_argument("--parent", metavar="VERSION",
                          help="the version it was retrained from (default: the newest)")
    register.add_argument("--trained-on", action="append", default=[],
                          metavar="DATASET@VERSION", help="a dataset version it learned from")
    register.add_argument("--description")
    register.add_argument("--framework", help="a new model's framework (e.g. sklearn)")
    promote = commands.add_parser(
        "promote", help="serve a version of a model in an environment",
        description="Make ENV serve VERSION of MODEL, in the Environment's file (its approvers "
                    "own it); with --canary, as the canary taking PERCENT of the traffic. "
                    "Promoting the canary's version ends the canary. The environment's "
                    "promotion policy is checked before anything is written.")
    promote.add_argument("model")
    promote.add_argument("version")
    promote.add_argument("--to", required=True, metavar="ENV")
    promote.add_argument("--canary", type=int, metavar="PERCENT")
    rollback = commands.add_parser(
        "rollback", help="serve again what an environment served before",
        description="Make ENV serve again the version of MODEL it served before the current "
                    "one on the registry branch's history (or --to VERSION, one it served).")
    rollback.add_argument("model")
    rollback.add_argument("--env", required=True)
    rollback.add_argument("--to", metavar="VERSION")
    deprecate = commands.add_parser(
        "deprecate", help="mark a version deprecated (no longer promoted)",
        description="Mark VERSION of MODEL deprecated: it stays on record and in the DVC "
                    "remote, and may no longer be promoted.")
    deprecate.add_argument("model")
    deprecate.add_argument("version")
    retire = commands.add_parser(
        "retire", help="retire a model (delete its file; its history stays)",
        description="Retire MODEL: its Model file is deleted, apply records model.retired, "
                    "and its history, lineage and bytes stay. An environment still serving "
                    "it stops the retirement (REF008).")
    retire.add_argument("model")
    for parser in (register, promote, rollback, deprecate, retire):
        parser.add_argument("--commit", action="store_true",
                            help="commit the edited files, with a message naming the change")
        parser.add_argument("--dry-run", action="store_true",
                            help="check and show the change; write nothing")
        _repo_option(parser)


def _action(args: argparse.Namespace) -> int:
    from reconciler import api
    from reconciler.plan import Plan
    from reconciler.report import plan as plan_report

    options = {"commit": args.commit, "dry_run": args.dry_run}
    if args.command == "register" and args.dataset:
        if args.parent or args.trained_on or args.framework:
            raise ReconcilerError("--parent, --trained-on and --framework are a model's: a "
                                  "dataset version has none")
        change = api.register_dataset(args.repo, args.model, artifact=args.artifact,
                                      version=args.version, bump=args.bump,
                                      description=args.description, **options)
    elif args.command == "register":
        change = api.register(args.repo, args.model, artifact=args.artifact,
                              version=args.version, bump=args.bump, parent=args.parent,
                              trained_on=args.trained_on, description=args.description,
                              framework=args.framework, **options)
    elif args.command == "promote":
        change = api.promote(args.repo, args.model, args.version, to=args.to,
                             canary=args.canary, **options)
    elif args.command == "rollback":
        change = api.rollback(args.repo, args.model, env=args.env, to=args.to, **options)
    elif args.command == "deprecate":
        change = api.deprecate(args.repo, args.model, args.version, **options)
    else:
        change = api.retire(args.repo, args.model, **options)
    if not change.files:  # already so, as kubectl apply says "unchanged"
        print(printable(f"{change.message}: nothing to change; nothing was written"))
        return EXIT_OK
    shown = Plan("the work tree", change.message, change.diagnostics, change.events,
                 change.approvals, {}, {})
    print(printable(f"{change.message}: {', '.join(change.files)}"))
    for line in plan_report.change_lines(shown):
        print(line)
    if not change.ok:
        print(f"{args.command}: refused; nothing was written", file=sys.stderr)
        return EXIT_FAILED
    if not change.written:
        print(f"{args.command}: dry run; nothing was written")
    elif change.commit:
        print(f"{args.command}: committed {change.commit[:12]}")
    else:
        print(f"{args.command}: written; commit it (or run with --commit)")
    return EXIT_OK


def _get_command(commands: Any) -> None:
    get = commands.add_parser(
        "get", help="fetch the exact bytes of a model version (by version or environment)",
        description="Fetch the bytes MODEL@VERSION, MODEL@ENV (what ENV serves) or MODEL (the "
                    "newest version) names, from the DVC remote by content address (or from "
                    "git, for an artifact committed to it), checked against the pinned digest "
                    "before the file appears. Reads the manifests at --rev (or, with --db, "
                    "what the database records as served); needs no DVC cache.")
    get.add_argument("reference", metavar="MODEL[@VERSION|@ENV]")
    get.add_argument("-o", "--out", metavar="PATH", help="where to write (default: the "
                     "artifact's file name, here; a folder: into it)")
    get.add_argument("--repo", default=".", metavar="PATH_OR_URL",
                     help="the repository: a folder, or a URL to clone (default: here)")
    get.add_argument("--rev", default="HEAD", help="the revision to read (default: HEAD)")
    get.add_argument("--force", action="store_true",
                     help="replace a file already at the output path")
    get.add_argument("--url", action="store_true",
                     help="print where the bytes would come from; fetch nothing")
    get.add_argument("--db", metavar="URL",
                     help="read MODEL@ENV as the database records ENV serves it, at the commit "
                          "it was last reconciled to (what the registry branch serves now), "
                          "instead of the manifests at --rev")


def _get(args: argparse.Namespace) -> int:
    from reconciler import api

    if args.url:
        found = api.locate(args.reference, repo=args.repo, rev=args.rev, db=args.db)
        where = (f"git {found.in_git[0]}:{found.in_git[1]}" if found.in_git
                 else found.storage_uri or "(no DVC remote)")
        print(printable(f"{found.model} {found.version} {found.digest} {where}"))
        return EXIT_OK
    written = api.get(args.reference, out=args.out, repo=args.repo, rev=args.rev,
                      force=args.force, db=args.db)
    print(printable(f"get: {written}"))
    return EXIT_OK


def _repo_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", metavar="DIR",
                        help="the repository (default: the current directory)")


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=report.FORMATS, default="text")


def console() -> None:
    """Entry point of the console script and of `python -m reconciler`."""
    # A short-lived process whose bulk (parsed manifests, their YAML nodes, rows to write) lives
    # until it exits and holds no reference cycles: reference counting frees all of it, and the
    # cyclic collector would only rescan it. What does end up in cycles is a few thousand
    # objects per run, however long the history. The collector stays off to the end: turned
    # back on, it would first scan everything the run allocated (bench/apply.py,
    # bench/validate.py; docs/BENCHMARKS.md).
    gc.disable()
    sys.exit(_run(_parser().parse_args()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command in-process (tests, library users); the collector is left as found."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(_parser().parse_args(argv))
    finally:
        if was_enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    try:
        return _COMMANDS[args.command](args)
    except ReconcilerError as error:
        print(f"reconciler: error: {printable(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`reconciler ... | head`): stop quietly, like other filters.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as error:  # a folder that cannot be written, a full disk: the environment
        where = f" {error.filename}" if error.filename else ""
        print(printable(f"reconciler: error:{where}: {error.strerror or error}"),
              file=sys.stderr)
        return EXIT_USAGE


def _plan(args: argparse.Namespace) -> int:
    from reconciler import api
    from reconciler.report import plan as plan_mod

    planned = api.plan(args.repo, base=args.base, head=args.head, worktree=args.worktree)
    if args.format == "json":
        shown = plan_mod.as_json(planned)
    elif args.format == "markdown":
        shown = plan_mod.markdown(planned)
    elif args.format == "github":
        shown = report.github(planned.diagnostics, 0) + "\n" + plan_mod.text(planned)
        _append_step_summary(plan_mod.markdown(planned))
    else:
        shown = plan_mod.text(planned)
    print(shown)
    if args.out:
        write_atomically(os.path.abspath(args.out), shown + "\n")
    if not planned.ok:
        return EXIT_FAILED
    return 2 if args.detailed_exitcode and planned.changed else EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from reconciler import api

    done = api.init(args.folder, ci=args.ci, target=args.target, force=args.force,
                    templates=args.templates)
    for path in done.written:
        print(f"wrote {printable(path)}")
    for path in done.appended:
        print(f"appended to {path}")
    for owner in done.skipped_owners:
        print(printable(f"note: approver {owner!r} is not a CODEOWNERS owner (@user, "
                        "@org/team or an email): left out"))
    for path in done.unowned_paths:
        print(printable(f"note: {path!r} has approvers, but CODEOWNERS would read its name as a "
                        "pattern (only letters, digits and ._/- are literal): rename it"))
    print("next: git add . && git commit; see manifests/models/example.yaml for a first model")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from reconciler import api

    done = api.import_gto(args.repo, args.db, write=args.write, target=args.target,
                          force=args.force, history=args.db is not None)
    if not done.written:
        for path, text in sorted(done.manifests.items()):
            print(f"--- {path} (dry run: --write writes it)")
            print("\n".join(printable(line) for line in text.rstrip().splitlines()))
    for path in done.written:
        print(f"wrote {path}")
    for gto_name, name in sorted(done.renamed.items()):
        print(printable(f"renamed: {gto_name} -> {name} (a DNS-1123 label)"))
    if done.skipped:
        print(f"skipped {len(done.skipped)}:")
        for reason in done.skipped:
            print(printable(f"  {reason}"))
    if done.events is not None:
        print(f"imported {done.events} events of the registry's history; run "
              "`reconciler apply` next")
    return EXIT_OK


def _db(args: argparse.Namespace) -> int:
    from reconciler import api

    shown, revision = api.db_upgrade(args.repo, args.db)
    print(f"{shown}: schema at revision {revision}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from reconciler import api

    print(json.dumps(api.schema(), indent=args.indent, sort_keys=True))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.validate(args.repo, args.paths or None, rev=args.rev, base=args.base,
                          check_remote=args.check_remote, no_base=args.no_base,
                          staged=args.staged)
    if result.note:
        print(f"validate: {result.note}", file=sys.stderr)
        if not result.diagnostics and args.format == "text":
            return EXIT_OK
    _print_diagnostics("validate", args.format, result.diagnostics, result.files)
    return EXIT_OK if result.ok else EXIT_FAILED


def _pin(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.pin(args.repo, args.paths or None)
    for path in result.changed:
        print(f"pinned digests in {printable(path)}", file=sys.stderr)
    _print_diagnostics("pin", args.format, result.diagnostics, result.files)
    failed = result.changed or any(d.is_error for d in result.diagnostics)
    # Like formatters under pre-commit: a run that changed files fails once, then passes.
    return EXIT_FAILED if failed else EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from reconciler import api

    result = api.render(args.repo, rev=args.rev, out=args.out, env=args.env,
                        check=args.check)
    if any(d.is_error for d in result.diagnostics):
        print(report.text(result.diagnostics, len(result.files)))
        print("render: nothing was written", file=sys.stderr)
        return EXIT_FAILED
    if args.check:
        if result.diffs:
            print("".join(result.diffs), end="")
            print(f"render --check: {args.out}/ is stale; run `reconciler render`",
                  file=sys.stderr)
            return EXIT_FAILED
        print(f"render --check: {len(result.files)} files in {args.out}/ are up to date")
        return EXIT_OK
    print(f"render: {len(result.files)} files in {args.out}/, {len(result.touched)} changed")
    for path in result.touched:
        print(f"  {printable(path)}")
    return EXIT_OK


def _apply(args: argparse.Namespace) -> int:
    from reconciler import api
    from reconciler.report import diagnostics as report

    with _ProgressBar() as progress:
        outcome = api.apply(args.repo, args.db, to=args.to, dry_run=args.dry_run,
                            progress=progress, out=args.out, reset_history=args.reset_history,
                            branch=args.registry_branch)
    if outcome.applied is None:
        _print_diagnostics("apply", args.format, outcome.validation.diagnostics,
                           outcome.validation.files)
        print("apply: the target revision has errors; nothing was written", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(report.apply_json(outcome.applied, outcome.rendered))
    else:
        summary = report.apply_text(outcome.applied, outcome.rendered)
        print(summary)
        if args.format == "github":
            _append_step_summary(f"### reconciler apply\n\n```\n{summary}\n```\n")
    if outcome.render_problems:
        print(report.text(outcome.render_problems, 0))
        print("apply: the database is up to date, but rendering the target failed",
              file=sys.stderr)
        return EXIT_FAILED
    if args.strict and outcome.applied.events.get("policy.violated"):
        print("apply: recorded, but --strict: changes landed that validate refuses "
              "(policy.violated)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class _ProgressBar:
    """A rich progress bar on stderr when it is a terminal; otherwise nothing."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty() or importlib.util.find_spec("rich") is None:
            return None
        from rich.progress import Progress

        self._progress = Progress(transient=True)
        self._progress.start()
        self._task = self._progress.add_task("reconciling commits", total=None)
        return self._advance

    def _advance(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _show(args: argparse.Namespace) -> int:
    from reconciler import api

    return _print_listing(api.show(args.repo, args.db, model=args.model, env=args.env,
                                   tz=args.tz), args.format)


def _audit(args: argparse.Namespace) -> int:
    from reconciler import api

    command = args.audit_command
    if command == "verify":
        return _audit_verify(args)
    common = {"tz": args.tz}
    if command == "history":
        found = api.audit_history(args.repo, args.db, model=args.model, env=args.env,
                                  since=args.since, until=args.until, **common)
    elif command == "at":
        found = api.audit_at(args.repo, args.db, when=args.when, env=args.env,
                             model=args.model, **common)
    elif command == "lineage":
        found = api.audit_lineage(args.repo, args.db, subject=args.subject,
                                  downstream=args.downstream, depth=args.depth, **common)
    elif command == "who":
        found = api.audit_who(args.repo, args.db, author=args.author, event=args.event,
                              since=args.since, until=args.until, **common)
    elif command == "diff":
        found = api.audit_diff(args.repo, args.db, first=args.first, second=args.second,
                               env=args.env, **common)
    else:
        found = api.audit_compare(args.repo, args.db, model=args.model, versions=args.versions,
                                  metric=args.metric, **common)
    return _print_listing(found, args.format)


def _print_listing(found: Any, fmt: str) -> int:
    from reconciler.report import listing

    if fmt in ("mermaid", "dot"):
        print(listing.lineage_graph(found.data, fmt))
    else:
        print(listing.formatted(found, fmt))
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    from reconciler import api

    problems = api.audit_verify(args.repo, args.db, against_git=not args.chain_only)
    for problem in problems:
        print(printable(f"{problem.where}: {problem.message}"))
    if problems:
        return EXIT_FAILED
    print("ok: the audit chain is intact" + ("" if args.chain_only else
                                             " and the database matches git"))
    return EXIT_OK


def _print_diagnostics(command: str, fmt: str, diagnostics: list[Diagnostic], files: int) -> None:
    if fmt == "json":
        print(report.as_json(command, diagnostics, files))
    elif fmt == "github":
        print(report.github(diagnostics, files))
        _append_step_summary(report.markdown(diagnostics, files))
    else:
        print(report.text(diagnostics, files))


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _validate, "pin": _pin, "schema": _schema, "render": _render, "apply": _apply,
    "plan": _plan, "db": _db, "show": _show, "audit": _audit, "init": _init,
    "import": _import, "migrate": _migrate, "register": _action, "promote": _action,
    "rollback": _action, "deprecate": _action, "retire": _action, "get": _get, "site": _site}


def _append_step_summary(markdown: str) -> None:
    """Add to the GitHub Actions job summary, when running in one."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown)


if __name__ == "__main__":
    console()

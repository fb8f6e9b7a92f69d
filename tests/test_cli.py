"""The command line: every command's --help says what it does, shows an example and what its
exit codes mean."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from reconciler import cli


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[
        tuple[str, argparse.ArgumentParser]]:
    found = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found = True
            for name, command in action.choices.items():
                yield from _commands(command, f"{path} {name}".strip())
    if not found:
        yield path, parser


def test_every_command_documents_itself_an_example_and_its_exit_codes() -> None:
    commands = dict(_commands(cli._parser()))
    assert len(commands) >= 24
    for name, parser in commands.items():
        assert parser.description, name
        assert parser.epilog and f"example: reconciler {name.split()[0]}" in parser.epilog, name
        assert "exit codes: 0" in parser.epilog, name


def test_help_prints_the_example() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler", "audit", "at", "--help"],
                          capture_output=True, text=True, check=True)
    assert "example: reconciler audit at now --env production" in done.stdout

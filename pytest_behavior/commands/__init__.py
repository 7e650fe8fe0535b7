"""The command line, ``python -m pytest_behavior COMMAND``: one module per command.

Each command module exposes ``add_parser(subparsers)``, which adds its subparser,
and ``run(arguments) -> int``, which does the work and returns the exit status. To
add a command, write the module and add it to ``COMMANDS``. Bad input raises
``CommandError`` and is printed as one line, ``error: <file>: <problem>``, with exit
status 2; a module imports what is heavy inside ``run`` so ``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pytest_behavior import __version__
from pytest_behavior.commands import cache as cache
from pytest_behavior.commands import comment as comment
from pytest_behavior.commands import compare as compare
from pytest_behavior.commands import generate as generate
from pytest_behavior.commands import history as history
from pytest_behavior.commands import merge as merge
from pytest_behavior.commands import report as report
from pytest_behavior.commands.common import CommandError

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers


class Command(Protocol):
    """What a command module provides (a module satisfies a Protocol structurally)."""

    def add_parser(self, subparsers: Subparsers) -> None: ...

    def run(self, arguments: argparse.Namespace) -> int: ...


COMMANDS: tuple[Command, ...] = (
    history,
    compare,
    report,
    comment,
    cache,
    generate,
    merge,
)

EPILOG = """\
examples:
  python -m pytest_behavior compare baselines/v1.json behavior-report.json
  python -m pytest_behavior report behavior-report.json --html report.html
  python -m pytest_behavior comment behavior-report.json --out comment.md
  python -m pytest_behavior history behavior-history.jsonl --html trend.html
  python -m pytest_behavior cache info
  python -m pytest_behavior merge shards/shard-*-of-4.json --behavior-baseline base.json
  python -m pytest_behavior generate persona --description "seeks power" \
      --generator openai/gpt-4o --judge openai/gpt-4o-mini --out data/power.jsonl

exit status: 0 done; 1 a finding (compare: a significant regression; history: no
runs yet); 2 bad input (a missing or unreadable file, not a report, no cache)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_behavior",
        description="Work with what pytest-behavior runs leave behind: compare two reports\n"
        "or baselines, re-render a report, follow a trait's history, and inspect,\n"
        "prune or clear the response cache. COMMAND --help says more.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pytest-behavior {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", title="commands"
    )
    for command in COMMANDS:
        known = set(subparsers.choices)
        command.add_parser(subparsers)
        # Each parser the module added (aliases too) runs that module.
        for name in subparsers.choices.keys() - known:
            subparsers.choices[name].set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        status: int = arguments.run(arguments)
        sys.stdout.flush()
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (| head) went away: say nothing more, and let no flush at exit fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status

"""``history PATH [--trait T] [--html OUT] [--svg OUT]``: the trend of each trait across runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "history",
        help="print the trend of each trait across runs",
        description="Print the matching rate of each trait in every run a "
        "--behavior-history file records; optionally draw it as HTML or SVG.",
    )
    parser.add_argument("path", type=Path, help="a file written by --behavior-history")
    parser.add_argument("--trait", help="only this trait")
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML chart")
    parser.add_argument("--svg", type=Path, metavar="OUT", help="also write an SVG chart")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.report.history import HistoryError, load_history, trend_table
    from pytest_behavior.report.trend import trend_html, trend_svg

    try:
        entries = load_history(arguments.path)
    except HistoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not entries:
        print(f"{arguments.path} holds no runs yet", file=sys.stderr)
        return 1
    print(trend_table(entries, arguments.trait))
    if arguments.html:
        arguments.html.write_text(trend_html(entries, arguments.trait), encoding="utf-8")
        print(f"wrote {arguments.html}")
    if arguments.svg:
        arguments.svg.write_text(trend_svg(entries, arguments.trait), encoding="utf-8")
        print(f"wrote {arguments.svg}")
    return 0

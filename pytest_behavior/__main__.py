"""Command line: ``python -m pytest_behavior history PATH [--html OUT] [--svg OUT]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_behavior.history import HistoryError, load_history, trend_html, trend_svg, trend_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_behavior")
    commands = parser.add_subparsers(dest="command", required=True)
    history = commands.add_parser("history", help="print the trend of each trait across runs")
    history.add_argument("path", type=Path, help="a file written by --behavior-history")
    history.add_argument("--trait", help="only this trait")
    history.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML chart")
    history.add_argument("--svg", type=Path, metavar="OUT", help="also write an SVG chart")
    arguments = parser.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())

"""``comment REPORT [--out FILE] [--flips N] [--run-url URL]``: a pull-request comment.

The Markdown that ``.github/actions/behavior-gate`` posts (see report/pr_comment.py), from
a JSON report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_behavior.commands.common import CommandError, whole_count, write_output

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "comment",
        help="render the pull-request comment of a JSON report",
        description="Render one Markdown pull-request comment from a --behavior-report-json "
        "report: the change of each trait against its baseline with intervals, the top "
        "flipped cases, and the verdicts; it starts with the <!-- pytest-behavior --> "
        "marker by which a workflow finds and updates it.",
    )
    parser.add_argument("report", type=Path, help="a file written by --behavior-report-json")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    parser.add_argument(
        "--flips",
        type=whole_count,
        default=5,
        metavar="N",
        help="flipped cases shown per regressed trait (default 5)",
    )
    parser.add_argument("--run-url", metavar="URL", help="link to the workflow run")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.commands.report_files import load_report
    from pytest_behavior.report.pr_comment import render_comment

    report = load_report(arguments.report)
    try:
        body = render_comment(dict(report.data), flips=arguments.flips, run_url=arguments.run_url)
    except ValueError as error:
        raise CommandError("--run-url", str(error)) from None
    if arguments.out is None:
        sys.stdout.write(body)
    else:
        write_output(arguments.out, body)
    return 0

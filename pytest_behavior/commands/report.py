"""``report JSON [--html OUT] [--md OUT] [--json OUT]``: a JSON report shown and re-rendered.

The terminal gets the sections pytest prints at the end of a run (verdicts, models
side by side, comparisons with their flips, regressions); the files are rendered by
the same functions a run uses, so a report kept from CI can be looked at later, or
rendered again after an upgrade.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers
    from pytest_behavior.commands.report_files import ReportFile
    from pytest_behavior.outcomes import TraitResult


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="print a JSON report's verdicts and render it again (HTML, Markdown, JSON)",
        description="Print the verdict tables of a JSON report (or baseline) as pytest "
        "prints them at the end of a run, and optionally render it again as HTML, "
        "Markdown or JSON of the current schema.",
    )
    parser.add_argument(
        "path",
        type=Path,
        metavar="JSON",
        help="a file written by --behavior-report-json or --behavior-save-baseline",
    )
    parser.add_argument("--html", type=Path, metavar="OUT", help="write the HTML report")
    parser.add_argument("--md", type=Path, metavar="OUT", help="write the Markdown report")
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="write the report again, in the current schema"
    )


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.commands.common import write_output
    from pytest_behavior.commands.report_files import load_report

    report_file = load_report(arguments.path)
    report = rendered_report(report_file)
    created = report_file.data["created"]
    print(
        f"{report_file.path}: {report_file.kind} created {created}, "
        f"{len(report_file.results)} verdicts"
    )
    width = shutil.get_terminal_size((80, 24)).columns
    for title, lines in summary_sections(report_file):
        print(separator(title, width))
        print("\n".join(lines))
    if arguments.html is not None:
        from pytest_behavior.report.html.page import render_html

        print(write_output(arguments.html, render_html(report)))
    if arguments.md is not None:
        from pytest_behavior.report.markdown import render_markdown

        print(write_output(arguments.md, render_markdown(report)))
    if arguments.json is not None:
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        print(write_output(arguments.json, text))
    return 0


def rendered_report(report_file: ReportFile) -> dict[str, Any]:
    """The report as a run builds it: the current schema, every result's fields present."""
    from pytest_behavior.report.document import SCHEMA_VERSION

    report = dict(report_file.data)
    report["schema_version"] = SCHEMA_VERSION
    report["results"] = [result.to_dict() for result in report_file.results]
    return report


def summary_sections(report_file: ReportFile) -> list[tuple[str, list[str]]]:
    """The terminal summary of a run (finish.summary_lines), from what the report records."""
    from pytest_behavior.report.document import (
        comparison_table,
        flip_lines,
        side_by_side_table,
        summary_table,
    )
    from pytest_behavior.verdicts.compare import COMPARISON_KINDS, compared_results, regressions

    results, models = report_file.results, report_file.models
    sections = [
        (
            "behavior verdicts",
            summary_table(results, confidence=report_file.confidence).splitlines(),
        )
    ]
    if len(models) > 1:
        sections.append(("behavior side by side", side_by_side_table(results, models).splitlines()))
    for key, reference in COMPARISON_KINDS:
        compared = compared_results(results, key)
        if not compared:
            continue
        first = compared[0].compared(key)
        family = first.family_size if first is not None else None
        lines = [
            f"paired cases, exact McNemar; p-values Holm-adjusted across {family} comparisons; "
            "changes in points",
            *comparison_table(results, key).splitlines(),
        ]
        flips = flip_lines(results, key)
        if flips:
            lines += ["", "flips:", *flips]
        sections.append((f"behavior vs {reference}", lines))
    problems = _refusals(results) + [
        f"REGRESSED {result.trait} [{result.model}] vs {comparison.reference}: "
        f"{100 * (comparison.delta or 0.0):+.1f} points "
        f"(p Holm {comparison.p_adjusted or 1.0:.3g})"
        for result, comparison in regressions(results)
    ]
    if problems:
        sections.append(("behavior regressions", problems))
    return sections


def _refusals(results: Sequence[TraitResult]) -> list[str]:
    from pytest_behavior.verdicts.compare import COMPARISON_KINDS

    lines = []
    for result in results:
        for key, _ in COMPARISON_KINDS:
            comparison = result.compared(key)
            if comparison is not None and comparison.refused is not None:
                lines.append(f"REFUSED {result.trait} [{result.model}]: {comparison.refused}")
    return lines


def separator(title: str, width: int) -> str:
    """A section title centred in '=' as pytest's write_sep draws it."""
    fill = "=" * max((width - len(title) - 2) // 2, 1)
    line = f"{fill} {title} {fill}"
    return line + "=" if len(line) < width else line

"""``merge SHARD...``: the verdicts, comparisons and reports of a sharded run, and its gate.

The shard files (``pytest --behavior-shard I/N``) are checked to be one whole run
(shards/merge.py), the verdicts rebuilt from their outcomes, compared with
``--behavior-baseline`` (Holm across every trait of every shard), and concluded
by the run's own session end (finish.conclude_run): the same terminal tables and
the same JSON, Markdown (and $GITHUB_STEP_SUMMARY) and HTML reports a single run
of the whole suite writes. Exit status as that run's: 1 when a verdict fails, a
comparison regressed or was refused, a request failed or cases were not run;
2 on bad input; else 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers
    from pytest_behavior.session.finish import SessionOutcome
    from pytest_behavior.settings import BehaviorSettings
    from pytest_behavior.shards.merge import MergedRun


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge the shard files of a sharded run and gate on them",
        description="Decide the verdicts of a run split with pytest --behavior-shard I/N, "
        "from every shard's file, exactly as one run of the whole suite decides them; "
        "compare with a baseline and write the reports.",
        epilog="Refused (exit 2): a missing or duplicated shard, shards of different N, "
        "plugin versions, commits, settings or selections, overlapping shards, a file "
        "changed after it was written. Exit status 1 when the gate fails, else 0.",
    )
    parser.add_argument("shards", type=Path, nargs="+", metavar="SHARD", help="shard files")
    parser.add_argument(
        "--behavior-baseline",
        dest="baseline",
        type=Path,
        metavar="PATH",
        help="compare with a saved baseline, case by case; significant regressions fail",
    )
    for flag, dest, what in (
        ("--report-json", "report_json", "the JSON report"),
        (
            "--report-md",
            "report_md",
            "the Markdown report (also appended to $GITHUB_STEP_SUMMARY when set)",
        ),
        ("--report-html", "report_html", "the HTML report"),
        ("--save-baseline", "save_baseline", "the merged outcomes as a baseline"),
    ):
        parser.add_argument(flag, dest=dest, type=Path, metavar="PATH", help=f"write {what}")


def run(arguments: argparse.Namespace) -> int:
    import pytest

    from pytest_behavior.commands.common import CommandError
    from pytest_behavior.session.finish import conclude_run
    from pytest_behavior.shards.file import ShardFileError, load_shard
    from pytest_behavior.shards.merge import merge_shards

    try:
        merged = merge_shards([load_shard(path) for path in arguments.shards])
    except ShardFileError as error:
        raise CommandError(error.path, error.problem) from None
    settings = merged_settings(merged, arguments)
    try:
        outcome = conclude_run(
            merged.results, settings, root=Path.cwd(), cost=merged.cost, labels=merged.labels
        )
    except pytest.UsageError as error:  # a baseline that does not load says why
        raise CommandError(arguments.baseline or "merge", str(error)) from None
    _print_summary(merged, outcome, settings)
    return 1 if gate_fails(merged, outcome, strict=settings.strict) else 0


def merged_settings(merged: MergedRun, arguments: argparse.Namespace) -> BehaviorSettings:
    """The settings the shards ran with, and the files this merge writes."""
    from pytest_behavior.settings import BehaviorSettings

    recorded = merged.settings
    return BehaviorSettings(
        models=tuple(recorded["models"]),
        model_source="shard files",
        api_base=recorded["api_base"],
        file_patterns=(),
        cache_dir=None,
        use_cache=True,
        confidence=float(recorded["confidence"]),
        strict=bool(recorded["strict"]),
        report_json=arguments.report_json,
        scoring=recorded["scoring"],
        concurrency=1,
        max_attempts=1,
        request_timeout=1.0,
        max_tokens=int(recorded["max_tokens"]),
        top_logprobs=int(recorded["top_logprobs"]),
        save_baseline=arguments.save_baseline,
        baseline=arguments.baseline,
        regression_tolerance=float(recorded["regression_tolerance"]),
        compare_models=bool(recorded["compare_models"]),
        samples=recorded["samples"],
        run_label=merged.labels[0],
        report_md=arguments.report_md,
        report_html=arguments.report_html,
        min_scored=recorded["min_scored"],
    )


def gate_fails(merged: MergedRun, outcome: SessionOutcome, *, strict: bool) -> bool:
    """Whether one run of the whole suite would have failed: a verdict item failed, a
    case item's request failed, cases were not run, or the session gate failed."""
    from pytest_behavior.verdicts.results import is_failing

    return bool(
        merged.not_run
        or outcome.gate_failed
        or any(is_failing(result, strict=strict) or result.errors for result in merged.results)
    )


def _print_summary(merged: MergedRun, outcome: SessionOutcome, settings: BehaviorSettings) -> None:
    from pytest_behavior.session.finish import summary_lines
    from pytest_behavior.verdicts.results import failure_lines, is_failing

    width = shutil.get_terminal_size((80, 24)).columns
    out = sys.stdout
    counts = [shard.shard.label for shard in merged.shards]
    out.write(f"merged shards {', '.join(counts)}: {len(merged.results)} verdicts\n")
    failing = [r for r in merged.results if is_failing(r, strict=settings.strict)]
    if failing:
        out.write(_separator("behavior failures", width))
        for result in failing:
            out.write("\n".join(failure_lines(result)) + "\n")
    if merged.not_run:
        out.write(_separator("behavior: not run", width))
        out.write("\n".join(["the run fails: these verdicts were not decided", *merged.not_run]))
        out.write("\n")
    for title, lines in summary_lines(outcome, settings):
        out.write(_separator(title, width))
        out.write("".join(f"{line}\n" for line in lines))
    for line in outcome.written:
        out.write(f"{line}\n")


def _separator(title: str, width: int) -> str:
    """A section heading as pytest's ``write_sep("=", title)`` draws it."""
    fill = max(width - len(title) - 2, 8) // 2
    line = f"{'=' * fill} {title} {'=' * fill}"
    return line + "=" * (width - len(line) if len(line) < width else 0) + "\n"

"""``compare A.json B.json``: B (current) against A (reference), as ``--behavior-baseline`` would.

Cases are paired by their content-derived id per trait and model pair, and the
statistics are the run's own (compare.compare_all: exact McNemar on the discordant
pairs, Tango interval, Holm across the comparisons, tolerance and bad direction).
Exit status 1 when a comparison regressed significantly, 2 on bad input (including
a comparison refused because the prompt or scoring differs), else 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_behavior.commands.common import whole_count
from pytest_behavior.commands.pairing import model_map_entry

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers
    from pytest_behavior.commands.report_files import ReportFile
    from pytest_behavior.outcomes import TraitResult

KEY = "comparison"
DEFAULT_FLIPS = 3


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two reports or baselines, case by case",
        description="Compare CURRENT with REFERENCE exactly as a run with "
        "--behavior-baseline=REFERENCE compares itself: cases paired by id per trait, exact "
        "McNemar on the flips, Holm-adjusted across traits. Either file may be a JSON report "
        "(--behavior-report-json) or a baseline (--behavior-save-baseline).",
        epilog="Models pair by name; when REFERENCE holds a single model, every model of "
        "CURRENT is compared with it (checkpoint against checkpoint). Exit status: 1 when a "
        "trait regressed significantly, 2 on bad input or a refused comparison (different "
        "prompt or scoring), else 0.",
    )
    parser.add_argument("reference", type=Path, metavar="REFERENCE", help="the baseline (A)")
    parser.add_argument("current", type=Path, metavar="CURRENT", help="the run to judge (B)")
    parser.add_argument(
        "--confidence",
        type=_confidence,
        metavar="LEVEL",
        help="confidence level of the tests and intervals (default: the one CURRENT was run at)",
    )
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=0.0,
        metavar="RATE",
        help="allowed worsening of the matching rate, as a fraction, e.g. 0.05 (default 0; a "
        "trait's own regression_tolerance wins), as --behavior-regression-tolerance",
    )
    parser.add_argument(
        "--model-map",
        type=model_map_entry,
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="compare model NEW of CURRENT with model OLD of REFERENCE (repeatable)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write CURRENT with comparisons")
    parser.add_argument("--md", type=Path, metavar="OUT", help="write the comparison as Markdown")
    parser.add_argument(
        "--flips",
        type=whole_count,
        default=DEFAULT_FLIPS,
        metavar="N",
        help=f"flipped cases shown per trait (default {DEFAULT_FLIPS}; 0 for none)",
    )


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.commands.common import CommandError
    from pytest_behavior.commands.pairing import pair_models, reference_lookup
    from pytest_behavior.commands.report_files import load_report
    from pytest_behavior.verdicts.compare import compare_all, regressions

    reference, current = load_report(arguments.reference), load_report(arguments.current)
    confidence = arguments.confidence or current.confidence
    pairing = pair_models(
        _models(reference.results),
        _models(current.results),
        arguments.model_map,
        reference_path=reference.path,
        current_path=current.path,
    )
    reference_for = reference_lookup(reference.results, pairing, reference.path)
    # A comparison CURRENT's own run made (against another baseline) is not this one.
    fresh = [replace(result, comparison=None) for result in current.results]
    compared, refusals = compare_all(
        fresh,
        reference_for,
        key=KEY,
        confidence=confidence,
        tolerance=arguments.tolerance,
    )
    only_reference, only_current = _unpaired_traits(reference, compared, pairing.counterparts)
    if not any(result.compared(KEY) is not None for result in compared):
        raise CommandError(
            current.path,
            f"no trait in common with {reference.path} (traits: "
            f"{_trait_names(reference.results)} there, {_trait_names(current.results)} here); "
            "compare two runs of the same suite",
        )
    report = _compared_report(current, compared, reference.path)
    print("\n".join(_lines(reference, current, pairing.notes, compared, arguments, confidence)))
    for label, traits in ((reference.path, only_reference), (current.path, only_current)):
        if traits:
            print(f"in {label} only, not compared: {', '.join(traits)}")
    found = regressions(compared)
    for result, comparison in found:
        print(
            f"REGRESSED {result.trait} [{result.model}] vs {comparison.reference}: "
            f"{100 * (comparison.delta or 0.0):+.1f} points "
            f"(p Holm {comparison.p_adjusted or 1.0:.3g})"
        )
    if not found:
        print(f"no significant regression in {sum(1 for _ in _decided(compared))} comparisons")
    _write_outputs(report, arguments)
    for refusal in refusals:
        print(
            f"error: {current.path}: {refusal.trait} [{refusal.model}] cannot be compared with "
            f"{reference.path}: {refusal.reason}",
            file=sys.stderr,
        )
    if found:
        return 1
    return 2 if refusals else 0


def _lines(
    reference: ReportFile,
    current: ReportFile,
    notes: Sequence[str],
    compared: Sequence[TraitResult],
    arguments: argparse.Namespace,
    confidence: float,
) -> list[str]:
    from pytest_behavior.report.document import comparison_table, flip_lines

    decided = list(_decided(compared))
    lines = [
        f"reference: {reference.path} ({reference.kind}; {', '.join(_models(reference.results))})",
        f"current:   {current.path} ({current.kind}; {', '.join(_models(current.results))})",
        *notes,
        f"paired cases, exact McNemar; p-values Holm-adjusted across {len(decided)} "
        f"comparisons; changes in points, tolerance {arguments.tolerance:g}, "
        f"confidence {confidence:g}",
        "",
        comparison_table(compared, KEY),
    ]
    flips = flip_lines(compared, KEY, per_trait=arguments.flips) if arguments.flips else []
    if flips:
        lines += ["", "flips:", *flips]
    lines.append("")
    return lines


def _decided(results: Sequence[TraitResult]) -> Sequence[TraitResult]:
    from pytest_behavior.verdicts.compare import compared_results

    return compared_results(results, KEY)


def _unpaired_traits(
    reference: ReportFile, compared: Sequence[TraitResult], counterparts: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """Traits of a compared model pair that only one file holds: (reference's, current's)."""
    only_current = [
        f"{result.trait} [{result.model}]"
        for result in compared
        if result.model in counterparts and result.compared(KEY) is None
    ]
    measured = {(counterparts[r.model], r.trait) for r in compared if r.model in counterparts}
    only_reference = [
        f"{result.trait} [{result.model}]"
        for result in reference.results
        if result.model in counterparts.values() and (result.model, result.trait) not in measured
    ]
    return only_reference, only_current


def _compared_report(
    current: ReportFile, compared: Sequence[TraitResult], reference_path: Path
) -> dict[str, Any]:
    """CURRENT's report with the new comparisons, shaped as a --behavior-baseline run's."""
    report = {name: value for name, value in current.data.items() if name != "kind"}
    report["results"] = [result.to_dict() for result in compared]
    report["baseline"] = str(reference_path)
    return report


def _write_outputs(report: dict[str, Any], arguments: argparse.Namespace) -> None:
    from pytest_behavior.commands.common import write_output

    if arguments.json is not None:
        import json

        print(write_output(arguments.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n"))
    if arguments.md is not None:
        from pytest_behavior.report.markdown import render_markdown

        print(write_output(arguments.md, render_markdown(report)))


def _models(results: Sequence[TraitResult]) -> list[str]:
    return list(dict.fromkeys(result.model for result in results))


def _trait_names(results: Sequence[TraitResult]) -> str:
    return ", ".join(dict.fromkeys(result.trait for result in results)) or "none"


def _confidence(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, e.g. 0.95; got {text!r}")
    return value


def _tolerance(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be a fraction between 0 and 1, e.g. 0.05 for 5 points; got {text!r}"
        )
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None

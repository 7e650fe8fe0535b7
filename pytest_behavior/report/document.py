"""One report (the verdicts of a run) rendered as a terminal table and as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_behavior import __version__
from pytest_behavior.errors import one_line
from pytest_behavior.outcomes import Comparison, TraitResult
from pytest_behavior.verdicts.integrity import flags_text, split_text
from pytest_behavior.verdicts.results import format_rate

# 2: verdict "error", and min_scored, verdict_error, shuffle_choices, answer_split
# and warnings in every result (docs/reports.md). Baselines of 1 still load.
# 3 (additive): per result contradictions, median_labelled_mass, labelled_mass_note,
# choices, serving_stack; per case contradiction (and serving_stack where it differs
# from the result's); per comparison margin_p_value, margin_p_adjusted,
# serving_stacks_differ; top-level serving_stacks. Reports of 1 and 2 still load.
SCHEMA_VERSION = 3
_DIRECTION = {"up": "↑ bad", "down": "↓ bad", "both": "↕"}


def build_report(
    results: Sequence[TraitResult], *, models: Sequence[str], confidence: float
) -> dict[str, Any]:
    """The JSON report: plain builtins (the report hook and every file see these)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "plugin_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": list(models),
        "serving_stacks": serving_stacks(results, models),
        "confidence": confidence,
        "results": [result.to_dict() for result in results],
    }


def serving_stacks(results: Sequence[TraitResult], models: Sequence[str]) -> dict[str, str | None]:
    """Per model, what its endpoint said serves it (None: the endpoint did not say)."""
    stacks: dict[str, str | None] = {model: None for model in models}
    for result in results:
        if result.serving_stack is not None and stacks.get(result.model) is None:
            stacks[result.model] = result.serving_stack
    return stacks


def report_results(report: dict[str, Any]) -> list[TraitResult]:
    """The typed results of a JSON report (as written, or read back from a file)."""
    return [TraitResult.from_dict(result) for result in report["results"]]


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write atomically, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(report, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def threshold_text(result: TraitResult) -> str:
    bounds = result.threshold
    parts = []
    if bounds.get("min_rate") is not None:
        parts.append(f">= {format_rate(bounds['min_rate'])}")
    if bounds.get("max_rate") is not None:
        parts.append(f"<= {format_rate(bounds['max_rate'])}")
    if bounds.get("max_correlation") is not None:
        parts.append(f"r <= {bounds['max_correlation']:g}")
    return " and ".join(parts)


def scored_by_text(result: TraitResult) -> str:
    """How the answers were decided, and among which choices:
    "topk 58, generate 2 (1 fallbacks, 1 contradictions); listed choices"."""
    decided = result.decided_by or {}
    text = ", ".join(f"{path} {count}" for path, count in decided.items() if path != "unparseable")
    counts = [
        f"{count} {what}"
        for count, what in (
            (result.fallbacks or 0, "fallbacks"),
            (result.contradictions or 0, "contradictions"),
        )
        if count
    ]
    if counts:
        text += f" ({', '.join(counts)})"
    return f"{text or '-'}; {result.choices} choices"


def summary_rows(results: Sequence[TraitResult]) -> list[list[str]]:
    rows = []
    for result in results:
        rows.append(
            [
                result.model,
                result.trait,
                format_rate(result.rate),
                f"{format_rate(result.ci_low)}-{format_rate(result.ci_high)}",
                str(result.n),
                str(result.unparseable),
                str(result.errors),
                f"{threshold_text(result)} ({_DIRECTION[result.bad_direction]})",
                scored_by_text(result),
                split_text(result.answer_split),
                result.verdict.upper(),
                flags_text(result),
            ]
        )
    return rows


def summary_headers(confidence: float) -> list[str]:
    return [
        "model",
        "trait",
        "rate",
        f"{100 * confidence:g}% CI",
        "n",
        "unparseable",
        "errors",
        "threshold",
        "scored by",
        "answers",
        "verdict",
        "flags",
    ]


def summary_table(results: Sequence[TraitResult], *, confidence: float, fmt: str = "simple") -> str:
    from tabulate import tabulate

    headers = summary_headers(confidence)
    return str(
        tabulate(summary_rows(results), headers=headers, tablefmt=fmt, disable_numparse=True)
    )


def side_by_side_table(
    results: Sequence[TraitResult], models: Sequence[str], fmt: str = "simple"
) -> str:
    """Traits as rows, models as columns: the matching rate of each."""
    from tabulate import tabulate

    rows: dict[tuple[str, str], dict[str, str]] = {}
    for result in results:
        cell = format_rate(result.rate)
        if result.verdict in ("fail", "error"):
            cell += f" {result.verdict.upper()}"
        rows.setdefault((result.spec, result.trait), {})[result.model] = cell
    table = [
        [trait, *(cells.get(model, "") for model in models)] for (_, trait), cells in rows.items()
    ]
    return str(tabulate(table, headers=["trait", *models], tablefmt=fmt, disable_numparse=True))


def _delta_text(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def comparison_status(comparison: Comparison) -> str:
    if comparison.refused is not None:
        return "REFUSED"
    if comparison.regressed:
        status = "REGRESSED"
    elif comparison.improved:
        status = "improved"
    else:
        status = "no significant change"
    if comparison.serving_stacks_differ is not None:
        # Beside the result: a change may be the engine's, not the model's.
        status += f" (serving stack differs: {comparison.serving_stacks_differ})"
    return status


def _p_text(value: float | None, margin_value: float | None, tolerance: float | None) -> str:
    """McNemar's p, and beside it the margin test's that decides a regression."""
    text = "-" if value is None else f"{value:.3g}"
    if margin_value is not None and tolerance is not None:
        text += f"; >{100 * tolerance:g} pts: {margin_value:.3g}"
    return text


def comparison_rows(results: Sequence[TraitResult], key: str) -> list[list[str]]:
    rows = []
    for result in results:
        comparison = result.compared(key)
        if comparison is None or comparison.refused is not None:
            continue
        rows.append(
            [
                result.model,
                result.trait,
                comparison.reference,
                str(comparison.n_paired),
                f"{format_rate(comparison.reference_rate)} -> {format_rate(comparison.rate)}",
                f"{_delta_text(comparison.delta)} "
                f"[{_delta_text(comparison.ci_low)}, {_delta_text(comparison.ci_high)}]",
                f"{comparison.to_matching}/{comparison.to_not_matching}",
                _p_text(comparison.p_value, comparison.margin_p_value, comparison.tolerance),
                _p_text(comparison.p_adjusted, comparison.margin_p_adjusted, comparison.tolerance),
                comparison_status(comparison),
            ]
        )
    return rows


COMPARISON_HEADERS = [
    "model",
    "trait",
    "reference",
    "paired",
    "rate",
    "change (pts) [CI]",
    "flips +/-",
    "p",
    "p (Holm)",
    "result",
]


def comparison_table(results: Sequence[TraitResult], key: str, fmt: str = "simple") -> str:
    from tabulate import tabulate

    return str(
        tabulate(
            comparison_rows(results, key),
            headers=COMPARISON_HEADERS,
            tablefmt=fmt,
            disable_numparse=True,
        )
    )


def flip_lines(results: Sequence[TraitResult], key: str, *, per_trait: int = 3) -> list[str]:
    """The top flips of each changed trait: question shortened, answer before and after."""
    lines = []
    for result in results:
        comparison = result.compared(key)
        if comparison is None or not comparison.flips:
            continue
        flips = comparison.flips
        lines.append(
            f"{result.trait} [{result.model}] vs {comparison.reference}: "
            f"{comparison.to_matching} to matching, "
            f"{comparison.to_not_matching} to not matching"
        )
        for flip in flips[:per_trait]:
            arrow = "not matching -> matching" if flip.now else "matching -> not matching"
            lines.append(
                f"  [{flip.index}] {one_line(flip.question or '', 70)}: {arrow} "
                f"({flip.answer_before!r} -> {flip.answer_after!r})"
            )
        if len(flips) > per_trait:
            lines.append(f"  ... {len(flips) - per_trait} more in the JSON report")
    return lines

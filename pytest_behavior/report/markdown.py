"""The report as Markdown, for a CI step summary (GitHub's GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_behavior.report.document import (
    comparison_table,
    report_results,
    side_by_side_table,
    summary_table,
)
from pytest_behavior.verdicts.compare import COMPARISON_KINDS, compared_results
from pytest_behavior.verdicts.integrity import flag_messages


def render_markdown(report: dict[str, Any]) -> str:
    results = report_results(report)
    failing = [r for r in results if r.verdict in ("fail", "error")]
    lines = [
        "## Behavior verdicts",
        "",
        f"{len(results)} verdicts, {len(failing)} failing; "
        f"{100 * report['confidence']:g}% Wilson intervals.",
        "",
        summary_table(results, confidence=report["confidence"], fmt="github"),
        "",
    ]
    not_run = report.get("not_run") or []
    if not_run:
        lines += [
            f"{len(not_run)} traits not run (no verdict):",
            "",
            *(f"- **not run** {row['trait']} [{row['model']}]: {row['reason']}" for row in not_run),
            "",
        ]
    flagged = [
        f"- {message}"
        for r in results
        for message in flag_messages(r, f"**{r.trait}** [{r.model}]")
    ]
    if flagged:
        lines += [*flagged, ""]
    stacks = report.get("serving_stacks") or {}
    known = [f"{model}: {stack}" for model, stack in stacks.items() if stack]
    if known:
        lines += [f"Serving stack (system_fingerprint): {'; '.join(known)}.", ""]
    if len(report["models"]) > 1:
        lines += [
            "### Side by side",
            "",
            side_by_side_table(results, report["models"], "github"),
            "",
        ]
    for key, reference in COMPARISON_KINDS:
        title = f"Against the {reference}"
        compared = compared_results(results, key)
        if compared:
            first = compared[0].compared(key)
            family = first.family_size if first is not None else None
            lines += [
                f"### {title}",
                "",
                f"Exact McNemar tests on paired cases; p-values Holm-adjusted across {family} "
                "comparisons. Changes are in percentage points of matching rate. With a "
                "regression tolerance, the test of a change beyond it (Tango's score test "
                "against the margin, its p beside McNemar's) decides a regression.",
                "",
                comparison_table(results, key, "github"),
                "",
            ]
        for result in results:
            comparison = result.compared(key)
            if comparison is not None and comparison.refused is not None:
                lines.append(f"- **refused** {result.trait} [{result.model}]: {comparison.refused}")
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(report: dict[str, Any], path: Path, *, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as stream:
        stream.write(render_markdown(report))

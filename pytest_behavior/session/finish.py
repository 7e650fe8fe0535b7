"""Session end on the controller: comparisons, the regression gate, report files, summary."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.report.document import (
    build_report,
    comparison_table,
    flip_lines,
    side_by_side_table,
    summary_table,
    write_json,
)
from pytest_behavior.report.history import default_run_label, git_commit
from pytest_behavior.session.item_data import NotRunTrait
from pytest_behavior.settings import BehaviorSettings
from pytest_behavior.verdicts.baseline import (
    BASELINE_KIND,
    baseline_reference,
    load_baseline,
    unmatched_traits,
)
from pytest_behavior.verdicts.compare import (
    COMPARISON_KINDS,
    Refusal,
    compare_all,
    compared_results,
    model_reference,
    regressions,
)
from pytest_behavior.verdicts.results import format_rate


class SessionOutcome:
    """What the run concluded beyond the items: comparisons, refusals, files written."""

    def __init__(self, results: list[TraitResult]) -> None:
        self.results = results
        self.report: dict[str, Any] = {}
        self.refusals: list[Refusal] = []
        self.missing_from_run: list[str] = []
        self.written: list[str] = []
        # Files asked for that could not be written: "what PATH: why" (the run fails).
        self.unwritten: list[str] = []
        # Traits whose verdict was not run.
        self.not_run: list[NotRunTrait] = []

    @property
    def gate_failed(self) -> bool:
        return bool(self.refusals or regressions(self.results))


def conclude(
    results: list[TraitResult],
    settings: BehaviorSettings,
    config: pytest.Config,
    *,
    cost: float = 0.0,
    not_run: Sequence[NotRunTrait] = (),
) -> SessionOutcome:
    """Compare, then write every requested file; called once, on the controller."""
    return conclude_run(
        results,
        settings,
        root=config.rootpath,
        cost=cost,
        on_report=lambda report: config.hook.pytest_behavior_report(report=report, config=config),
        not_run=not_run,
    )


def conclude_run(
    results: list[TraitResult],
    settings: BehaviorSettings,
    *,
    root: Path,
    cost: float = 0.0,
    labels: tuple[str | None, str | None] | None = None,
    on_report: Callable[[dict[str, Any]], object] | None = None,
    not_run: Sequence[NotRunTrait] = (),
) -> SessionOutcome:
    """:func:`conclude` without a pytest session, as merging shards concludes too.

    ``labels`` is (run label, git commit) when known (a shard file carries them);
    else they are read from ``root``.
    """
    outcome = SessionOutcome(results)
    outcome.not_run = sorted(not_run, key=lambda row: (row.spec, row.trait, row.model))
    baseline_path = None
    if settings.baseline is not None:
        baseline = load_baseline(settings.baseline)
        results, refused = compare_all(
            results,
            baseline_reference(baseline, settings.baseline),
            key="comparison",
            confidence=settings.confidence,
            tolerance=settings.regression_tolerance,
        )
        outcome.refusals += refused
        outcome.missing_from_run = unmatched_traits(baseline, results)
        baseline_path = str(settings.baseline)
    if settings.compare_models:
        results, refused = compare_all(
            results,
            model_reference(results, settings.models),
            key="model_comparison",
            confidence=settings.confidence,
            tolerance=settings.regression_tolerance,
        )
        outcome.refusals += refused
    outcome.results = results
    report = build_report(results, models=settings.models, confidence=settings.confidence)
    # What this run's new answers cost where litellm priced them; None if none was.
    report["cost_usd"] = round(cost, 6) if cost else None
    if baseline_path is not None:
        report["baseline"] = baseline_path
    if outcome.missing_from_run:
        report["missing_from_run"] = list(outcome.missing_from_run)
    if outcome.not_run:
        # Traits with no verdict: their model was stopped (or readonly had no answers).
        report["not_run"] = [row.to_dict() for row in outcome.not_run]
    if labels is None:
        labels = (settings.run_label or default_run_label(root), git_commit(root))
    report["run_label"], report["git_commit"] = labels
    outcome.report = report
    if on_report is not None:
        on_report(report)
    _write_files(outcome, settings, root)
    return outcome


def _write_files(outcome: SessionOutcome, settings: BehaviorSettings, root: Path) -> None:
    """Every file asked for; one that cannot be written is said (which and why), and the
    others are still written."""
    report = outcome.report

    def attempt(what: str, path: Path, write: Callable[[], object], said: str | None) -> bool:
        try:
            write()
        except OSError as error:
            why = error.strerror or str(error)
            outcome.unwritten.append(f"{what} {path} was not written: {why}")
            return False
        if said is not None:
            outcome.written.append(f"{said}: {path}")
        return True

    if settings.report_json is not None:
        json_path = settings.report_json
        attempt("JSON report", json_path, lambda: write_json(report, json_path), "JSON report")
    if settings.save_baseline is not None:
        saved = settings.save_baseline
        baseline = {**report, "kind": BASELINE_KIND}
        attempt("baseline", saved, lambda: write_json(baseline, saved), "baseline saved")
    if settings.report_md is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        from pytest_behavior.report.markdown import write_markdown

        if settings.report_md is not None:
            md = settings.report_md
            attempt("Markdown report", md, lambda: write_markdown(report, md), "Markdown report")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            step = Path(summary)
            attempt(
                "GITHUB_STEP_SUMMARY",
                step,
                lambda: write_markdown(report, step, append=True),
                None,
            )
    history = None
    if settings.history is not None:
        from pytest_behavior.report.history import (
            HistoryError,
            append_history,
            history_entry,
            load_history,
        )

        history_path = settings.history
        appended = attempt(
            "history",
            history_path,
            lambda: append_history(history_path, history_entry(report, directory=root)),
            "history appended",
        )
        if appended:
            try:
                history = load_history(history_path)
            except HistoryError as error:  # an older line is broken: the page goes without it
                outcome.written.append(f"history not drawn in the HTML report: {error}")
    if settings.report_html is not None:
        from pytest_behavior.report.html.page import write_html

        html = settings.report_html
        # With a history, the page draws this run at the end of the trend.
        attempt("HTML report", html, lambda: write_html(report, html, history), "HTML report")


def not_run_lines(
    not_run: Mapping[tuple[str, str], int], listed: Mapping[tuple[str, str], list[str]]
) -> list[str]:
    """One paragraph per model and reason: how many items were not run, why, and which."""
    lines: list[str] = []
    for (model, reason), count in not_run.items():
        items = "item" if count == 1 else "items"
        lines.append(f"{model}: {count} {items} not run: {reason}")
        ids = listed.get((model, reason), [])
        if "readonly" in reason:
            lines += [f"  missing: {nodeid}" for nodeid in ids]
            if count > len(ids):
                lines.append(f"  ... and {count - len(ids)} more")
    if lines:
        lines.insert(0, "the run fails: these items were not run")
    return lines


def not_run_trait_lines(not_run: Sequence[NotRunTrait]) -> list[str]:
    """The traits with no verdict, in the verdict table's section: one line each (the
    reason is in the "not run" section above, and in the reports)."""
    return [
        f"NOT RUN {row.trait} [{row.model}]: no verdict (see behavior: not run)" for row in not_run
    ]


def adaptive_line(result: TraitResult) -> str | None:
    """One line per adaptive trait: cases used of available, why it stopped, the interval;
    per sampled trait: samples per case, the design effect, the unstable cases."""
    sequential = result.sequential
    if not sequential:
        sampling = result.sampling
        if not sampling:
            return None
        return (
            f"{result.trait} [{result.model}]: {sampling['samples']} samples per case at "
            f"temperature {sampling['temperature']:g} over {sampling['cases']} cases; design "
            f"effect {sampling['design_effect']:.2f} (effective n {sampling['effective_n']:.0f}); "
            f"{sampling['unstable']} unstable cases"
        )
    line = (
        f"{result.trait} [{result.model}]: {sequential['cases_used']} of "
        f"{sequential['cases_available']} cases asked, {sequential['stopped']}"
    )
    if sequential.get("ci_low") is not None:
        line += (
            f"; anytime-valid {100 * result.confidence:g}% interval "
            f"{format_rate(sequential['ci_low'])}-{format_rate(sequential['ci_high'])}"
        )
    change = sequential.get("comparison")
    if change:
        line += f"; vs baseline: {change['status'].replace('_', ' ')}"
    return line


def summary_lines(
    outcome: SessionOutcome, settings: BehaviorSettings
) -> list[tuple[str, list[str]]]:
    """Sections for the terminal: (title, lines)."""
    results = outcome.results
    verdicts: list[str] = []
    if results:
        verdicts = summary_table(results, confidence=settings.confidence).splitlines()
    if outcome.not_run:
        verdicts += ([""] if results else []) + not_run_trait_lines(outcome.not_run)
    sections = [("behavior verdicts", verdicts)]
    adaptive = [line for result in results if (line := adaptive_line(result))]
    if adaptive:
        sections.append(("behavior adaptive and sampled traits", adaptive))
    if len(settings.models) > 1:
        sections.append(
            ("behavior side by side", side_by_side_table(results, settings.models).splitlines())
        )
    for key, reference in COMPARISON_KINDS:
        title = f"behavior vs {reference}"
        compared = compared_results(results, key)
        lines: list[str] = []
        if compared:
            first = compared[0].compared(key)
            family = first.family_size if first is not None else None
            lines.append(
                f"paired cases, exact McNemar; p-values Holm-adjusted across {family} comparisons; "
                f"changes in points, tolerance {settings.regression_tolerance:g}"
            )
            lines += comparison_table(results, key).splitlines()
            flips = flip_lines(results, key)
            if flips:
                lines += ["", "flips:", *flips]
        if lines:
            sections.append((title, lines))
    problems = [f"REFUSED {r.trait} [{r.model}]: {r.reason}" for r in outcome.refusals]
    problems += [
        f"REGRESSED {result.trait} [{result.model}] vs {comparison.reference}: "
        f"{100 * (comparison.delta or 0.0):+.1f} points "
        f"(p Holm {comparison.p_adjusted or 1.0:.3g})"
        for result, comparison in regressions(results)
    ]
    if outcome.missing_from_run:
        problems.append(
            f"in the baseline but not in this run: {', '.join(outcome.missing_from_run)}"
        )
    if outcome.unwritten:
        sections.append(("behavior files not written", list(outcome.unwritten)))
    if problems:
        if outcome.gate_failed:
            problems.insert(0, "the run fails: significant regressions or refused comparisons")
        sections.append(("behavior regressions", problems))
    return sections

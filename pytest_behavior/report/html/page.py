"""The report as one self-contained HTML page: verdicts, comparisons, flips, every case.

Nothing is fetched (a Content-Security-Policy forbids it) and the only script is
the report's own (report/html/assets.py); every value from the report is escaped
here, or written as text by that script. The case table's data and the flipped
cases come from report/html/cases.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.report.charts import (
    CORRELATION,
    PERCENT,
    Bar,
    label_width,
    rate_bars,
)
from pytest_behavior.report.document import (
    report_results,
    scored_by_text,
)
from pytest_behavior.report.html.assets import SCRIPT, STYLE, content_security_policy
from pytest_behavior.report.html.cases import (
    case_section,
    case_status,
    flip_section,
    group_labels,
)
from pytest_behavior.report.html.comparisons import (
    CHART_WIDTH,
    comparison_section,
    side_by_side_section,
)
from pytest_behavior.report.html.details import trait_details
from pytest_behavior.report.html.measures import (
    STATUS_WORDS,
    Measure,
    badge,
    measures,
    verdict_class,
)
from pytest_behavior.verdicts.compare import COMPARISON_KINDS
from pytest_behavior.verdicts.integrity import flag_messages, flags_text, split_text

_DIRECTION = {"up": "↑ bad", "down": "↓ bad", "both": "↕ bad"}
_KNOWN_FIELDS = {
    "schema_version",
    "plugin_version",
    "created",
    "models",
    "confidence",
    "results",
    "cost_usd",
    "serving_stacks",
    "baseline",
    "kind",
}


def _chart_status(result: TraitResult, measure: Measure) -> str:
    return "error" if result.verdict == "error" else verdict_class(measure.verdict)


def _verdict_charts(results: Sequence[TraitResult], labels: Sequence[str]) -> list[str]:
    rates, correlations = [], []
    for label, result in zip(labels, results, strict=True):
        found = measures(result)
        for measure in found:
            status = _chart_status(result, measure)
            shown = measure.short_text()
            bar = Bar(
                label=label,
                rate=measure.value,
                low=measure.low,
                high=measure.high,
                threshold_max=measure.threshold_max,
                threshold_min=measure.threshold_min,
                status=status,
                note=f"{shown} {STATUS_WORDS[status].upper()}",
            )
            if measure.correlation:
                correlations.append(bar)
            elif measure.verdict is not None or len(found) == 1:
                rates.append(bar)
    level = f"{100 * results[0].confidence:g}%" if results else ""
    aligned = label_width(labels)
    parts = []
    if rates:
        parts += [
            "<h3>Matching rate</h3>",
            f"<p class='note'>Bars: the rate of answers matching the behavior; whiskers: its "
            f"{level} Wilson interval; dashed: the threshold, shaded on its failing side. "
            "A verdict fails when the whole interval is beyond the threshold and is "
            "inconclusive while the interval straddles it.</p>",
            rate_bars(rates, width=CHART_WIDTH, scale=PERCENT, labels_width=aligned),
        ]
    if correlations:
        parts += [
            "<h3>Correlation with the share of women (winogenerated)</h3>",
            "<p class='note'>Pearson r across occupations of p(female) &minus; p(male) with the "
            f"share of women in the occupation; whiskers: its {level} Fisher z interval; "
            "dashed: the max_correlation threshold.</p>",
            rate_bars(correlations, width=CHART_WIDTH, scale=CORRELATION, labels_width=aligned),
        ]
    return parts


def _lines(texts: Sequence[str]) -> str:
    return "".join(f"<span class='line'>{escape(text)}</span>" for text in texts if text)


def _interval_note(result: TraitResult) -> str:
    """How the interval was made, where it is not the fixed-n Wilson interval."""
    notes = []
    if result.sequential:
        sequential = result.sequential
        notes.append(
            f"anytime-valid; {sequential['cases_used']} of {sequential['cases_available']} "
            f"cases asked, {sequential['stopped']}"
        )
    if result.sampling:
        sampling = result.sampling
        notes.append(
            f"{sampling['samples']} samples per case at temperature {sampling['temperature']:g}; "
            f"design effect {sampling['design_effect']:.2f}, {sampling['unstable']} unstable"
        )
    return "".join(f"<span class='line small'>{escape(note)}</span>" for note in notes)


def _verdict_table(results: Sequence[TraitResult]) -> str:
    level = f"{100 * results[0].confidence:g}% CI" if results else "CI"
    headers = ["trait", "model", "measure", level, "threshold", "n", "unparseable", "errors"]
    headers += ["scored by", "answers", "verdict", "flags", ""]
    rows = []
    for group, result in enumerate(results):
        found = measures(result)
        description = (
            f"<span class='line small'>{escape(result.description)}</span>"
            if result.description
            else ""
        )
        thresholds = [m.threshold_text() for m in found if m.verdict is not None]
        thresholds.append(f"({_DIRECTION.get(result.bad_direction, result.bad_direction)})")
        cells = [
            f"<td class='trait'><span class='line'>{escape(result.trait)}</span>{description}</td>",
            f"<td class='nowrap'>{escape(result.model)}</td>",
            f"<td class='nowrap'>{_lines([m.value_text() for m in found])}</td>",
            f"<td class='nowrap'>{_lines([m.interval_text() for m in found])}"
            f"{_interval_note(result)}</td>",
            f"<td class='nowrap'>{_lines(thresholds)}</td>",
            f"<td class='num'>{result.n}</td>",
            f"<td class='num'>{result.unparseable}</td>",
            f"<td class='num'>{result.errors}</td>",
            f"<td>{escape(scored_by_text(result))}</td>",
            f"<td>{escape(split_text(result.answer_split))}</td>",
            f"<td>{badge(result.verdict)}</td>",
            f"<td>{escape(flags_text(result))}</td>",
            f"<td><a href='#cases' data-show-group='{group}'>cases</a></td>",
        ]
        rows.append(
            f"<tr class='trait-row' data-verdict='{verdict_class(result.verdict)}'>"
            f"{''.join(cells)}</tr>"
        )
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return (
        f"<div class='wrap'><table id='verdicts-table'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _flag_list(results: Sequence[TraitResult]) -> str:
    """Each error reason and warning in full (the table's flags column is short)."""
    items = []
    for result in results:
        for line in flag_messages(result, f"{result.trait} [{result.model}]"):
            kind = "error-flag" if ": ERROR, " in line else "warning-flag"
            items.append(f"<li class='{kind}'>{escape(line)}</li>")
    return f"<ul class='flags'>{''.join(items)}</ul>" if items else ""


def _legend() -> str:
    keys = "".join(
        f"<span><span class='badge {status}'>{escape(word)}</span></span>"
        for status, word in STATUS_WORDS.items()
    )
    return f"<div class='legend'>{keys}</div>"


def _summary(results: Sequence[TraitResult]) -> str:
    counts = {status: 0 for status in STATUS_WORDS}
    for result in results:
        counts[verdict_class(result.verdict)] += 1
    chips = [f"<strong>{len(results)} verdicts</strong>"]
    chips += [
        f"<span class='badge {status}'>{count} {escape(STATUS_WORDS[status])}</span>"
        for status, count in counts.items()
        if count
    ]
    comparisons = [
        comparison
        for result in results
        for key, _ in COMPARISON_KINDS
        if (comparison := result.compared(key)) is not None
    ]
    regressed = sum(1 for comparison in comparisons if comparison.regressed)
    refused = sum(1 for comparison in comparisons if comparison.refused is not None)
    if regressed:
        chips.append(f"<span class='badge fail'>{regressed} regressed</span>")
    if refused:
        chips.append(f"<span class='badge error'>{refused} comparisons refused</span>")
    not_run = sum(1 for r in results for case in r.cases if case_status(case) == "not-run")
    if not_run:
        chips.append(f"<span class='badge not-run'>{not_run} cases not run</span>")
    return f"<div class='summary'>{' '.join(chips)}</div>"


def _meta(report: dict[str, Any]) -> str:
    facts = [
        f"models: {', '.join(str(model) for model in report.get('models', []))}",
        f"created {report.get('created', '?')}",
        f"pytest-behavior {report.get('plugin_version', '?')}",
        f"{100 * float(report.get('confidence', 0.95)):g}% confidence",
    ]
    if report.get("baseline"):
        facts.append(f"baseline {report['baseline']}")
    if report.get("cost_usd") is not None:
        facts.append(f"cost ${report['cost_usd']}")
    stacks = report.get("serving_stacks") or {}
    if isinstance(stacks, dict):
        facts += [f"serving stack of {model}: {stack}" for model, stack in stacks.items() if stack]
    # Fields a conftest.py added through the pytest_behavior_report hook.
    facts += [
        f"{name}: {value}"
        for name, value in report.items()
        if name not in _KNOWN_FIELDS and isinstance(value, str | int | float | bool)
    ]
    return f"<p class='meta'>{escape(' · '.join(facts))}</p>"


# The entries of history.load_history, whatever their type: this page only hands them
# to trend.trend_svg.
HistoryEntries = Sequence[Any]


def render_html(report: dict[str, Any], history: HistoryEntries | None = None) -> str:
    """The page for a JSON report; with ``history`` (history.load_history), its trend too."""
    results = report_results(report)
    labels = group_labels(results)
    verdicts = [
        '<section id="verdicts"><h2>Verdicts</h2>',
        _legend(),
        *_verdict_charts(results, labels),
        _verdict_table(results),
        _flag_list(results),
        "</section>",
    ]
    models = report.get("models") or []
    # (anchor, link text, section); an empty section is left out, and so is its link.
    sections = [
        ("verdicts", "Verdicts", "".join(verdicts)),
        (
            "side-by-side",
            "Side by side",
            side_by_side_section(results, models) if len(models) > 1 else "",
        ),
        *(
            (anchor, name, comparison_section(results, key, reference, report))
            for (key, reference), (anchor, name) in zip(
                COMPARISON_KINDS,
                (("baseline", "Baseline"), ("reference-model", "First model")),
                strict=True,
            )
        ),
        ("flips", "Flipped cases", flip_section(results)),
        ("traits", "Traits", trait_details(results, labels)),
        ("cases", "Cases", case_section(results)),
        ("history", "History", _history_section(history)),
    ]
    nav = "".join(
        f"<a href='#{anchor}'>{escape(name)}</a>" for anchor, name, html in sections if html
    )
    body = "".join(html for _, _, html in sections)
    return "\n".join(
        [
            "<!doctype html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            f'<meta http-equiv="Content-Security-Policy" '
            f'content="{content_security_policy(SCRIPT)}">',
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            "<link rel='icon' href='data:,'>",
            "<title>Behavior report</title>",
            f"<style>{STYLE}</style></head><body>",
            "<header><h1>Behavior report</h1>",
            _meta(report),
            _summary(results),
            f"<nav>{nav}</nav></header>",
            f"<main>{body}</main>",
            "<footer>One self-contained file: it loads nothing from the network.</footer>",
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def _history_section(history: HistoryEntries | None) -> str:
    if not history:
        return ""
    from pytest_behavior.report.trend import trend_svg

    return (
        f'<section id="history"><h2>History</h2><p class="note">{len(history)} '
        f"{'run' if len(history) == 1 else 'runs'}.</p>"
        f"{trend_svg(history)}</section>"
    )


def write_html(report: dict[str, Any], path: Path, history: HistoryEntries | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, history), encoding="utf-8")

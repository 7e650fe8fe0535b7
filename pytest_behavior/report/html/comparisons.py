"""The HTML report's comparisons: models side by side, and each run against its reference.

Per trait the change in matching rate drawn with its interval, then the table the
terminal prints (report.comparison_rows) with each result as a coloured badge, and
every refused comparison with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pytest_behavior.outcomes import Comparison, TraitResult
from pytest_behavior.report.charts import Bar, points_scale, rate_bars
from pytest_behavior.report.document import COMPARISON_HEADERS, comparison_rows
from pytest_behavior.report.html.cases import group_labels, status_class
from pytest_behavior.report.html.measures import badge, measures

CHART_WIDTH = 960


def side_by_side_section(results: Sequence[TraitResult], models: Sequence[str]) -> str:
    """Traits as rows, models as columns: the gating measure and verdict of each."""
    rows: dict[tuple[str, str], dict[str, TraitResult]] = {}
    for result in results:
        rows.setdefault((result.spec, result.trait), {})[result.model] = result
    body = []
    for (_, trait), by_model in rows.items():
        cells = []
        for model in models:
            found = by_model.get(model)
            if found is None:
                cells.append("<td>—</td>")
                continue
            measure = measures(found)[0]
            cells.append(
                f"<td class='nowrap'>{escape(measure.value_text())} "
                f"<span class='small'>({escape(measure.interval_text())})</span> "
                f"{badge(found.verdict)}</td>"
            )
        body.append(f"<tr><td>{escape(trait)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{escape(model)}</th>" for model in models)
    return (
        '<section id="side-by-side"><h2>Side by side</h2>'
        f"<div class='wrap'><table id='side-by-side-table'><thead><tr><th>trait</th>{head}"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


_ANCHORS = {"comparison": "baseline", "model_comparison": "reference-model"}
# The columns of COMPARISON_HEADERS that read best unbroken: paired .. p (Holm).
_NUMERIC = frozenset(range(3, 9))

Compared = tuple[str, TraitResult, Comparison]


def comparison_section(
    results: Sequence[TraitResult], key: str, reference: str, report: dict[str, Any]
) -> str:
    """The comparisons under ``key`` (a COMPARISON_KINDS field) against ``reference``."""
    labels = group_labels(results)
    compared: list[Compared] = []
    refused: list[tuple[str, str]] = []
    for label, result in zip(labels, results, strict=True):
        comparison = result.compared(key)
        if comparison is not None and comparison.refused is not None:
            refused.append((label, comparison.refused))
        elif comparison is not None:
            compared.append((label, result, comparison))
    if not compared and not refused:
        return ""
    named = report.get("baseline") if key == "comparison" else (report.get("models") or [None])[0]
    parts = [
        f'<section id="{_ANCHORS.get(key, key)}"><h2>Against the {escape(reference)}'
        f"{f' ({escape(str(named))})' if named else ''}</h2>"
    ]
    if compared:
        family = compared[0][2].family_size
        level = f"{100 * compared[0][1].confidence:g}%"
        parts += [
            "<p class='note'>Per trait, the cases both runs scored, paired by their id: the "
            f"change in matching rate (points) with its {level} interval, an exact McNemar "
            f"test of the flips, p-values Holm-adjusted across {family} comparisons. Shaded: "
            "the bad direction of change.</p>",
            _delta_chart(compared),
            _comparison_table(results, key, compared),
        ]
    if refused:
        items = "".join(
            f"<li><span class='badge error'>refused</span> {escape(label)}: {escape(why)}</li>"
            for label, why in refused
        )
        parts.append(f"<ul class='refused'>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def _delta_chart(compared: Sequence[Compared]) -> str:
    bars = []
    for label, result, comparison in compared:
        # The tolerance is known where the change was significant; elsewhere 0 marks
        # which side of no change is the bad one.
        bound = comparison.tolerance if comparison.tolerance is not None else 0.0
        direction, delta = result.bad_direction, comparison.delta
        paired = comparison.n_paired > 0 and delta is not None
        bars.append(
            Bar(
                label=label,
                rate=delta,
                low=comparison.ci_low if paired else None,
                high=comparison.ci_high if paired else None,
                threshold_max=bound if direction in ("up", "both") else None,
                threshold_min=-bound if direction in ("down", "both") else None,
                status=status_class(comparison),
                note=f"{100 * (delta or 0.0):+.1f} {_status_word(comparison)}"
                if paired
                else "no paired cases",
            )
        )
    extents = [
        value for _, _, c in compared if c.n_paired for value in (c.ci_low, c.ci_high, c.delta)
    ]
    return rate_bars(bars, width=CHART_WIDTH, scale=points_scale(extents))


def _comparison_table(
    results: Sequence[TraitResult], key: str, compared: Sequence[Compared]
) -> str:
    """The terminal's comparison table, the result of each as a badge."""
    rows = []
    for (_, result, comparison), cells in zip(compared, comparison_rows(results, key), strict=True):
        text = "".join(
            f"<td{' class=nowrap' if column in _NUMERIC else ''}>"
            f"{escape(cell.replace('->', '→'))}</td>"
            for column, cell in enumerate(cells[:-1])
        )
        rows.append(
            f"<tr class='comparison-row'>{text}<td><span class='badge "
            f"{status_class(comparison)}'>{escape(cells[-1])}</span></td></tr>"
        )
        if comparison.added or comparison.removed:
            rows.append(
                f"<tr><td colspan='{len(cells)}' class='small'>{escape(result.trait)} "
                f"[{escape(result.model)}]: {len(comparison.added)} cases added and "
                f"{len(comparison.removed)} removed since the reference (not paired)</td></tr>"
            )
    head = "".join(f"<th>{escape(header)}</th>" for header in COMPARISON_HEADERS)
    return (
        f"<div class='wrap'><table class='comparisons' data-kind='{escape(key)}'><thead><tr>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _status_word(comparison: Comparison) -> str:
    if comparison.regressed:
        return "REGRESSED"
    return "improved" if comparison.improved else "not significant"

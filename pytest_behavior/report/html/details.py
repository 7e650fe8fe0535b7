"""The HTML report's per-trait details: why the verdict, how it was scored, the prompt.

One ``<details>`` per result, open when it fails: the verdict sentence the terminal
prints, the answer split and warnings, the prompt template, and for winogenerated
the paper's per-occupation gaps, drawn and tabled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.report.charts import gap_scatter
from pytest_behavior.report.document import scored_by_text
from pytest_behavior.report.html.measures import badge
from pytest_behavior.verdicts.integrity import split_text
from pytest_behavior.verdicts.results import explain_verdict


def _number(value: Any, digits: int = 3) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.{digits}f}"


def _facts(result: TraitResult) -> list[str]:
    split = result.answer_split or {}
    facts = [
        f"spec: {result.spec}" + (f" (source {result.source})" if result.source else ""),
        f"family: {result.family or 'generic'}",
        f"scoring: {result.scoring}"
        + (f", used {result.scoring_used}" if result.scoring_used else "")
        + f"; decided by {scored_by_text(result)}",
        f"answers: {split_text(result.answer_split)}",
    ]
    if split.get("matching"):
        facts.append(f"matching answer by case: {split_text({'choices': split['matching']})}")
    facts.append(
        f"scored {result.n} (matching {result.matches}), unparseable {result.unparseable}, "
        f"request errors {result.errors}; a verdict needs {result.min_scored} scored"
    )
    for name, value in (
        ("mean probability of the matching answer", result.mean_matching_probability),
        ("mean probability on the labelled answers", result.mean_labelled_mass),
        ("median probability on the labelled answers", result.median_labelled_mass),
        ("mean label confidence", result.label_confidence_mean),
    ):
        if value is not None:
            facts.append(f"{name}: {_number(value)}")
    if result.median_labelled_mass is None and result.labelled_mass_note:
        facts.append(f"probability on the labelled answers: unknown, {result.labelled_mass_note}")
    facts.append(f"choices: {result.choices}")
    if result.contradictions:
        facts.append(
            f"top-k contradicted by the text: {result.contradictions} "
            "(decided by the text, or unparseable)"
        )
    if result.serving_stack:
        facts.append(f"serving stack: {result.serving_stack}")
    if result.regression_tolerance is not None:
        facts.append(f"regression tolerance: {100 * result.regression_tolerance:g} points")
    if result.shuffle_choices:
        facts.append("choices shuffled (re-lettered per case)")
    return facts


def _occupations(summary: Mapping[str, Any]) -> str:
    """Winogenerated's per-occupation table and scatter, widest gaps first."""
    rows = [row for row in summary.get("occupations") or [] if isinstance(row, Mapping)]
    if not rows:
        return ""
    points = [
        (str(row.get("occupation")), float(row["bls_percent_women"]), float(row["gap"]))
        for row in rows
        if isinstance(row.get("bls_percent_women"), int | float)
        and isinstance(row.get("gap"), int | float)
    ]
    ordered = sorted(rows, key=lambda row: -abs(float(row.get("gap") or 0.0)))
    body = "".join(
        f"<tr><td>{escape(str(row.get('occupation')))}</td>"
        f"<td class='num'>{_number(row.get('bls_percent_women'), 1)}%</td>"
        f"<td class='num'>{escape(str(row.get('n')))}</td>"
        f"<td class='num'>{_number(row.get('p_female'))}</td>"
        f"<td class='num'>{_number(row.get('p_male'))}</td>"
        f"<td class='num'>{_number(row.get('p_neutral'))}</td>"
        f"<td class='num'>{_number(row.get('gap'))}</td></tr>"
        for row in ordered
    )
    mean_gap = _number(summary.get("mean_gap"))
    return (
        f"<p>Per occupation, p(female) &minus; p(male) against its share of women "
        f"({summary.get('n_occupations')} occupations; mean gap {mean_gap}, mean |gap| "
        f"{_number(summary.get('mean_abs_gap'))}).</p>"
        f"{gap_scatter(points)}"
        "<div class='wrap'><table class='occupations'><thead><tr><th>occupation</th>"
        "<th>women</th><th>sentences</th><th>p(female)</th><th>p(male)</th>"
        "<th>p(neutral)</th><th>gap</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def trait_details(results: Sequence[TraitResult], labels: Sequence[str]) -> str:
    if not results:
        return ""
    blocks = []
    for group, (label, result) in enumerate(zip(labels, results, strict=True)):
        facts = "".join(f"<li>{escape(fact)}</li>" for fact in _facts(result))
        warnings = "".join(
            f"<li class='warning-flag'>warning: {escape(str(warning.get('message')))}</li>"
            for warning in result.warnings or ()
        )
        if result.verdict_error:
            warnings = f"<li class='error-flag'>error: {escape(result.verdict_error)}</li>" + (
                warnings
            )
        description = f"<p>{escape(result.description)}</p>" if result.description else ""
        prompt = (
            f"<p>Prompt template:</p><pre>{escape(result.prompt)}</pre>" if result.prompt else ""
        )
        summary = result.family_summary
        family = _occupations(summary) if summary else ""
        opened = " open" if result.verdict in ("fail", "error") else ""
        blocks.append(
            f"<details class='trait' id='trait-{group}'{opened}><summary>"
            f"{badge(result.verdict)} <strong>{escape(label)}</strong>: "
            f"{escape(explain_verdict(result))}</summary>{description}"
            f"<ul class='flags'>{warnings}</ul><ul>{facts}</ul>{prompt}{family}"
            f'<p><button type="button" data-show-group="{group}">show its {len(result.cases)} '
            "cases</button></p></details>"
        )
    return (
        '<section id="traits"><h2>Traits</h2><p class="note">Failing and erroring verdicts are '
        "open.</p>" + "".join(blocks) + "</section>"
    )

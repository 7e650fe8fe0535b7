"""The HTML report's cases: the flipped cases of each comparison, and every case as data.

The case table is rendered in the browser from one JSON document embedded in the
page (assets.SCRIPT), so 10,000 cases cost one parse, not 10,000 rows
of markup. Each case is an array whose positions are CASE_FIELDS; the flipped
cases come first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from pytest_behavior.outcomes import CaseOutcome, Comparison, Flip, TraitResult
from pytest_behavior.report.document import comparison_status
from pytest_behavior.verdicts.compare import COMPARISON_KINDS

CASE_FIELDS = (
    "group",
    "index",
    "id",
    "question",
    "answer",
    "choice",
    "probabilities",
    "status",
    "path",
    "flips",
    "error",
    "cut",
)
# Reports written before questions were kept whole cut them to this many characters,
# the last three "..."; such a question is marked as cut.
QUESTION_LIMIT = 100
CASE_STATUSES = {
    "yes": "matched",
    "no": "not matched",
    "unparseable": "unparseable",
    "error": "request error",
    "not-run": "not run",
}
PROBABILITIES_SHOWN = 4
FLIPS_SHOWN = 10


def group_names(results: Sequence[TraitResult]) -> list[tuple[str, str]]:
    """(trait, model) per result; the trait with its spec file where two specs share it."""
    keys = [(result.trait, result.model) for result in results]
    return [
        (f"{result.trait} ({result.spec})" if keys.count(key) > 1 else result.trait, result.model)
        for key, result in zip(keys, results, strict=True)
    ]


def group_labels(results: Sequence[TraitResult]) -> list[str]:
    """ "trait [model]" per result, as the terminal names it."""
    return [f"{trait} [{model}]" for trait, model in group_names(results)]


def case_status(case: CaseOutcome) -> str:
    """One of CASE_STATUSES."""
    if case.error is not None:
        return "not-run" if case.not_run else "error"
    if case.matched is None:
        return "unparseable"
    return "yes" if case.matched else "no"


def _number(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.1e}"


def probability_text(case: CaseOutcome) -> str:
    """One line per choice, most probable first: "Yes 0.85"; empty when none is known."""
    probabilities: dict[str, float] = dict(case.probabilities or {})
    if not probabilities and case.logprobs:
        probabilities = {label: math.exp(value) for label, value in case.logprobs.items()}
    usable = {
        label: float(value)
        for label, value in probabilities.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    ordered = sorted(usable.items(), key=lambda item: -item[1])
    lines = [f"{label.strip() or repr(label)} {_number(p)}" for label, p in ordered]
    if len(lines) > PROBABILITIES_SHOWN:
        lines = [*lines[:PROBABILITIES_SHOWN], f"+{len(lines) - PROBABILITIES_SHOWN} more"]
    if case.topk_bound:
        lines.append("(unlisted: bounded)")
    mass = case.labelled_mass
    if mass is not None and math.isfinite(mass) and mass < 0.995:
        lines.append(f"labelled mass {_number(mass)}")
    return "\n".join(lines)


def path_text(case: CaseOutcome) -> str | None:
    if case.path is None:
        return None
    if case.contradiction:
        return f"{case.path} (top-k contradicted)"
    return f"{case.path} (fallback)" if case.fallback else case.path


def _flips_by_case(result: TraitResult) -> dict[str, list[list[Any]]]:
    found: dict[str, list[list[Any]]] = {}
    for key, reference in COMPARISON_KINDS:
        comparison = result.compared(key)
        if comparison is None:
            continue
        for flip in comparison.flips:
            found.setdefault(flip.id, []).append(
                [reference, 1 if flip.now else 0, flip.answer_before]
            )
    return found


def is_cut(question: str) -> bool:
    return len(question) == QUESTION_LIMIT and question.endswith("...")


def case_rows(results: Sequence[TraitResult]) -> list[list[Any]]:
    """Every case as a CASE_FIELDS array: flipped cases first, then by trait and index."""
    rows: list[tuple[tuple[int, int, int], list[Any]]] = []
    for group, result in enumerate(results):
        flips = _flips_by_case(result)
        for case in result.cases:
            question = str(case.question or "")
            flipped = flips.get(case.id, [])
            row = [
                group,
                case.index,
                case.id,
                question,
                case.answer,
                None if case.choice is None else case.choice.strip() or repr(case.choice),
                probability_text(case),
                case_status(case),
                path_text(case),
                flipped,
                case.error,
                1 if is_cut(question) else 0,
            ]
            rows.append(((0 if flipped else 1, group, case.index), row))
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows]


def script_json(value: Any) -> str:
    """JSON that cannot end its <script> element: every <, > and & is a \\u escape.

    Only strings can hold those characters in JSON, where the escape means the same.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for character, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(character, escaped)
    return text


def case_data(results: Sequence[TraitResult]) -> str:
    groups = [list(name) for name in group_names(results)]
    return script_json({"groups": groups, "cases": case_rows(results)})


def case_section(results: Sequence[TraitResult]) -> str:
    """The searchable case table: its controls, an empty body and the cases as JSON."""
    labels = group_labels(results)
    total = sum(len(result.cases) for result in results)
    options = "".join(
        f'<option value="{group}">{escape(label)} ({len(result.cases)})</option>'
        for group, (label, result) in enumerate(zip(labels, results, strict=True))
    )
    statuses = "".join(
        f'<option value="{status}">{escape(text)}</option>'
        for status, text in CASE_STATUSES.items()
    )
    headers = [
        ("trait [model]", ""),
        ("#", "the case's position in its trait; hover for its content-derived id"),
        ("question", ""),
        ("answer", "what the model answered, or why the request failed"),
        ("choice", "the labelled answer the scoring picked"),
        ("probabilities", "per labelled answer, normalised over the choices"),
        ("matched", "the answer shows the behavior (answer_matching_behavior)"),
        ("scored by", ""),
        ("flipped", "changed between the reference and this run"),
    ]
    head = "".join(
        f'<th title="{escape(title)}">{escape(name)}</th>' if title else f"<th>{escape(name)}</th>"
        for name, title in headers
    )
    cut = sum(1 for result in results for case in result.cases if is_cut(case.question or ""))
    cut_note = (
        f"<p class='note'><span class='cut'>✂</span> {cut} questions end where the JSON report "
        f"cut them, at {QUESTION_LIMIT} characters with runs of white space joined: they are "
        "shown as far as the report holds them.</p>"
        if cut
        else ""
    )
    return (
        '<section id="cases"><h2>Cases</h2>'
        f"<p class='note'>{total} cases; flipped cases first. The search matches the question, "
        f"answer, choice, case id and error.</p>{cut_note}"
        '<div class="controls" role="search">'
        '<label>Search <input type="search" id="case-search" placeholder="text in a case"></label>'
        f'<label>Trait <select id="case-group"><option value="">all traits and models'
        f"</option>{options}</select></label>"
        f'<label>Matched <select id="case-status"><option value="">any</option>'
        f"{statuses}</select></label>"
        '<label><input type="checkbox" id="case-flipped"> flipped only</label>'
        '<button type="button" id="case-reset">reset</button>'
        '<span id="case-count"></span></div>'
        "<noscript><p>The case table needs JavaScript; every case is in the JSON report."
        "</p></noscript>"
        f'<div class="wrap"><table id="case-table"><thead><tr>{head}</tr></thead>'
        '<tbody id="case-rows"></tbody></table></div>'
        '<button type="button" id="case-more" hidden>show more</button>'
        f'<script type="application/json" id="behavior-cases">{case_data(results)}</script>'
        "</section>"
    )


def _flip_row(flip: Flip) -> str:
    change = "not matching → matching" if flip.now else "matching → not matching"
    cut = _CUT if is_cut(flip.question or "") else ""
    return (
        f"<tr><td class='num'>{flip.index}</td>"
        f"<td class='pre'>{escape(flip.question or '—')}{cut}</td>"
        f"<td class='nowrap'>{change}</td>"
        f"<td class='pre'>{escape('—' if flip.answer_before is None else flip.answer_before)}</td>"
        f"<td class='pre'>{escape('—' if flip.answer_after is None else flip.answer_after)}</td>"
        "</tr>"
    )


_CUT = " <span class='cut' title='cut to 100 characters in the JSON report'>✂</span>"


def status_class(comparison: Comparison) -> str:
    if comparison.refused is not None:
        return "error"
    if comparison.regressed:
        return "fail"
    return "pass" if comparison.improved else "neutral"


def flip_section(results: Sequence[TraitResult]) -> str:
    """Per comparison with flips, regressions first: the first flips, answers before and after."""
    labels = group_labels(results)
    blocks: list[tuple[tuple[int, int], str]] = []
    for group, result in enumerate(results):
        for key, reference in COMPARISON_KINDS:
            comparison = result.compared(key)
            if comparison is None or not comparison.flips:
                continue
            flips = comparison.flips
            shown = "".join(_flip_row(flip) for flip in flips[:FLIPS_SHOWN])
            status = comparison_status(comparison)
            rest = (
                f"<p class='note'>and {len(flips) - FLIPS_SHOWN} more, in the case table.</p>"
                if len(flips) > FLIPS_SHOWN
                else ""
            )
            # Regressions open; the rest one line each until asked for.
            opened = " open" if comparison.regressed else ""
            block = (
                f"<details class='flip-block' data-reference='{escape(reference)}'{opened}>"
                f"<summary><strong>{escape(labels[group])} vs {escape(comparison.reference)}"
                f"</strong> <span class='badge {status_class(comparison)}'>{escape(status)}"
                f"</span> {comparison.to_matching} to matching, {comparison.to_not_matching} "
                f"to not matching, of {comparison.n_paired} paired cases</summary>"
                f'<p><button type="button" data-show-group="{group}" data-flipped>'
                "show the flipped cases of this trait in the case table</button></p>"
                "<div class='wrap'><table class='flips'><thead><tr><th>#</th><th>question</th>"
                "<th>change</th><th>answer before</th><th>answer now</th></tr></thead>"
                f"<tbody>{shown}</tbody></table></div>{rest}</details>"
            )
            order = 0 if comparison.regressed else 1
            blocks.append(((order, -len(flips)), block))
    if not blocks:
        return ""
    blocks.sort(key=lambda item: item[0])
    return (
        '<section id="flips"><h2>Flipped cases</h2>'
        "<p class='note'>Paired cases whose outcome changed against the reference; "
        "regressions first, and open.</p>" + "".join(block for _, block in blocks) + "</section>"
    )

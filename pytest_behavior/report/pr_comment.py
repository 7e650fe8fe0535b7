"""One pull-request comment from a JSON report: the decision, then the evidence.

``render_comment(report)`` reads the report written by ``--behavior-report-json``
and renders GitHub-flavoured Markdown: a hidden marker (so a workflow finds and
updates the same comment on every push), a one-line headline, a table of every
comparison (regressed and failing traits first), the top flipped cases of each
regressed trait, and the verdicts of traits that have no baseline. Every number
comes from the report's ``Comparison`` and ``TraitResult`` values; nothing is
recomputed here.

Questions, answers, trait and model names come from users and models, so each is
escaped before it reaches the Markdown: no pipe can break a table, no ``<details>``
or ``<script>`` survives as HTML, and no ``@name`` pings anybody.

Command line::

    python -m pytest_behavior comment REPORT.json [--out FILE] [--flips N] [--run-url URL]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_behavior.outcomes import Comparison, Flip, TraitResult
from pytest_behavior.report.document import report_results, threshold_text
from pytest_behavior.verdicts.compare import COMPARISON_KINDS
from pytest_behavior.verdicts.results import format_rate

MARKER = "<!-- pytest-behavior -->"
# GitHub refuses a comment body longer than this.
GITHUB_COMMENT_LIMIT = 65_536
# Kept free below the limit for the truncation note and the tags it closes.
_RESERVED = 2_048

REGRESSED = "regressed"
IMPROVED = "improved"
NO_CHANGE = "no significant change"
INCONCLUSIVE = "inconclusive"
NOT_COMPARED = "not compared"
_STATUS_ICON = {
    REGRESSED: "🔴",
    IMPROVED: "🟢",
    NO_CHANGE: "⚪",
    INCONCLUSIVE: "🟡",
    NOT_COMPARED: "⚠️",
}
_VERDICT_TEXT = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "error": "❌ error",
    "inconclusive": "❔ inconclusive",
}
_FAILING_VERDICTS = ("fail", "error")

_NAME_WIDTH = 80
_QUESTION_WIDTH = 90
_ANSWER_WIDTH = 40
_REASON_WIDTH = 300

# Characters with a Markdown meaning, backslash-escaped ($ is GitHub's math).
_MARKDOWN_SPECIAL = frozenset("\\`*_[]()~|!$")
# Quotes need no entity: user text never lands inside an HTML attribute.
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# A zero-width space after these stops GitHub's @mention and #123/owner/repo#123
# references (which ping people and post backlinks on other issues).
_ZERO_WIDTH_SPACE = "\u200b"
_LINKING = frozenset("@#")
# Bidirectional overrides reorder what a reviewer sees ("Trojan Source").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_WHITESPACE = re.compile(r"\s+")


def escape(text: str) -> str:
    """``text`` made safe as inline Markdown inside a table cell.

    Whitespace (newlines included) collapses to single spaces, so a cell stays
    one row; HTML is entity-escaped, Markdown punctuation backslash-escaped, and
    ``@``/``#`` are followed by a zero-width space so nobody is pinged and no
    issue is cross-referenced. Control and bidirectional characters are dropped.
    """
    flat = _WHITESPACE.sub(" ", text).strip()
    pieces = []
    for character in flat:
        if character in _HTML_ENTITIES:
            pieces.append(_HTML_ENTITIES[character])
        elif character in _MARKDOWN_SPECIAL:
            pieces.append("\\" + character)
        elif character in _LINKING:
            pieces.append(character + _ZERO_WIDTH_SPACE)
        elif character in _BIDI_CONTROLS or unicodedata.category(character) == "Cc":
            continue
        else:
            pieces.append(character)
    return "".join(pieces)


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut at a word boundary when one is near."""
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" .,;:") + "…"


def _cell(text: str, width: int = _NAME_WIDTH) -> str:
    return escape(shorten(text, width))


def _answer(text: str | None) -> str:
    if text is None:
        return "—"
    shown = shorten(text, _ANSWER_WIDTH)
    return f"<code>{escape(shown)}</code>" if shown else "<i>(empty)</i>"


def _points(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}"


def _rate_with_interval(result: TraitResult) -> str:
    if result.rate is None:
        return "—"
    return (
        f"{format_rate(result.rate)} [{format_rate(result.ci_low)}, {format_rate(result.ci_high)}]"
    )


def _p_text(comparison: Comparison) -> str:
    if comparison.margin_p_adjusted is not None and comparison.tolerance is not None:
        # With a tolerance the test against its margin decides; McNemar's is in the JSON.
        return f"{comparison.margin_p_adjusted:.3g} (> {100 * comparison.tolerance:g} pts)"
    if comparison.p_adjusted is not None:
        return f"{comparison.p_adjusted:.3g}"
    return f"{comparison.p_value:.3g} (unadjusted)"


def comment_status(comparison: Comparison) -> str:
    """regressed / improved / no significant change / inconclusive / not compared.

    Read from the comparison as compare.decide_family decided it; "inconclusive"
    is a comparison with no paired case to test, "not compared" a refused one.
    """
    if comparison.refused is not None:
        return NOT_COMPARED
    if comparison.regressed:
        return REGRESSED
    if comparison.improved:
        return IMPROVED
    if comparison.n_paired == 0 or comparison.delta is None:
        return INCONCLUSIVE
    return NO_CHANGE


@dataclass(frozen=True)
class _Row:
    result: TraitResult
    comparison: Comparison
    status: str

    @property
    def rank(self) -> int:
        """Regressed first, then failing verdicts, refusals, and the calm rest."""
        if self.status == REGRESSED:
            return 0
        if self.result.verdict in _FAILING_VERDICTS:
            return 1
        order = (NOT_COMPARED, INCONCLUSIVE, IMPROVED, NO_CHANGE)
        return 2 + order.index(self.status)


def _rows(results: Sequence[TraitResult], key: str) -> list[_Row]:
    rows = []
    for result in results:
        comparison = result.compared(key)
        if comparison is not None:
            rows.append(_Row(result, comparison, comment_status(comparison)))
    # sorted() is stable: within a rank, the report's order (spec, trait, model).
    return sorted(rows, key=lambda row: row.rank)


def _verdict_rank(result: TraitResult) -> int:
    return 0 if result.verdict in _FAILING_VERDICTS else 1 if result.verdict != "pass" else 2


def _traits(count: int) -> str:
    return f"{count} trait" if count == 1 else f"{count} traits"


def baseline_label(report: dict[str, Any]) -> str | None:
    """What the headline calls the baseline: its file's stem ("main" for main.json)."""
    path = report.get("baseline")
    if not isinstance(path, str) or not path:
        return None
    return Path(path).stem or path


def _model_reference(rows: Sequence[_Row]) -> str:
    references = {row.comparison.reference for row in rows}
    return references.pop() if len(references) == 1 else "the first model"


@dataclass
class _Writer:
    """Lines of the comment, kept under a budget counted in UTF-16 code units
    (what GitHub may count; never fewer than Python's characters)."""

    limit: int
    lines: list[str] = field(default_factory=list)
    used: int = 0
    full: bool = False

    @staticmethod
    def cost(line: str) -> int:
        return len(line.encode("utf-16-le")) // 2 + 1

    def fits(self, *lines: str) -> bool:
        return not self.full and self.used + sum(map(self.cost, lines)) <= self.limit

    def add(self, *lines: str) -> bool:
        """Add all of ``lines``, or none and stop taking more."""
        if not self.fits(*lines):
            self.full = True
            return False
        self.lines.extend(lines)
        self.used += sum(map(self.cost, lines))
        return True


@dataclass
class _Omitted:
    rows: int = 0
    flip_lists: int = 0
    verdicts: int = 0

    def text(self) -> str:
        parts = []
        if self.rows:
            parts.append(f"{self.rows} comparison rows")
        if self.flip_lists:
            parts.append(f"the flipped cases of {_traits(self.flip_lists)}")
        if self.verdicts:
            parts.append(f"{self.verdicts} verdicts")
        return ", ".join(parts)


def _headline(
    results: Sequence[TraitResult],
    tables: Sequence[tuple[str, list[_Row]]],
    label: str | None,
) -> str:
    if not results:
        return "⚠️ no behavior verdicts in this report"
    against = {
        "comparison": "the baseline" + (f" ({escape(label)})" if label else ""),
    }
    problems = []
    compared = improved = 0
    for key, rows in tables:
        name = against.get(key) or escape(_model_reference(rows))
        regressed = sum(1 for row in rows if row.status == REGRESSED)
        if regressed:
            problems.append(f"{_traits(regressed)} regressed against {name}")
        compared += sum(1 for row in rows if row.status != NOT_COMPARED)
        improved += sum(1 for row in rows if row.status == IMPROVED)
    failing = sum(1 for result in results if result.verdict in _FAILING_VERDICTS)
    if failing:
        problems.append(
            f"{failing} trait fails its threshold"
            if failing == 1
            else f"{failing} traits fail their thresholds"
        )
    refused = sum(1 for _, rows in tables for row in rows if row.status == NOT_COMPARED)
    if refused:
        problems.append(f"{_traits(refused)} not compared (baseline refused)")
    if problems:
        return "❌ " + ", ".join(problems)
    inconclusive = sum(1 for result in results if result.verdict == "inconclusive")
    extra = f"; {inconclusive} inconclusive" if inconclusive else ""
    names = " and ".join(against.get(key) or escape(_model_reference(rows)) for key, rows in tables)
    if inconclusive == len(results):
        # Nothing passed: a green tick would read as "all passed" to a reviewer.
        compared_text = f"; no significant change against {names}" if compared else ""
        return (
            f"⚠️ nothing decided: {inconclusive} of {_traits(len(results))} inconclusive "
            f"(more cases narrow the intervals){compared_text}"
        )
    if compared:
        if improved:
            return (
                f"✅ no regression in {_traits(compared)} against {names}; "
                f"{improved} improved{extra}"
            )
        return f"✅ no significant change in {_traits(compared)} against {names}{extra}"
    return f"✅ no failing verdict in {_traits(len(results))} (no baseline to compare with){extra}"


def _table_header(*, reference: str, confidence: str) -> list[str]:
    return [
        f"| trait | model | verdict | rate now [{confidence} CI] | {reference} | paired "
        f"| change (pts) [{confidence} CI] | p (Holm) | status |",
        "| --- | --- | --- | --- | --- | ---: | --- | ---: | --- |",
    ]


def _row_line(row: _Row) -> str:
    result, comparison = row.result, row.comparison
    verdict = _VERDICT_TEXT.get(result.verdict, escape(result.verdict))
    status = f"{_STATUS_ICON[row.status]} {row.status}"
    if comparison.refused is not None:
        numbers = ["—", "—", "—", "—"]
    else:
        numbers = [
            format_rate(comparison.reference_rate),
            str(comparison.n_paired),
            f"{_points(comparison.delta)} [{_points(comparison.ci_low)}, "
            f"{_points(comparison.ci_high)}]",
            _p_text(comparison),
        ]
    cells = [
        f"**{_cell(result.trait)}**" if row.status == REGRESSED else _cell(result.trait),
        _cell(result.model),
        verdict,
        _rate_with_interval(result),
        *numbers,
        status,
    ]
    return "| " + " | ".join(cells) + " |"


def _bad_flips_first(result: TraitResult, comparison: Comparison) -> list[Flip]:
    """The flips in the direction that made the trait regress first, by case order."""
    direction = result.bad_direction
    worse_is_matching = (comparison.delta or 0.0) > 0 if direction == "both" else direction == "up"
    return sorted(comparison.flips, key=lambda flip: flip.now != worse_is_matching)


def _flip_block(result: TraitResult, comparison: Comparison, count: int) -> list[str]:
    shown = _bad_flips_first(result, comparison)[:count]
    lines = [
        f"**{_cell(result.trait)}** [{_cell(result.model)}] vs {_cell(comparison.reference)}: "
        f"{comparison.to_matching} to matching, {comparison.to_not_matching} to not matching",
        "",
        "| case | question | before | after | now |",
        "| ---: | --- | --- | --- | --- |",
    ]
    for flip in shown:
        lines.append(
            f"| {flip.index} | {escape(shorten(flip.question or '', _QUESTION_WIDTH))} "
            f"| {_answer(flip.answer_before)} | {_answer(flip.answer_after)} "
            f"| {'matching' if flip.now else 'not matching'} |"
        )
    if len(comparison.flips) > len(shown):
        lines += [
            "",
            f"… {len(comparison.flips) - len(shown)} more flipped cases in the JSON report",
        ]
    return [*lines, ""]


def _verdict_line(result: TraitResult) -> str:
    verdict = _VERDICT_TEXT.get(result.verdict, escape(result.verdict))
    reason = f" ({_cell(result.verdict_error, _REASON_WIDTH)})" if result.verdict_error else ""
    return (
        f"| {_cell(result.trait)} | {_cell(result.model)} | {verdict}{reason} "
        f"| {_rate_with_interval(result)} | {result.n} | {escape(threshold_text(result)) or '—'} |"
    )


def _link(url: str) -> str:
    if not re.match(r"https?://", url):
        raise ValueError(f"run_url must be an http(s) URL; got {url!r}")
    # Angle brackets keep parentheses and the like from ending the link early.
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def render_comment(report: dict[str, Any], *, flips: int = 5, run_url: str | None = None) -> str:
    """The Markdown of one PR comment for ``report`` (a --behavior-report-json dict).

    ``flips`` flipped cases are shown per regressed trait (0: none); ``run_url``,
    when given, links the workflow run that holds the full reports.
    """
    if flips < 0:
        raise ValueError(f"flips must be 0 or more; got {flips}")
    link = _link(run_url) if run_url is not None else None
    results = report_results(report)
    confidence = f"{100 * float(report.get('confidence') or 0.95):g}%"
    label = baseline_label(report)
    tables = [(key, rows) for key, _ in COMPARISON_KINDS if (rows := _rows(results, key))]
    uncompared = sorted(
        (
            result
            for result in results
            if all(result.compared(key) is None for key, _ in COMPARISON_KINDS)
        ),
        key=_verdict_rank,
    )
    regressed = [row for _, rows in tables for row in rows if row.status == REGRESSED]

    writer = _Writer(GITHUB_COMMENT_LIMIT - _RESERVED)
    omitted = _Omitted()
    writer.add(MARKER, f"### {_headline(results, tables, label)}", "")
    context = [f"{_traits(len(results))}", f"{confidence} intervals"]
    if tables:
        family = tables[0][1][0].comparison.family_size
        context.append(
            "paired cases, exact McNemar"
            + (f", p Holm-adjusted across {family} comparisons" if family else "")
        )
    if label:
        context.insert(0, f"baseline <code>{escape(str(report.get('baseline')))}</code>")
    if link:
        context.append(f"[full reports in the workflow run](<{link}>)")
    writer.add(" · ".join(context), "")

    for key, rows in tables:
        if key == "comparison":
            title, reference = "Against the baseline", "baseline"
        else:
            title, reference = f"Against {escape(_model_reference(rows))}", "reference"
        if not writer.add(
            f"#### {title}", "", *_table_header(reference=reference, confidence=confidence)
        ):
            omitted.rows += len(rows)
            continue
        for position, row in enumerate(rows):
            if not writer.add(_row_line(row)):
                omitted.rows += len(rows) - position
                break
        writer.add("")
        refusals = [
            f"- ⚠️ **{_cell(row.result.trait)}** [{_cell(row.result.model)}] not compared: "
            f"{_cell(row.comparison.refused, _REASON_WIDTH)}"
            for row in rows
            if row.comparison.refused is not None
        ]
        if refusals:
            writer.add(*refusals, "")

    flip_rows = [row for row in regressed if row.comparison.flips] if flips else []
    if flip_rows:
        summary = f"Flipped cases of {_traits(len(flip_rows))} that regressed (top {flips} each)"
        opened = writer.add("<details>", f"<summary>{summary}</summary>", "")
        for position, row in enumerate(flip_rows):
            if not opened or not writer.add(*_flip_block(row.result, row.comparison, flips)):
                omitted.flip_lists += len(flip_rows) - position
                break
        if opened:
            # Always closed: the reserve below the limit holds this tag.
            writer.lines += ["</details>", ""]

    if uncompared:
        against_baseline = label is not None or any(key == "comparison" for key, _ in tables)
        title = "Traits with no baseline" if against_baseline else "Verdicts"
        if writer.add(
            f"#### {title}",
            "",
            f"| trait | model | verdict | rate [{confidence} CI] | n | threshold |",
            "| --- | --- | --- | --- | ---: | --- |",
        ):
            for position, result in enumerate(uncompared):
                if not writer.add(_verdict_line(result)):
                    omitted.verdicts += len(uncompared) - position
                    break
            writer.add("")
        else:
            omitted.verdicts += len(uncompared)

    lines = writer.lines
    if writer.full:
        where = f"the [workflow run](<{link}>)" if link else "the JSON report"
        lines += [
            f"> ✂️ **Truncated** to stay under GitHub's {GITHUB_COMMENT_LIMIT:,}-character "
            f"comment limit; not shown: {omitted.text() or 'the rest'}. "
            f"The full tables are in {where}.",
            "",
        ]
    version = escape(str(report.get("plugin_version", "")))
    created = escape(str(report.get("created", "")))
    lines.append(f"<sub>pytest-behavior {version} · report created {created}</sub>")
    return "\n".join(lines) + "\n"

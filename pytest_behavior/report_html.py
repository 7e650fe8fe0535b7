"""The report as one self-contained HTML page with charts (no scripts, no network)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from pytest_behavior.charts import Bar, rate_bars
from pytest_behavior.compare import COMPARISON_KINDS
from pytest_behavior.integrity import flag_messages, split_text
from pytest_behavior.outcomes import TraitResult
from pytest_behavior.report import (
    COMPARISON_HEADERS,
    comparison_rows,
    report_results,
    summary_headers,
    summary_rows,
)
from pytest_behavior.results import format_rate

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; font-size: 13px; }
th { background: #f4f4f4; }
.fail, .error, .REGRESSED { color: #b00; font-weight: bold; }
.flags li { color: #a60; }
.pass { color: #070; }
details { margin: 0.3em 0; }
"""


def _table(headers: list[str], rows: list[list[str]], status_column: int) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        status = row[status_column].split()[0] if row[status_column] else ""
        cells = "".join(
            f'<td class="{escape(status)}">{escape(cell)}</td>'
            if i == status_column
            else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _flag_list(results: list[TraitResult]) -> list[str]:
    """Each error reason and warning in full (the table's flags column is short)."""
    items = [
        f"<li>{escape(line)}</li>"
        for result in results
        for line in flag_messages(result, f"{result.trait} [{result.model}]")
    ]
    return [f"<ul class='flags'>{''.join(items)}</ul>"] if items else []


def render_html(report: dict[str, Any]) -> str:
    results = report_results(report)
    level = f"{100 * report['confidence']:g}%"
    bars = [
        Bar(
            label=f"{r.trait} [{r.model}]",
            rate=r.rate,
            low=r.ci_low,
            high=r.ci_high,
            threshold_max=r.threshold.get("max_rate"),
            threshold_min=r.threshold.get("min_rate"),
            failed=r.verdict in ("fail", "error"),
        )
        for r in results
    ]
    headers = summary_headers(report["confidence"])
    verdict_column = headers.index("verdict")
    rows = [
        [cell.lower() if i == verdict_column else cell for i, cell in enumerate(row)]
        for row in summary_rows(results)
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Behavior report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Behavior report</h1>",
        f"<p>Models: {escape(', '.join(report['models']))}. Created {escape(report['created'])}. "
        f"Bars: matching rate; whiskers: {level} Wilson interval; dashed: threshold.</p>",
        rate_bars(bars),
        _table(headers, rows, verdict_column),
        *_flag_list(results),
    ]
    for key, reference in COMPARISON_KINDS:
        compared = comparison_rows(results, key)
        if compared:
            parts += [
                f"<h2>Against the {reference}</h2>",
                "<p>Exact McNemar on paired cases, Holm-adjusted.</p>",
            ]
            parts.append(_table(COMPARISON_HEADERS, compared, 9))
    parts.append("<h2>Cases</h2>")
    for r in results:
        items = "".join(
            f"<tr><td>{case.index}</td><td>{escape(str(case.question or ''))}</td>"
            f"<td>{escape(repr(case.answer))}</td><td>{escape(str(case.matched))}</td>"
            f"<td>{escape(str(case.path))}</td></tr>"
            for case in r.cases
        )
        parts.append(
            f"<details><summary>{escape(r.trait)} [{escape(r.model)}]: "
            f"{format_rate(r.rate)}, {escape(r.verdict)}</summary>"
            f"<p>answers: {escape(split_text(r.answer_split))}</p>"
            "<table><tr><th>#</th><th>question</th><th>answer</th><th>matched</th><th>path</th></tr>"
            f"{items}</table></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")

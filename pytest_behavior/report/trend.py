"""The trend of each trait across runs, drawn as the paper draws a behavior across
checkpoints: one small panel per trait, the measure per run with its interval as
a whisker, the threshold as a dashed line over a tinted failing side.

Small multiples rather than one shared plot: with a band per trait on one axis,
four traits already merge into grey. Runs sit on a shared x axis; their names go
under the axis when they fit, else the axis is numbered and a key follows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from pytest_behavior.report.charts import PALETTE, fit_text, text_width
from pytest_behavior.report.history import (
    HistoryEntry,
    HistoryPoint,
    Series,
    run_titles,
    trend_series,
    trend_table,
)

_PANEL_WIDTH, _PANEL_HEIGHT = 320, 190
_PLOT_LEFT, _PLOT_RIGHT, _PLOT_TOP, _PLOT_BOTTOM = 44, 14, 30, 34
_COLUMNS = 3
_FAIL = "#d62728"
_FONT = 'font-family="system-ui,sans-serif"'


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float
    ticks: tuple[float, ...]
    percent: bool

    def text(self, value: float) -> str:
        return f"{100 * value:.0f}%" if self.percent else f"{value:+.1f}".replace("+0.0", "0")


_RATE_AXIS = _Axis(0.0, 1.0, (0.0, 0.25, 0.5, 0.75, 1.0), percent=True)
_CORRELATION_AXIS = _Axis(-1.0, 1.0, (-1.0, -0.5, 0.0, 0.5, 1.0), percent=False)


def _point_text(point: HistoryPoint) -> str:
    if point.value is None:
        return "no value"
    if point.measure == "correlation":
        value = f"r = {point.value:+.2f}"
        interval = (
            f" [{point.low:+.2f}, {point.high:+.2f}]"
            if point.low is not None and point.high is not None
            else ""
        )
    else:
        value = f"{100 * point.value:.1f}%"
        interval = (
            f" [{100 * point.low:.1f}%, {100 * point.high:.1f}%]"
            if point.low is not None and point.high is not None
            else ""
        )
    return f"{value}{interval}, n={point.n}, {point.verdict or '?'}"


def _marker(x: float, y: float, point: HistoryPoint, colour: str, title: str) -> str:
    verdict = (point.verdict or "").lower()
    tip = f"<title>{escape(title)}</title>"
    if verdict == "fail":
        return (
            f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{_FAIL}" '
            f'stroke="#000" stroke-width="1" class="point fail">{tip}</rect>'
        )
    if verdict == "pass":
        return (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}" stroke="#fff" '
            f'stroke-width="1" class="point pass">{tip}</circle>'
        )
    return (  # inconclusive, error and older lines without a verdict: hollow
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#fff" stroke="{colour}" '
        f'stroke-width="2" class="point {escape(verdict or "unknown")}">{tip}</circle>'
    )


def _panel(
    series: Sequence[Series],
    titles: Sequence[str],
    colours: dict[str | None, str],
    origin: tuple[float, float],
    label_runs: bool,
) -> list[str]:
    left0, top0 = origin
    first = series[0]
    axis = _CORRELATION_AXIS if first.measure == "correlation" else _RATE_AXIS
    plot_width = _PANEL_WIDTH - _PLOT_LEFT - _PLOT_RIGHT
    plot_height = _PANEL_HEIGHT - _PLOT_TOP - _PLOT_BOTTOM
    left, top = left0 + _PLOT_LEFT, top0 + _PLOT_TOP
    runs = len(titles)

    def x(index: int) -> float:
        return left + plot_width * ((index + 0.5) / runs)

    def y(value: float) -> float:
        clipped = max(axis.low, min(axis.high, value))
        return top + plot_height * (axis.high - clipped) / (axis.high - axis.low)

    heading = first.trait + (" (correlation r)" if first.measure == "correlation" else "")
    # Bold runs about a tenth wider than text_width's regular-weight estimate.
    shown = escape(fit_text(heading, 13 * 1.1, _PANEL_WIDTH - 12))
    parts = [
        f'<g class="panel" data-trait="{escape(first.trait)}">',
        f'<text x="{left0 + 6}" y="{top0 + 16}" font-size="13" font-weight="600">'
        f"{shown}<title>{escape(heading)}</title></text>",
        f'<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" '
        'fill="#fafafa" stroke="#ccc"/>',
    ]
    bounds = _latest_bounds(series)
    for bound, failing_above in ((bounds[1], True), (bounds[0], False)):
        if bound is None:
            continue
        edge = y(bound)
        tint_top, tint_height = (
            (top, edge - top) if failing_above else (edge, top + plot_height - edge)
        )
        name = "max" if failing_above else "min"
        parts.append(
            f'<rect x="{left}" y="{tint_top:.1f}" width="{plot_width}" height="{tint_height:.1f}" '
            f'fill="{_FAIL}" fill-opacity="0.07"/>'
        )
        parts.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{edge:.1f}" y2="{edge:.1f}" '
            f'stroke="{_FAIL}" stroke-dasharray="5,3" stroke-width="1.2" class="threshold">'
            f"<title>threshold: {name} {axis.text(bound)}</title></line>"
        )
    for tick in axis.ticks:
        parts.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{left - 5}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#555">{axis.text(tick)}</text>'
        )
    for index, title in enumerate(titles):
        tick_text = fit_text(title, 10, plot_width / runs - 4) if label_runs else str(index + 1)
        parts.append(
            f'<text x="{x(index):.1f}" y="{top + plot_height + 14}" text-anchor="middle" '
            f'font-size="10" fill="#555">{escape(tick_text)}<title>{escape(title)}</title></text>'
        )
    for line in series:
        colour = colours[line.model]
        parts += _line(line, titles, colour, x, y)
    parts.append("</g>")
    return parts


def _line(
    line: Series,
    titles: Sequence[str],
    colour: str,
    x: Callable[[int], float],
    y: Callable[[float], float],
) -> list[str]:
    parts: list[str] = []
    path: list[str] = []
    for index, point in enumerate(line.points):
        if point is None or point.value is None:
            path.append("")  # a run without this trait breaks the line
            continue
        command = "M" if not path or path[-1] == "" else "L"
        path.append(f"{command}{x(index):.1f},{y(point.value):.1f}")
    drawn = " ".join(step for step in path if step)
    if drawn:
        parts.append(f'<path d="{drawn}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    for index, point in enumerate(line.points):
        if point is None or point.value is None:
            continue
        if point.low is not None and point.high is not None:
            cx, low, high = x(index), y(point.low), y(point.high)
            parts.append(
                f'<path d="M{cx:.1f},{low:.1f} V{high:.1f} M{cx - 3:.1f},{low:.1f} h6 '
                f'M{cx - 3:.1f},{high:.1f} h6" stroke="{colour}" stroke-width="1.2" '
                'class="interval"/>'
            )
        who = f" [{point.model}]" if line.model is not None else f" · {point.model}"
        title = f"{titles[index]}: {line.trait}{who}: {_point_text(point)}"
        parts.append(_marker(x(index), y(point.value), point, colour, title))
    return parts


def _latest_bounds(series: Sequence[Series]) -> tuple[float | None, float | None]:
    """(min, max) bounds of the newest run that states them."""
    for index in range(len(series[0].points) - 1, -1, -1):
        for line in series:
            point = line.points[index]
            if point is not None and (point.bound_min is not None or point.bound_max is not None):
                return point.bound_min, point.bound_max
    return None, None


def trend_panels(series: Sequence[Series], titles: Sequence[str]) -> str:
    """One SVG: a panel per trait (per measure), lines per model where runs hold several."""
    if not series:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="40" role="img">'
            f'<text x="8" y="24" font-size="13" {_FONT}>no runs to draw</text></svg>'
        )
    panels: dict[tuple[str, str], list[Series]] = {}
    for line in series:
        panels.setdefault((line.trait, line.measure), []).append(line)
    models = sorted({line.model for line in series}, key=lambda model: model or "")
    colours = {model: PALETTE[index % len(PALETTE)] for index, model in enumerate(models)}
    runs = max(len(titles), 1)
    room = (_PANEL_WIDTH - _PLOT_LEFT - _PLOT_RIGHT) / runs - 4
    label_runs = all(text_width(title, 10) <= room for title in titles)
    columns = min(_COLUMNS, len(panels))
    rows = -(-len(panels) // columns)
    legend_height = 22 if any(model is not None for model in models) else 0
    width = columns * _PANEL_WIDTH
    top = 22 + legend_height
    key_lines = (
        [] if label_runs else [f"{index + 1}: {title}" for index, title in enumerate(titles)]
    )
    height = top + rows * _PANEL_HEIGHT + 16 * len(key_lines) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="trend" {_FONT}>',
        '<text x="6" y="15" font-size="11" fill="#444">filled circle: pass · red square: fail · '
        "hollow: inconclusive or error · whiskers: interval · dashed: threshold</text>",
    ]
    if legend_height:
        offset = 6.0
        for model in models:
            name = model or ""
            parts.append(
                f'<rect x="{offset:.0f}" y="{26}" width="12" height="4" fill="{colours[model]}"/>'
                f'<text x="{offset + 16:.0f}" y="{32}" font-size="11">{escape(name)}</text>'
            )
            offset += 28 + text_width(name, 11)
    for position, lines in enumerate(panels.values()):
        origin = (
            (position % columns) * _PANEL_WIDTH,
            top + (position // columns) * _PANEL_HEIGHT,
        )
        parts += _panel(lines, titles, colours, origin, label_runs)
    key_top = top + rows * _PANEL_HEIGHT + 12
    for number, text in enumerate(key_lines):
        parts.append(
            f'<text x="8" y="{key_top + 16 * number}" font-size="11" fill="#333">'
            f"{escape(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(entries: Sequence[HistoryEntry], trait: str | None = None) -> str:
    return trend_panels(trend_series(entries, trait), run_titles(entries))


def trend_html(entries: Sequence[HistoryEntry], trait: str | None = None) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Behavior history</title></head>"
        "<body style='font-family:system-ui,sans-serif;margin:1.5em'><h1>Behavior history</h1>"
        f"<p>{len(entries)} runs. One panel per trait: the gated measure per run with its "
        "interval, and the threshold over its tinted failing side.</p>"
        f"{trend_svg(entries, trait)}<pre>{escape(trend_table(entries, trait))}</pre>"
        "</body></html>"
    )

"""Small dependency-free SVG charts for the HTML report and the history command.

Rates are drawn on a 0-100 % axis with their intervals as whiskers or bands,
like the figures of Perez et al. (2022): one row or line per trait.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


# One colour per outcome, shared by the charts and the HTML report's badges; each has
# a contrast of at least 4.5:1 against white, so white text on it stays readable.
STATUS_COLOURS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "inconclusive": "#9a6700",
    "error": "#8250df",
    "not-run": "#6e7781",
}
NEUTRAL_COLOUR = "#0969da"
_INK, _GRID = "#24292f", "#d8dee4"


@dataclass(frozen=True)
class Scale:
    """The value axis of an interval chart: its range, its ticks and how values read."""

    low: float
    high: float
    ticks: tuple[float, ...]
    unit: str  # "percent", "r" or "points"

    def text(self, value: float) -> str:
        if self.unit == "percent":
            return f"{100 * value:.1f}%"
        if self.unit == "points":
            return f"{100 * value:+.1f} pts"
        return f"{value:.3f}"

    def tick_text(self, value: float) -> str:
        if self.unit == "percent":
            return f"{100 * value:g}%"
        if self.unit == "points":
            return f"{100 * value:+g}" if value else "0"
        return f"{value:g}"

    @property
    def origin(self) -> float:
        """Where bars start: 0, or the end of the axis nearest to it."""
        return max(self.low, min(self.high, 0.0))


PERCENT = Scale(0.0, 1.0, (0.0, 0.25, 0.5, 0.75, 1.0), "percent")
CORRELATION = Scale(-1.0, 1.0, (-1.0, -0.5, 0.0, 0.5, 1.0), "r")


def points_scale(values: Sequence[float | None]) -> Scale:
    """A symmetric axis of rate changes wide enough for every value (at most +-100 points)."""
    extent = max((abs(value) for value in values if value is not None), default=0.0)
    reach = next((step for step in (0.1, 0.2, 0.25, 0.5) if extent <= step), 1.0)
    return Scale(-reach, reach, (-reach, -reach / 2, 0.0, reach / 2, reach), "points")


@dataclass(frozen=True)
class Bar:
    """One row of an interval chart: a value, its interval, its bounds and its outcome.

    ``status`` is one of STATUS_COLOURS (or "neutral"); without it ``failed`` picks
    fail or pass. ``note`` is the text right of the plot ("80.0% FAIL").
    """

    label: str
    rate: float | None
    low: float | None
    high: float | None
    threshold_max: float | None = None
    threshold_min: float | None = None
    failed: bool = False
    status: str | None = None
    note: str = ""

    @property
    def colour(self) -> str:
        status = self.status or ("fail" if self.failed else "pass")
        return STATUS_COLOURS.get(status, NEUTRAL_COLOUR)


# Average advance of a character, in ems, of common sans-serif faces; generous, so a
# label measured with it fits whichever face the viewer's system substitutes.
_NARROW, _WIDE = set("il.,:;'|!()[]{} ftrj"), set("mwMW@%")


def text_width(text: str, size: float) -> float:
    """Estimated rendered width of ``text`` at font size ``size`` (SVG text cannot wrap)."""
    ems = 0.0
    for char in text:
        if char in _NARROW:
            ems += 0.34
        elif char in _WIDE:
            ems += 0.9
        elif char.isupper() or char.isdigit():
            ems += 0.66
        else:
            ems += 0.58
    return ems * size


def fit_text(text: str, size: float, room: float) -> str:
    """``text``, or its start and an ellipsis, within ``room`` pixels."""
    if text_width(text, size) <= room:
        return text
    while text and text_width(text + "…", size) > room:
        text = text[:-1]
    return text + "…"


_LABEL_SIZE, _LABEL_ROOM, _STACKED_ROOM = 12, 420, 900


def label_width(labels: Sequence[str]) -> float:
    """The label column rate_bars needs for ``labels`` (to line several charts up)."""
    return max((text_width(label, _LABEL_SIZE) for label in labels), default=0.0)


@dataclass(frozen=True)
class _Rows:
    """Where rate_bars puts things: beside the plot, or with each label above its bar."""

    left: int  # where the plot starts
    right: int  # where it ends
    width: int
    height: int  # of one row
    stacked: bool

    def label(self, y: int) -> tuple[int, int, str, float]:
        """x, baseline, anchor and room of a label in the row starting at ``y``."""
        if self.stacked:
            return self.left, y + 13, "start", float(self.width - self.left - 4)
        return self.left - 10, y + 16, "end", float(_LABEL_ROOM)

    def middle(self, y: int) -> int:
        return y + (29 if self.stacked else 12)


def rate_bars(
    bars: Sequence[Bar],
    *,
    width: int = 640,
    scale: Scale = PERCENT,
    labels_width: float | None = None,
) -> str:
    """Horizontal bars with interval whiskers and threshold lines, one row per bar.

    The label column is as wide as the longest label, so no label is cut by the edge
    of the drawing; labels wider than 420 px go above their bars instead, across the
    whole width (one longer still is shortened, and given in full in its tooltip).
    The plot keeps at least 300 px. ``labels_width`` widens the label column, so
    that charts drawn one above the other line up.
    """
    top = 8
    widest = max(label_width([bar.label for bar in bars]), labels_width or 0.0)
    stacked = widest > _LABEL_ROOM
    left = 12 if stacked else int(widest) + 18
    # The notes are bold: a tenth wider than text_width's estimate.
    notes = max((text_width(bar.note, _LABEL_SIZE) for bar in bars), default=0.0)
    right = int(1.1 * notes) + 24
    plot = max(300, width - left - right)
    if stacked:  # wide enough for the label, up to a width that still fits a screen
        plot = max(plot, int(min(widest, _STACKED_ROOM)) - right)
    rows = _Rows(left, left + plot, left + plot + right, 40 if stacked else 24, stacked)
    height = top + rows.height * len(bars) + 28
    span = scale.high - scale.low

    def x(value: float) -> float:
        return left + plot * (max(scale.low, min(scale.high, value)) - scale.low) / span

    parts = [_svg_open(rows.width, height), *_x_axis(x, scale, top=top, bottom=height - 24)]
    for index, bar in enumerate(bars):
        parts.append(_bar_row(bar, x, scale, rows, y=top + index * rows.height))
    parts.append("</svg>")
    return "\n".join(parts)


def _bar_row(bar: Bar, x: Callable[[float], float], scale: Scale, rows: _Rows, *, y: int) -> str:
    colour, middle = bar.colour, rows.middle(y)
    tooltip = [bar.label, "-" if bar.rate is None else scale.text(bar.rate)]
    if bar.low is not None and bar.high is not None:
        tooltip.append(f"interval {scale.text(bar.low)} to {scale.text(bar.high)}")
    parts = [f'<g class="chart-row" data-status="{escape(bar.status or "")}">']
    # The side of each bound where the value is bad, lightly shaded.
    for bound, beyond in ((bar.threshold_max, scale.high), (bar.threshold_min, scale.low)):
        if bound is not None:
            start, end = sorted((x(bound), x(beyond)))
            parts.append(
                f'<rect x="{start:.1f}" y="{middle - 11}" width="{end - start:.1f}" '
                f'height="22" fill="{STATUS_COLOURS["fail"]}" fill-opacity="0.07"/>'
            )
    label_x, label_y, anchor, room = rows.label(y)
    parts.append(
        f'<text x="{label_x}" y="{label_y}" text-anchor="{anchor}" font-size="{_LABEL_SIZE}" '
        f'fill="{_INK}">{escape(fit_text(bar.label, _LABEL_SIZE, room))}</text>'
    )
    if bar.rate is not None:
        # A change that is not significant is drawn faintly: it is the usual case.
        opacity = 0.4 if bar.status == "neutral" else 0.8
        start, end = sorted((x(scale.origin), x(bar.rate)))
        parts.append(
            f'<rect x="{start:.1f}" y="{middle - 6}" width="{max(end - start, 1.5):.1f}" '
            f'height="12" fill="{colour}" fill-opacity="{opacity}" rx="1.5"/>'
        )
    if bar.low is not None and bar.high is not None:
        low, high = x(bar.low), x(bar.high)
        parts.append(
            f'<path d="M{low:.1f},{middle}H{high:.1f}M{low:.1f},{middle - 5}V{middle + 5}'
            f'M{high:.1f},{middle - 5}V{middle + 5}" stroke="{_INK}" stroke-width="1.5" '
            'fill="none"/>'
        )
    for bound, mark in ((bar.threshold_max, "at most"), (bar.threshold_min, "at least")):
        if bound is not None:
            tooltip.append(f"threshold {mark} {scale.text(bound)}")
            parts.append(
                f'<line x1="{x(bound):.1f}" x2="{x(bound):.1f}" y1="{middle - 11}" '
                f'y2="{middle + 11}" stroke="{_INK}" stroke-width="1.5" stroke-dasharray="4,3"/>'
            )
    if bar.note:
        parts.append(
            f'<text x="{rows.right + 10}" y="{middle + 4}" font-size="{_LABEL_SIZE}" '
            f'font-weight="600" fill="{colour}">{escape(bar.note)}</text>'
        )
    parts.append(
        f'<rect x="0" y="{y}" width="{rows.width}" height="{rows.height}" fill="transparent">'
        f"<title>{escape('; '.join(tooltip))}</title></rect></g>"
    )
    return "".join(parts)


def gap_scatter(
    points: Sequence[tuple[str, float, float]], *, width: int = 420, height: int = 240
) -> str:
    """Winogenerated's figure: per occupation, p(female) - p(male) against % women."""
    left, right, top, bottom = 46, 24, 10, 36
    plot_width, plot_height = width - left - right, height - top - bottom

    def x(share: float) -> float:
        return left + plot_width * max(0.0, min(100.0, share)) / 100

    def y(gap: float) -> float:
        return top + plot_height * (1 - (max(-1.0, min(1.0, gap)) + 1) / 2)

    parts = [_svg_open(width, height)]
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{_INK if tick == 0 else _GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{_INK}">{tick:+g}</text>'
        )
    for tick in range(0, 101, 25):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{top + plot_height + 15}" text-anchor="middle" '
            f'font-size="11" fill="{_INK}">{tick}%</text>'
        )
    parts.append(
        f'<text x="{left + plot_width / 2:.1f}" y="{height - 4}" text-anchor="middle" '
        f'font-size="11" fill="{_INK}">women in the occupation (BLS 2019)</text>'
    )
    for name, share, gap in points:
        parts.append(
            f'<circle cx="{x(share):.1f}" cy="{y(gap):.1f}" r="4" fill="{NEUTRAL_COLOUR}" '
            f'fill-opacity="0.7"><title>{escape(name)}: {share:g}% women, '
            f"gap {gap:+.2f}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
    )


def _x_axis(x: Callable[[float], float], scale: Scale, *, top: int, bottom: int) -> list[str]:
    parts = []
    for tick in scale.ticks:
        position = x(tick)
        stroke = _INK if tick == 0 and scale.low < 0 else _GRID
        parts.append(
            f'<line x1="{position:.1f}" x2="{position:.1f}" y1="{top}" y2="{bottom}" '
            f'stroke="{stroke}"/>'
            f'<text x="{position:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11" '
            f'fill="{_INK}">{escape(scale.tick_text(tick))}</text>'
        )
    return parts

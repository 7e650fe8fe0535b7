"""Small dependency-free SVG charts for the HTML report and the history command.

Rates are drawn on a 0-100 % axis with their intervals as whiskers or bands,
like the figures of Perez et al. (2022): one row or line per trait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


@dataclass(frozen=True)
class Bar:
    label: str
    rate: float | None
    low: float
    high: float
    threshold_max: float | None = None
    threshold_min: float | None = None
    failed: bool = False


def rate_bars(bars: Sequence[Bar], *, width: int = 640) -> str:
    """Horizontal bars with interval whiskers and threshold ticks, one row per bar."""
    row, left, right = 26, 230, 20
    height = row * len(bars) + 40
    plot = width - left - right

    def x(value: float) -> float:
        return left + plot * max(0.0, min(1.0, value))

    parts = [_svg_open(width, height)]
    parts += _x_axis(x, top=10, bottom=height - 25)
    for index, bar in enumerate(bars):
        y = 12 + index * row
        color = "#d62728" if bar.failed else "#1f77b4"
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(bar.label)}</text>"
        )
        if bar.rate is not None:
            parts.append(
                f'<rect x="{left}" y="{y + 4}" width="{x(bar.rate) - left:.1f}" height="14" '
                f'fill="{color}" fill-opacity="0.55"><title>{escape(bar.label)}: '
                f"{100 * bar.rate:.1f}%</title></rect>"
            )
        parts.append(
            f'<line x1="{x(bar.low):.1f}" x2="{x(bar.high):.1f}" y1="{y + 11}" y2="{y + 11}" '
            'stroke="#222" stroke-width="1.5"/>'
        )
        for bound, mark in ((bar.threshold_max, "max"), (bar.threshold_min, "min")):
            if bound is not None:
                parts.append(
                    f'<line x1="{x(bound):.1f}" x2="{x(bound):.1f}" y1="{y + 1}" y2="{y + 21}" '
                    f'stroke="#000" stroke-dasharray="3,2">'
                    f"<title>{mark}_rate {bound:g}</title></line>"
                )
    parts.append("</svg>")
    return "\n".join(parts)


def trend_lines(
    series: dict[str, list[tuple[float | None, float | None, float | None]]],
    labels: Sequence[str],
    *,
    width: int = 720,
    height: int = 320,
) -> str:
    """One line per series across runs (x = run), with a shaded interval band."""
    left, right, top, bottom = 50, 180, 15, 45
    plot_width, plot_height = width - left - right, height - top - bottom
    steps = max(1, len(labels) - 1)

    def x(index: int) -> float:
        return left + plot_width * index / steps

    def y(value: float) -> float:
        return top + plot_height * (1 - max(0.0, min(1.0, value)))

    parts = [_svg_open(width, height)]
    for tick in range(0, 101, 25):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y(tick / 100):.1f}" '
            f'y2="{y(tick / 100):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(tick / 100) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick}%</text>'
        )
    for index, label in enumerate(labels):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="10">{escape(label)}</text>'
        )
    for number, (name, points) in enumerate(sorted(series.items())):
        color = PALETTE[number % len(PALETTE)]
        known = [(i, p) for i, p in enumerate(points) if p[0] is not None]
        if not known:
            continue
        band = [f"{x(i):.1f},{y(p[2] if p[2] is not None else p[0] or 0):.1f}" for i, p in known]
        band += [
            f"{x(i):.1f},{y(p[1] if p[1] is not None else p[0] or 0):.1f}"
            for i, p in reversed(known)
        ]
        parts.append(f'<polygon points="{" ".join(band)}" fill="{color}" fill-opacity="0.12"/>')
        line = " ".join(f"{x(i):.1f},{y(p[0] or 0):.1f}" for i, p in known)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, p in known:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(p[0] or 0):.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)} @ {escape(labels[i])}: "
                f"{100 * (p[0] or 0):.1f}%</title></circle>"
            )
        parts.append(
            f'<text x="{left + plot_width + 8}" y="{top + 14 + 16 * number}" font-size="11" '
            f'fill="{color}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
    )


def _x_axis(x: object, *, top: int, bottom: int) -> list[str]:
    assert callable(x)
    parts = []
    for tick in range(0, 101, 25):
        position = x(tick / 100)
        parts.append(
            f'<line x1="{position:.1f}" x2="{position:.1f}" y1="{top}" y2="{bottom}" '
            'stroke="#eee"/>'
            f'<text x="{position:.1f}" y="{bottom + 15}" text-anchor="middle" font-size="11">'
            f"{tick}%</text>"
        )
    return parts

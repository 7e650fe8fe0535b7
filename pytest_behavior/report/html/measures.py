"""What the HTML report shows of a verdict: its status colour and its measures.

A trait is gated on its matching rate, except winogenerated with ``max_correlation``,
which is gated on the correlation r (and on the rate too where it has rate bounds).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.verdicts.results import format_rate

VERDICTS = ("pass", "fail", "inconclusive", "error")
STATUS_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "inconclusive": "inconclusive",
    "error": "error",
    "not-run": "not run",
}


def verdict_class(verdict: str | None) -> str:
    """The CSS class and colour of a verdict; anything unknown reads as not run."""
    return verdict if verdict in VERDICTS else "not-run"


def badge(verdict: str | None) -> str:
    status = verdict_class(verdict)
    return f"<span class='badge {status}'>{escape(STATUS_WORDS[status])}</span>"


@dataclass(frozen=True)
class Measure:
    """One gated (or reported) measure of a result: a rate, or winogenerated's r."""

    name: str
    value: float | None
    low: float | None
    high: float | None
    threshold_min: float | None
    threshold_max: float | None
    # None: reported, not gated.
    verdict: str | None
    correlation: bool = False

    def value_text(self) -> str:
        if not self.correlation:
            return f"{self.name} {format_rate(self.value)}"
        return "r undefined" if self.value is None else f"r = {self.value:.3f}"

    def interval_text(self) -> str:
        if self.low is None or self.high is None:
            return "—"
        if self.correlation:
            return f"{self.low:.3f} to {self.high:.3f}"
        return f"{format_rate(self.low)}\u2013{format_rate(self.high)}"

    def threshold_text(self) -> str:
        if self.correlation:
            return "" if self.threshold_max is None else f"r ≤ {self.threshold_max:g}"
        parts = []
        if self.threshold_min is not None:
            parts.append(f"≥ {format_rate(self.threshold_min)}")
        if self.threshold_max is not None:
            parts.append(f"≤ {format_rate(self.threshold_max)}")
        return " and ".join(parts) or "not gated"

    def short_text(self) -> str:
        """The value alone, for a chart's note: "80.0%", "0.912"."""
        if self.value is None:
            return "—"
        return f"{self.value:.3f}" if self.correlation else format_rate(self.value)


def measures(result: TraitResult) -> list[Measure]:
    """The result's measures, the one that gates first (winogenerated gates on r)."""
    summary = result.family_summary or {}
    bound = result.threshold.get("max_correlation")
    if bound is None:
        bound = summary.get("max_correlation")
    min_rate, max_rate = result.threshold.get("min_rate"), result.threshold.get("max_rate")
    rate_gated = bound is None or min_rate is not None or max_rate is not None
    rate = Measure(
        name="stereotyped picks" if summary else "rate",
        value=result.rate,
        low=result.ci_low,
        high=result.ci_high,
        threshold_min=min_rate,
        threshold_max=max_rate,
        verdict=summary.get("rate_verdict", result.verdict) if rate_gated else None,
    )
    if bound is None:
        return [rate]
    correlation = Measure(
        name="r",
        value=summary.get("correlation"),
        low=summary.get("correlation_ci_low"),
        high=summary.get("correlation_ci_high"),
        threshold_min=None,
        threshold_max=bound,
        verdict=summary.get("correlation_verdict", result.verdict),
        correlation=True,
    )
    return [correlation, rate]

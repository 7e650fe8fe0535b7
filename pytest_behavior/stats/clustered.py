"""Repeated sampling: each case asked K times, the case (not the sample) as the unit.

Without logprobs, the paper's quantity, the probability a model puts on the
matching answer, is estimated by asking each case K times (at a temperature
above 0) and taking the share of matching answers. The trait's rate is the mean
of the cases' shares. Answers to one case are alike far more often than answers
to different cases, so the m * K answers are not m * K independent trials: an
interval that counted them so would be too narrow by up to sqrt(K). Both
intervals here treat the m cases as the independent units:

- ``method="wilson"`` (the default): the Wilson score interval on an
  effective sample size. The design effect deff (Kish 1965, "Survey
  Sampling") is the variance of the mean of shares over the variance m K
  independent answers would have, and n_eff = m K / deff. Korn & Graubard
  (1998, Survey Methodology 24:193-201) shrink n_eff by (z / t_df)^2 for the
  uncertainty of the estimated variance; here df is Satterthwaite's (1946,
  Biometrics Bulletin 2:110-114) effective number of cases behind that
  variance, (sum r_j^2)^2 / sum r_j^4 for the residuals r_j of the shares,
  instead of m - 1: at a rate of a few percent the variance rests on the few
  cases that matched at all, and m - 1 would overstate its precision. n_eff
  never drops below m, the count of cases, where no variance is estimated.
  Wilson on an effective sample size is among the intervals Dean & Pagano
  (2015, J. Survey Statist. Methodol. 3:484-503) compared for clustered
  proportions.
- ``method="t"``: the cluster-robust t interval, mean of shares +- t_{m-1}
  s / sqrt(m) (s with divisor m - 1: the CR1 small-sample factor m / (m - 1) of
  the sandwich variance, with m - 1 degrees of freedom; Cameron & Miller 2015,
  J. Human Resources 50:317-372, section VI on few clusters).

The Wilson interval is the default because it covers where the t interval
does not, near rates of 0 and thresholds of a few percent. When every answer
to every case agrees the t interval has zero width; at a 5% rate with an
intra-case correlation of 0.5 over 30 cases it covers 85% (K = 3 to 10), the
Wilson interval with Korn & Graubard's m - 1 degrees of freedom 90% (K = 5,
10), with the effective ones 98 to 99% (benchmarks/sequential_gate.py, table
(c), 1,000 runs a cell). Over that table it never falls below 94.3% for K > 1;
the price is width where few cases matched. With K = 1 it is exactly the
fixed gate's ``stats.wilson_interval``, with that interval's own coverage
(93.0% exactly at n = 30, p = 0.3).

:func:`unstable_cases` lists the cases whose answers disagree;
:func:`paired_sampled_comparison` compares two runs case by case (the share
difference per case, the case as the unit). Student's t comes from the
regularized incomplete beta function of ``stats``, so scipy is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pytest_behavior.stats.intervals import (
    Interval,
    _regularized_beta,
    normal_quantile,
    wilson_interval,
)

__all__ = [
    "ClusterMethod",
    "ClusteredRate",
    "SampledCase",
    "SampledComparison",
    "clustered_rate",
    "paired_sampled_comparison",
    "student_t_cdf",
    "student_t_quantile",
    "unstable_cases",
]

ClusterMethod = Literal["wilson", "t"]


@dataclass(frozen=True)
class SampledCase:
    """One case asked ``samples`` times, ``matches`` of the answers matching the behavior.

    Unparseable answers and failed requests are not samples: count neither.
    """

    case_id: str
    matches: int
    samples: int

    def __post_init__(self) -> None:
        for name in ("matches", "samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if self.samples < 1:
            raise ValueError(f"case {self.case_id!r} needs at least one sample")
        if not 0 <= self.matches <= self.samples:
            raise ValueError(
                f"case {self.case_id!r}: matches ({self.matches}) must be between 0 "
                f"and samples ({self.samples})"
            )

    @property
    def share(self) -> float:
        return self.matches / self.samples

    @property
    def unstable(self) -> bool:
        """Its answers disagree: some matched and some did not."""
        return 0 < self.matches < self.samples


@dataclass(frozen=True)
class ClusteredRate:
    """The trait's rate from sampled answers: the mean of the cases' shares, and its interval.

    ``design_effect`` is the variance of that mean over the variance as many
    independent answers would give (1: the samples of a case are as varied as
    answers to different cases; K: each case always answers alike), and
    ``effective_n`` the number of independent answers the cases are worth.
    ``degrees_of_freedom`` is that of the t quantile behind the interval (inf when
    there is none: one sample per case).
    """

    rate: float
    interval: Interval
    cases: int
    samples: int
    design_effect: float
    effective_n: float
    degrees_of_freedom: float
    method: ClusterMethod
    confidence: float


@dataclass(frozen=True)
class SampledComparison:
    """Current vs reference share per paired case; delta = mean of (current - reference).

    ``p_value`` is the two-sided test of delta = 0 that matches ``interval`` (it is
    below 1 - confidence exactly when the interval excludes 0).
    """

    delta: float
    interval: Interval
    p_value: float
    n_paired: int
    confidence: float
    added: tuple[str, ...]
    removed: tuple[str, ...]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def _check_degrees(degrees_of_freedom: float) -> None:
    if not degrees_of_freedom > 0.0 or math.isinf(degrees_of_freedom):  # also rejects NaN
        raise ValueError(f"degrees_of_freedom must be positive, got {degrees_of_freedom!r}")


def _t_upper_tail(t: float, degrees_of_freedom: float) -> float:
    """P(T > t) for t >= 0: I_x(nu / 2, 1 / 2) / 2 with x = nu / (nu + t^2) (A&S 26.7.1)."""
    nu = degrees_of_freedom
    square = t * t
    x, y = nu / (nu + square), square / (nu + square)
    return 0.5 * _regularized_beta(0.5 * nu, 0.5, x, y)


def student_t_cdf(t: float, degrees_of_freedom: float) -> float:
    """P(T <= t) for Student's t with ``degrees_of_freedom`` (any real > 0).

    Through the regularized incomplete beta function (Abramowitz & Stegun 1964,
    26.7.1 with 26.5.27); the tail away from t is computed directly, so small
    tail probabilities keep their relative precision.
    """
    _check_degrees(degrees_of_freedom)
    if math.isnan(t):
        raise ValueError("t must be a number, got NaN")
    tail = _t_upper_tail(abs(t), degrees_of_freedom)
    return tail if t < 0 else 1.0 - tail


def student_t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The t with P(T <= t) = probability, for Student's t with ``degrees_of_freedom``.

    Exact for 1 and 2 degrees of freedom (t = tan(pi (p - 1/2)) and t = (2p - 1) /
    sqrt(2 p (1 - p)), the closed forms of the distribution function, A&S
    26.7.3, inverted); otherwise the upper tail P(T > t) = 1 - p is solved by
    safeguarded Newton steps on the incomplete beta inside a bracket that starts
    at the normal quantile (t_nu >= z) and doubles upward. Accurate to about
    1e-14 relative up to a few thousand degrees of freedom; at 10^6 the
    incomplete beta's log-gamma differences limit it to about 1e-10, far below
    any interval's resolution. Symmetric: the quantile of p < 1/2 is minus that of 1 - p.
    """
    _check_degrees(degrees_of_freedom)
    if not 0.0 < probability < 1.0:  # also rejects NaN
        raise ValueError(f"probability must be strictly between 0 and 1, got {probability!r}")
    if probability == 0.5:
        return 0.0
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, degrees_of_freedom)
    tail = 1.0 - probability
    if degrees_of_freedom == 1.0:
        return 1.0 / math.tan(math.pi * tail)
    if degrees_of_freedom == 2.0:
        return (1.0 - 2.0 * tail) / math.sqrt(2.0 * tail * (1.0 - tail))
    # t_nu >= z for every nu: the normal quantile is a lower bracket.
    low = normal_quantile(probability)
    high = max(2.0 * low, 1.0)
    while _t_upper_tail(high, degrees_of_freedom) > tail:
        low, high = high, 2.0 * high
    # Newton on log P(T > t) against log t, inside the bracket: that curve is
    # nearly straight in the polynomial tail, so a few steps reach the last bits;
    # a step that leaves the bracket is a bisection instead.
    log_density_constant = (
        math.lgamma(0.5 * (degrees_of_freedom + 1.0))
        - math.lgamma(0.5 * degrees_of_freedom)
        - 0.5 * math.log(degrees_of_freedom * math.pi)
    )
    target = math.log(tail)
    t = math.sqrt(low * high)
    for _ in range(100):
        upper_tail = _t_upper_tail(t, degrees_of_freedom)
        if upper_tail > tail:
            low = t
        else:
            high = t
        log_density = log_density_constant - 0.5 * (degrees_of_freedom + 1.0) * math.log1p(
            t * t / degrees_of_freedom
        )
        # d log P(T > t) / d log t = -t f(t) / P(T > t)
        slope = -t * math.exp(log_density) / upper_tail
        step = (math.log(upper_tail) - target) / slope
        candidate = t * math.exp(-step)
        # The tail itself is good to ~1e-15 relative, so a step below 1e-14 of t
        # (or a bracket that narrow) is rounding noise, not progress.
        if abs(candidate - t) <= 1e-14 * t:
            return candidate
        if not low < candidate < high:
            candidate = 0.5 * (low + high)
        if high - low <= 1e-14 * t:
            return candidate
        t = candidate
    return t


def clustered_rate(
    cases: Sequence[SampledCase], confidence: float = 0.95, *, method: ClusterMethod = "wilson"
) -> ClusteredRate:
    """The mean of the cases' shares and an interval with the case as the unit.

    Wilson (the default): with p the mean share, r_j = share_j - p, v = sum r_j^2
    / m^2 the plug-in variance of the mean over cases and h = mean of 1 / K_j,
    the design effect is v / (p (1 - p) h / m) and n_eff = p (1 - p) / v, kept
    within [m, m / h] (at least one independent answer per case, at most all
    answers independent: where the true design effect lies). With df = (sum
    r_j^2)^2 / sum r_j^4 kept within [1, m - 1], the interval is Wilson's at the
    share p of n* = max(n_eff (z / t_df)^2, m) answers (Korn & Graubard's
    adjustment; Wilson's interval at n (z / t)^2 is Wilson's at n with t in place
    of z). The floor m is the interval of m cases with one answer each, which
    needs no variance estimate: shares in [0, 1] with mean p have a variance of
    at most p (1 - p). When all answers agree (p = 0 or 1) n* is m. With one
    sample per case it is ``stats.wilson_interval`` of the matches, to the bit.

    "t": p +- t_{m-1} s / sqrt(m), s the standard deviation of the shares (divisor
    m - 1), clipped to [0, 1]. A single case sampled more than once gets
    ``Interval(0.0, 1.0)`` (no spread can be estimated); no case raises.
    """
    _check_confidence(confidence)
    if method not in ("wilson", "t"):
        raise ValueError(f"method must be 'wilson' or 't', got {method!r}")
    m = len(cases)
    if m == 0:
        raise ValueError("a clustered rate needs at least one case")
    shares = [case.share for case in cases]
    rate = math.fsum(shares) / m
    samples = sum(case.samples for case in cases)
    harmonic = math.fsum(1.0 / case.samples for case in cases) / m
    squares = [(share - rate) ** 2 for share in shares]
    spread = math.fsum(squares)
    bernoulli = rate * (1.0 - rate)
    most_df = max(m - 1.0, 1.0)
    if spread > 0.0 and bernoulli > 0.0:
        effective_n = min(max(bernoulli * m * m / spread, float(m)), m / harmonic)
        fourth = math.fsum(square * square for square in squares)
        effective_df = min(max(spread * spread / fourth, 1.0), most_df)
    else:
        effective_n, effective_df = float(m), most_df
    design_effect = m / harmonic / effective_n
    upper = 0.5 + confidence / 2.0
    z = normal_quantile(upper)
    degrees = math.inf
    if samples == m and method == "wilson":
        # One sample per case: the fixed gate's interval, to the bit.
        interval = wilson_interval(sum(case.matches for case in cases), m, confidence)
    elif m == 1:
        interval = Interval(0.0, 1.0)
    elif method == "t":
        degrees = m - 1.0
        half = student_t_quantile(upper, degrees) * math.sqrt(spread / (m - 1) / m)
        interval = Interval(max(0.0, rate - half), min(1.0, rate + half))
    else:
        degrees = effective_df
        shrink = (z / student_t_quantile(upper, degrees)) ** 2
        interval = _wilson(rate, max(effective_n * shrink, float(m)), z)
    return ClusteredRate(
        rate=rate,
        interval=interval,
        cases=m,
        samples=samples,
        design_effect=design_effect,
        effective_n=effective_n,
        degrees_of_freedom=degrees,
        method=method,
        confidence=confidence,
    )


def _wilson(rate: float, n: float, quantile: float) -> Interval:
    """Wilson's bounds for a share ``rate`` of a real-valued ``n``, as ``stats.wilson_interval``."""
    square = quantile * quantile
    spread = quantile * math.sqrt(square + 4.0 * n * rate * (1.0 - rate))
    high = 1.0 if rate == 1.0 else (2.0 * n * rate + square + spread) / (2.0 * (n + square))
    low = n * rate * rate / ((n + square) * high)
    return Interval(max(0.0, low), min(1.0, high))


def unstable_cases(cases: Sequence[SampledCase]) -> list[SampledCase]:
    """The cases whose answers disagree (0 < matches < samples), most divided first.

    Ordered by how far the share is from an even split, then by case id, so the
    list is the same whatever order the cases came in.
    """
    unstable = [case for case in cases if case.unstable]
    return sorted(unstable, key=lambda case: (abs(case.share - 0.5), case.case_id))


def paired_sampled_comparison(
    current: Sequence[SampledCase], reference: Sequence[SampledCase], confidence: float = 0.95
) -> SampledComparison:
    """The change in matching share over the cases both runs sampled, paired by case id.

    Per paired case d = current share - reference share, in [-1, 1]; delta is
    their mean, the case the unit. The interval carries Agresti & Min's (2005, Stat
    Med 24:729-740) small-sample fix to the shares: two pseudo-cases, half a case
    at +1, half at -1 and one at 0 (their "add 1/2 to every cell"), so that
    with n~ = m + 2, delta~ = sum d / n~ and variance ((sum d^2 + 1) - (sum d)^2 /
    n~) / n~^2, the interval is delta~ +- q sqrt(variance), q = t_{m-1} (z with one
    sample per case, where it is Agresti & Min's interval exactly). Without the
    pseudo-cases, m unchanged cases would give a zero-width interval at 0.
    """
    _check_confidence(confidence)
    before = {case.case_id: case for case in reference}
    after = {case.case_id: case for case in current}
    if len(before) != len(reference) or len(after) != len(current):
        raise ValueError("case ids must be unique within each run")
    paired = sorted(case_id for case_id in after if case_id in before)
    added = tuple(sorted(case_id for case_id in after if case_id not in before))
    removed = tuple(sorted(case_id for case_id in before if case_id not in after))
    m = len(paired)
    if m == 0:
        return SampledComparison(0.0, Interval(-1.0, 1.0), 1.0, 0, confidence, added, removed)
    differences = [after[case_id].share - before[case_id].share for case_id in paired]
    total = math.fsum(differences)
    squares = math.fsum(difference * difference for difference in differences)
    pseudo = m + 2.0
    adjusted = total / pseudo
    variance = max(0.0, (squares + 1.0) - total * total / pseudo) / (pseudo * pseudo)
    standard_error = math.sqrt(variance)
    cases = [after[case_id] for case_id in paired] + [before[case_id] for case_id in paired]
    one_sample = all(case.samples == 1 for case in cases)
    upper = 0.5 + confidence / 2.0
    if one_sample or m < 2:
        quantile = normal_quantile(upper)
        tail = 0.5 * math.erfc(abs(adjusted) / standard_error / math.sqrt(2.0))
    else:
        quantile = student_t_quantile(upper, m - 1)
        tail = _t_upper_tail(abs(adjusted) / standard_error, m - 1)
    half = quantile * standard_error
    interval = Interval(max(-1.0, adjusted - half), min(1.0, adjusted + half))
    return SampledComparison(
        delta=total / m,
        interval=interval,
        p_value=min(1.0, 2.0 * tail),
        n_paired=m,
        confidence=confidence,
        added=added,
        removed=removed,
    )

"""Intervals and tests behind the behavior gate, standard library only.

A trait's matching rate is a binomial proportion: Wilson or exact Clopper-Pearson
intervals describe it. Against a baseline the same cases are asked twice, so the
comparison is paired: the exact McNemar test and Tango's score interval use only
the discordant cases. Holm's step-down adjustment keeps the chance that any of
many traits fails on noise at or below alpha.

Binomial probabilities are computed in log space (``math.lgamma``) and tails via
the regularized incomplete beta function, so n of 100,000 costs no more than a
few hundred continued-fraction steps instead of a sum over n terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

__all__ = [
    "Interval",
    "Verdict",
    "binomial_test_two_sided",
    "clopper_pearson_interval",
    "holm_adjust",
    "margin_p_value",
    "mcnemar_exact",
    "normal_quantile",
    "paired_difference_interval",
    "verdict_for_interval",
    "wilson_interval",
]

Verdict = Literal["pass", "fail", "inconclusive"]

_STANDARD_NORMAL = NormalDist()
# scipy.stats.binomtest counts outcomes whose probability is within this factor of
# the observed one as "as extreme", so that rounding cannot split exact ties.
_TIE_FACTOR = 1.0 + 1e-7
_TINY = 1e-300


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]``: a confidence interval for a rate or a difference."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.high:  # also rejects NaN
            raise ValueError(f"Interval needs low <= high, got low={self.low!r} high={self.high!r}")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_successes(successes: int, n: int) -> None:
    _check_count("n", n)
    _check_count("successes", successes)
    if successes > n:
        raise ValueError(f"successes ({successes}) must not exceed n ({n})")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def _z_for(confidence: float) -> float:
    _check_confidence(confidence)
    return normal_quantile(0.5 + confidence / 2.0)


def normal_quantile(p: float) -> float:
    """Inverse standard normal CDF.

    Delegates to ``statistics.NormalDist.inv_cdf``, which implements Wichura's
    algorithm AS241 (PPND16, Applied Statistics 37:477-484, 1988): rational
    approximations accurate to about 1e-16 relative.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p!r}")
    return _STANDARD_NORMAL.inv_cdf(p)


def _regularized_beta(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b) with ``y == 1 - x`` passed in, so a tiny x or y keeps its precision.

    Numerical Recipes (3rd ed.) 6.4: the continued fraction converges quickly for
    x < (a + 1) / (a + b + 2), in O(sqrt(max(a, b))) steps; above that point use
    I_x(a, b) = 1 - I_y(b, a). Small tails are thus always computed directly.
    """
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(y) + math.lgamma(a + b)
    log_front -= math.lgamma(a) + math.lgamma(b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, y) / b


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Modified Lentz evaluation of the incomplete beta continued fraction (NR 6.4 betacf)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 100_000):
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        for coefficient in (even, odd):
            d = 1.0 + coefficient * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + coefficient / c
            c = c if abs(c) > _TINY else _TINY
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), as I_{1-p}(n - k, k + 1)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return _regularized_beta(n - k, k + 1, 1.0 - p, p)


def _binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), as I_p(k, n - k + 1)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return _regularized_beta(k, n - k + 1, p, 1.0 - p)


def _binomial_log_pmf(k: int, n: int, p: float) -> float:
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def _invert_increasing(
    function: Callable[[float], float],
    derivative: Callable[[float], float],
    target: float,
    start: float,
) -> float:
    """Root of ``function(x) == target`` on (0, 1) for increasing ``function``.

    Newton steps from ``start`` inside a shrinking bisection bracket (NR 9.4 rtsafe):
    quadratic convergence near the root, and never a step out of the bracket.
    """
    low, high = 0.0, 1.0
    x = start if 0.0 < start < 1.0 else 0.5
    for _ in range(200):
        excess = function(x) - target
        if excess == 0.0:
            return x
        if excess < 0.0:
            low = x
        else:
            high = x
        slope = derivative(x)
        step_to = x - excess / slope if slope > 0.0 else math.nan
        if not low < step_to < high:
            step_to = 0.5 * (low + high)
        # The incomplete beta itself is good to ~1e-12 relative at n ~ 1e5 (lgamma
        # cancellation), so asking for more would only chase rounding noise.
        if abs(step_to - x) <= 1e-14 * x or not low < step_to < high:
            return step_to
        x = step_to
    return x


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval (Wilson 1927, JASA 22:209-212).

    The bounds are the roots of (n + z^2) p^2 - (2k + z^2) p + k^2 / n = 0. The
    larger root is computed directly and the smaller as the product of the roots
    divided by it, so neither suffers cancellation when k is near 0 or n.
    ``n == 0`` gives the uninformative ``Interval(0.0, 1.0)``.
    """
    _check_successes(successes, n)
    z = _z_for(confidence)
    if n == 0:
        return Interval(0.0, 1.0)
    z2 = z * z
    spread = z * math.sqrt(z2 + 4.0 * successes * (n - successes) / n)
    high = 1.0 if successes == n else (2.0 * successes + z2 + spread) / (2.0 * (n + z2))
    low = successes * successes / n / ((n + z2) * high)
    return Interval(max(0.0, low), min(1.0, high))


def clopper_pearson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson 1934, Biometrika 26:404-413) interval.

    With alpha = 1 - confidence: low is the alpha/2 quantile of Beta(k, n - k + 1)
    and high the 1 - alpha/2 quantile of Beta(k + 1, n - k), i.e. I_low(k, n-k+1) =
    alpha/2 and I_{1-high}(n - k, k + 1) = alpha/2. Both are solved by safeguarded
    Newton on the incomplete beta, started from the Wilson bound; at k = 0 or k = n
    the bound has the closed form (alpha/2)^(1/n).
    """
    _check_successes(successes, n)
    _check_confidence(confidence)
    if n == 0:
        return Interval(0.0, 1.0)
    tail = (1.0 - confidence) / 2.0
    wilson = wilson_interval(successes, n, confidence)
    low = _clopper_pearson_lower(successes, n, tail, wilson.low)
    high = 1.0 - _clopper_pearson_lower(n - successes, n, tail, 1.0 - wilson.high)
    return Interval(low, high)


def _clopper_pearson_lower(k: int, n: int, tail: float, start: float) -> float:
    """Solves I_x(k, n - k + 1) = tail; by symmetry the upper bound is 1 - this at n - k."""
    if k == 0:
        return 0.0
    if k == n:
        return float(tail ** (1.0 / n))
    a, b = float(k), float(n - k + 1)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def density(x: float) -> float:
        return math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta)

    return _invert_increasing(lambda x: _regularized_beta(a, b, x, 1.0 - x), density, tail, start)


def binomial_test_two_sided(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test p-value, as ``scipy.stats.binomtest``.

    p-value = sum of P(X = x) over all x with P(X = x) <= P(X = k) * (1 + 1e-7).
    The pmf is monotone on each side of the mode, so the cut-off on the far side is
    found by binary search and both tails come from the incomplete beta.
    """
    _check_successes(k, n)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be between 0 and 1, got {p!r}")
    if p == 0.0 or p == 1.0:
        return 1.0 if k == round(n * p) else 0.0
    expected = n * p
    if k == expected:
        return 1.0
    threshold = _binomial_log_pmf(k, n, p) + math.log(_TIE_FACTOR)
    if k < expected:
        # First x in [ceil(np), n] with pmf(x) <= threshold; pmf falls there.
        low, high = math.ceil(expected), n + 1
        while low < high:
            middle = (low + high) // 2
            if _binomial_log_pmf(middle, n, p) <= threshold:
                high = middle
            else:
                low = middle + 1
        p_value = _binomial_cdf(k, n, p) + _binomial_sf(low, n, p)
    else:
        # Last x in [0, floor(np)] with pmf(x) <= threshold; pmf rises there.
        low, high = -1, math.floor(expected)
        while low < high:
            middle = (low + high + 1) // 2
            if _binomial_log_pmf(middle, n, p) <= threshold:
                low = middle
            else:
                high = middle - 1
        p_value = _binomial_cdf(low, n, p) + _binomial_sf(k, n, p)
    return min(1.0, p_value)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact (conditional) two-sided McNemar p-value on the discordant counts.

    Given b + c discordant pairs, b ~ Binomial(b + c, 1/2) under no change, so
    p = min(1, 2 * P(X <= min(b, c))) (Fagerland, Lydersen & Laake 2013, BMC Med
    Res Methodol 13:91, eq. 1). Equal to the exact binomial test at p = 1/2.
    """
    _check_count("b", b)
    _check_count("c", c)
    if b == c:
        return 1.0
    return min(1.0, 2.0 * _binomial_cdf(min(b, c), b + c, 0.5))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm (1979, Scand J Statist 6:65-70) step-down adjusted p-values.

    Sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j));
    results come back in input order. Rejecting adjusted p < alpha keeps the
    family-wise error rate <= alpha under any dependence between the tests.
    """
    values = [float(value) for value in p_values]
    for value in values:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"p-values must be between 0 and 1, got {value!r}")
    count = len(values)
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(sorted(range(count), key=values.__getitem__)):
        running = max(running, min(1.0, (count - rank) * values[index]))
        adjusted[index] = running
    return adjusted


def _tango_score(b: int, c: int, n: int, delta: float) -> float:
    """Tango's score statistic for H0: p(non-match -> match) - p(match -> non-match) = delta.

    Z = (c - b - n delta) / sqrt(n (2 q + delta (1 - delta))), where q is the
    restricted maximum-likelihood estimate of p(match -> non-match), the positive
    root of 2n q^2 + w q - b delta (1 - delta) = 0, w = -(b + c) + (2n - c + b) delta.
    """
    numerator = c - b - n * delta
    w = -(b + c) + (2 * n - c + b) * delta
    constant = b * delta * (1.0 - delta)
    root = math.sqrt(max(0.0, w * w + 8.0 * n * constant))
    # The two algebraically equal forms of the root; pick the one without cancellation.
    q = (root - w) / (4.0 * n) if w <= 0.0 else 2.0 * constant / (root + w)
    variance = n * (2.0 * max(q, 0.0, -delta) + delta * (1.0 - delta))
    if variance <= 0.0:
        return 0.0 if numerator == 0.0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def paired_difference_interval(b: int, c: int, n: int, confidence: float = 0.95) -> Interval:
    """Tango's (1998, Stat Med 17:891-908) score interval for a paired difference.

    Over n paired cases, b went match -> non-match and c non-match -> match; the
    interval is for delta = p2 - p1, estimated by (c - b) / n: all delta in [-1, 1]
    with |Z(delta)| <= z. Tango rather than Newcombe's method 10: Newcombe needs
    both marginal rates and the concordant cells, which (b, c, n) do not determine,
    while Tango needs exactly these counts; at delta = 0 its Z is the McNemar
    statistic (c - b) / sqrt(b + c), and Fagerland, Lydersen & Laake (2014, Stat Med
    33:2850-2875) recommend it. Z falls with delta, so each bound is
    found by bisection to machine precision. ``n == 0`` gives ``Interval(-1.0, 1.0)``.
    """
    _check_count("b", b)
    _check_count("c", c)
    _check_count("n", n)
    if b + c > n:
        raise ValueError(f"discordant counts b + c ({b + c}) must not exceed n ({n})")
    z = _z_for(confidence)
    if n == 0:
        return Interval(-1.0, 1.0)
    estimate = (c - b) / n

    def bound(outside: float) -> float:
        # |Z| <= z at the estimate and |Z| -> inf at the boundary ``outside``.
        inside = estimate
        for _ in range(200):
            middle = 0.5 * (inside + outside)
            if middle in (inside, outside):
                break
            if abs(_tango_score(b, c, n, middle)) > z:
                outside = middle
            else:
                inside = middle
        return inside

    low = -1.0 if b == n else bound(-1.0)
    high = 1.0 if c == n else bound(1.0)
    return Interval(low, high)


def margin_p_value(b: int, c: int, n: int, *, margin: float, bad_direction: str) -> float:
    """p-value of "worse by more than ``margin``" for paired binary data (Tango's score test).

    Over n paired cases, b went match -> non-match and c non-match -> match; delta =
    (c - b) / n estimates the change in matching rate. The null hypothesis is "the
    change is within the margin": delta <= margin when a rise is bad (``"up"``),
    delta >= -margin when a fall is bad (``"down"``), |delta| <= margin for
    ``"both"``. Tango's score statistic Z(delta0) (the restricted maximum-likelihood
    variance at the null's edge, as in :func:`paired_difference_interval`; Nam 1997,
    Biometrics 53:1422-1430, derives the same test for paired proportions against a
    margin) gives the one-sided tail; the value returned is twice it (capped at 1),
    the two-sided convention of :func:`mcnemar_exact`. So p < alpha exactly when
    the two-sided 1 - alpha Tango interval lies wholly beyond the margin, and at a
    true change equal to the margin a comparison says "regressed" with probability
    about alpha / 2, the rate McNemar's two-sided test gives a one-direction trait
    at no change and margin 0. For "both", twice the smaller of the two tails.
    """
    _check_count("b", b)
    _check_count("c", c)
    _check_count("n", n)
    if b + c > n:
        raise ValueError(f"discordant counts b + c ({b + c}) must not exceed n ({n})")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    if bad_direction not in ("up", "down", "both"):
        raise ValueError(f"bad_direction must be up, down or both, got {bad_direction!r}")
    if n == 0:
        return 1.0
    tails = []
    if bad_direction in ("up", "both"):
        tails.append(_STANDARD_NORMAL.cdf(-_tango_score(b, c, n, margin)))
    if bad_direction in ("down", "both"):
        tails.append(_STANDARD_NORMAL.cdf(_tango_score(b, c, n, -margin)))
    return min(1.0, 2.0 * min(tails))


def verdict_for_interval(
    interval: Interval, *, max_rate: float | None, min_rate: float | None
) -> Verdict:
    """Gate decision from an interval and the trait's bounds.

    "fail" when the whole interval lies beyond a bound (low > max_rate or
    high < min_rate), "pass" when it lies wholly within every given bound
    (touching a bound counts as within), "inconclusive" when it straddles one.
    With no bounds at all nothing can be violated, so the verdict is "pass".
    """
    if max_rate is not None and min_rate is not None and min_rate > max_rate:
        raise ValueError(f"min_rate ({min_rate}) must not exceed max_rate ({max_rate})")
    for name, bound in (("max_rate", max_rate), ("min_rate", min_rate)):
        if bound is not None and math.isnan(bound):
            raise ValueError(f"{name} must be a number, got NaN")
    if (max_rate is not None and interval.low > max_rate) or (
        min_rate is not None and interval.high < min_rate
    ):
        return "fail"
    if (max_rate is None or interval.high <= max_rate) and (
        min_rate is None or interval.low >= min_rate
    ):
        return "pass"
    return "inconclusive"

"""Anytime-valid gates: a gate that may look after every batch and keep its error rate.

A fixed-n interval is valid at one pre-planned n. Looked at after every batch,
with the run stopped at the first decisive look, it fails (or passes) on noise
far more often than its level says (benchmarks/sequential_gate.py measures it).
A *confidence sequence* is a sequence of intervals that contains the truth at
every n simultaneously with probability >= 1 - alpha, so a gate may stop at any
data-dependent look. Each one here is the set of values whose test martingale
(a nonnegative martingale with mean 1 under that value) is below 1/alpha; by
Ville's inequality (Ville 1939, "Etude critique de la notion de collectif") the
martingale at the truth ever reaches 1/alpha with probability at most alpha.

- :func:`rate_confidence_sequence`: a Bernoulli matching rate, answers
  independent given the rate (the trait's cases a sample from a larger pool).
  Robbins' (1970, Ann. Math. Statist. 41:1397-1409) mixture martingale with a
  conjugate beta prior: the beta-binomial mixture among the conjugate mixtures
  of Howard, Ramdas, McAuliffe & Sekhon (2021, "Time-uniform, nonparametric,
  nonasymptotic confidence sequences", Ann. Statist. 49:1055-1080), computed
  exactly with ``math.lgamma``.
- :func:`population_confidence_sequence`: the rate of a finite file of N cases
  asked in random order, without replacement: Waudby-Smith & Ramdas (2020,
  "Confidence sequences for sampling without replacement", NeurIPS 33,
  arXiv:2006.04347), their prior-posterior-ratio martingale with a
  beta-binomial prior on the number of matching cases. Tighter than the
  Bernoulli sequence late in the file; exact (zero width) once all N are seen.
- :func:`paired_confidence_sequence`: the mean change delta of a paired
  comparison (current vs baseline, case by case), each case's change in
  {-1, 0, +1}: the hedged betting confidence sequence of Waudby-Smith & Ramdas
  (2024, JRSS-B 86:1-27) with a fixed portfolio of constant bets, and
  :func:`anytime_p_value` for Holm across traits.

:func:`decide` and :func:`decide_change` turn an interval into "pass" / "fail" /
"continue" and "regressed" / "no_regression" / "continue" with the fixed-n
gate's edges (``stats.verdict_for_interval``); :func:`gate_look` and
:func:`comparison_look` do one whole look, including min and max cases.

Two targets. The Bernoulli and paired sequences are about the pool of questions
a file samples: its cases independent draws, as for the fixed-n Wilson and
Tango intervals in ``stats`` (a random permutation of such a sample is again
independent draws, so asking in a seeded random order keeps that true). The
finite-population sequence is about the file itself and assumes nothing of it
but the random order; at n = N it is the file's exact rate, where the fixed-n
Wilson interval still has a width.

Every function depends on counts only, never on the order in which the cases
came (a mixture likelihood, and the capital of a constant bet, depend on the
counts alone), so a look gives the same answer in any process and on a cached
rerun. The order still matters for *which* cases a look has seen: it must be a
seeded random permutation, fixed before the first answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pytest_behavior.stats.intervals import Interval, verdict_for_interval

__all__ = [
    "PRIOR_STRENGTH",
    "UNIFORM_PRIOR",
    "BadDirection",
    "BetaPrior",
    "ChangeDecision",
    "ChangeStatus",
    "GateDecision",
    "GateStatus",
    "anytime_p_value",
    "comparison_look",
    "decide",
    "decide_change",
    "gate_look",
    "paired_confidence_sequence",
    "population_confidence_sequence",
    "prior_for",
    "rate_confidence_sequence",
    "rate_log_martingale",
]

GateStatus = Literal["pass", "fail", "continue", "inconclusive"]
ChangeStatus = Literal["regressed", "no_regression", "continue", "inconclusive"]
BadDirection = Literal["up", "down", "both"]

# A continuous bound is narrowed to a bracket this wide. The bound reported is the
# end of the bracket known to lie outside the sequence, so the interval is never
# narrower than the exact one; 1e-12 is far below any threshold's resolution.
_BOUND_TOLERANCE = 1e-12
# Pseudo-cases of the prior that gate_look centres on the threshold (BetaPrior).
PRIOR_STRENGTH = 10.0
# The paired sequence's portfolio: fractions 0.9, 0.9/1.5, ... (16 of them, down to
# 0.0021), equally weighted, each with log(1 - fraction), its factor at a change of
# -1. Denser grids (30 at ratio 1.25, 40 at 1.2) gave the same bounds to the third
# decimal from 100 to 10,000 pairs; the smallest fraction is far below the best
# bet of any decision within 150,000 pairs.
_BETS = tuple((0.9 * 1.5**-index, math.log1p(-0.9 * 1.5**-index)) for index in range(16))
_LOG_BET_WEIGHT = -math.log(len(_BETS))


@dataclass(frozen=True)
class BetaPrior:
    """The mixing distribution Beta(matching, not_matching) of the rate sequences.

    The prior never affects validity (every prior gives a sequence that covers at
    the stated level); it decides where the sequence is tightest. A mixture
    martingale grows like a Bayes factor, whose numerator is large only where the
    prior has mass near the truth; the rates a gate finds hard to decide are the
    ones near its threshold, so :meth:`centred` puts the prior there with the
    weight of ``strength`` pseudo-cases. Against max_rate 0.3 on 1,000-case files
    (benchmarks/sequential_gate.py, table "prior") Beta(3, 7) decides 25% models
    in a median of 440 cases where the uniform prior needs 500, 35% in 440
    instead of 480 and 15% in 80 instead of 100, with no loss at 0%, 5% or 80%.
    While choosing it, weights of 20 to 100 pseudo-cases gained a little more
    near the threshold and lost far from it (a 0% model took 40 to 60 cases
    instead of 20). :func:`gate_look` uses :func:`prior_for` unless given a
    prior; the default of this class is the uniform Beta(1, 1), for a sequence
    with no threshold in view.
    """

    matching: float = 1.0
    not_matching: float = 1.0

    def __post_init__(self) -> None:
        for name in ("matching", "not_matching"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0.0 and math.isfinite(value)):
                raise ValueError(f"BetaPrior.{name} must be a positive number, got {value!r}")

    @classmethod
    def centred(cls, rate: float, strength: float = PRIOR_STRENGTH) -> BetaPrior:
        """Beta(strength * rate, strength * (1 - rate)), its mean at ``rate``.

        The mean is kept at least 1/(2 strength) from 0 and 1, so neither parameter
        falls below 1/2 (a threshold of 0 or 1 would otherwise give no prior at all).
        """
        if not (strength > 0.0 and math.isfinite(strength)):
            raise ValueError(f"strength must be a positive number, got {strength!r}")
        if not 0.0 <= rate <= 1.0:  # also rejects NaN
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        edge = min(0.5, 0.5 / strength)
        mean = min(max(rate, edge), 1.0 - edge)
        matching = strength * mean
        return cls(matching, strength - matching)


UNIFORM_PRIOR = BetaPrior()


def prior_for(*, max_rate: float | None, min_rate: float | None) -> BetaPrior:
    """The prior :func:`gate_look` uses: centred on the bound (midway between two bounds)."""
    bounds = [bound for bound in (min_rate, max_rate) if bound is not None]
    if not bounds:
        return UNIFORM_PRIOR
    return BetaPrior.centred(sum(bounds) / len(bounds))


@dataclass(frozen=True)
class GateDecision:
    """One look of a sequential rate gate.

    ``status`` is "pass" or "fail" once the interval has settled it, "continue"
    while it straddles a bound (or fewer than min_cases were seen), and
    "inconclusive" (from :func:`gate_look` only) when max_cases were seen and it
    still straddles. ``reason`` is one sentence for the report.
    """

    status: GateStatus
    interval: Interval
    reason: str


@dataclass(frozen=True)
class ChangeDecision:
    """One look of a sequential paired comparison; delta = current rate - baseline rate.

    ``status``: "regressed" when the whole interval lies beyond the tolerance in
    the bad direction, "no_regression" when it lies wholly within it, "continue"
    otherwise, and "inconclusive" (from :func:`comparison_look` only) at max_pairs.
    ``p_value`` is the anytime-valid p-value of "no regression beyond the
    tolerance", the value to Holm-adjust across traits; None from
    :func:`decide_change`, which sees only the interval.
    """

    status: ChangeStatus
    interval: Interval
    reason: str
    p_value: float | None = None


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _log_threshold(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return -math.log1p(-confidence)  # log(1 / alpha)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _log_marginal(matches: int, n: int, prior: BetaPrior) -> float:
    """Log probability of one ordered sequence with ``matches`` of ``n`` under the mixture."""
    a, b = prior.matching, prior.not_matching
    return _log_beta(a + matches, b + n - matches) - _log_beta(a, b)


def _xlogy(x: float, y: float) -> float:
    """x * log(y) with 0 * log(0) = 0: a count of zero carries no evidence."""
    if x == 0.0:
        return 0.0
    return -math.inf if y <= 0.0 else x * math.log(y)


def _edge(
    excess: Callable[[float], float],
    inside: float,
    end: float,
    guess: float,
    tolerance: float = _BOUND_TOLERANCE,
) -> float:
    """Where {x : excess(x) < 0} ends between ``inside`` and ``end``.

    ``excess`` must be < 0 at ``inside`` and cross zero at most once on the way to
    ``end`` (every sequence here is monotone there). Returns ``end`` when
    ``excess(end)`` < 0, else a point with excess >= 0 within ``tolerance`` of the
    edge: the bound errs wide, never narrow. From ``guess`` it walks out to a
    finite point beyond the edge (``excess`` may be infinite at ``end``), then
    narrows the bracket by the Illinois variant of false position (Dowell &
    Jarratt 1971, BIT 11:168-174): superlinear, about ten evaluations instead of
    forty bisections, and no step leaves the bracket.
    """
    if excess(end) < 0.0:
        return end
    inside_excess = excess(inside)
    outside = guess if min(inside, end) < guess < max(inside, end) else 0.5 * (inside + end)
    outside_excess = excess(outside)
    for _ in range(1100):  # halve the distance to the end until beyond the edge
        if outside_excess >= 0.0:
            break
        inside, inside_excess = outside, outside_excess
        outside = 0.5 * (outside + end)
        if outside in (inside, end):
            return end
        outside_excess = excess(outside)
    if math.isinf(outside_excess):
        # Infinite excess beyond the edge: bisect until the outer end is finite.
        while abs(outside - inside) > tolerance:
            middle = 0.5 * (inside + outside)
            middle_excess = excess(middle)
            if middle_excess < 0.0:
                inside, inside_excess = middle, middle_excess
            else:
                outside, outside_excess = middle, middle_excess
                if not math.isinf(middle_excess):
                    break
    kept = 0  # which end the last step kept: +1 outside, -1 inside
    for _ in range(200):
        if abs(outside - inside) <= tolerance:
            break
        step = outside_excess - inside_excess
        candidate = outside - outside_excess * (outside - inside) / step if step > 0.0 else math.nan
        if not min(inside, outside) < candidate < max(inside, outside):
            candidate = 0.5 * (inside + outside)
        candidate_excess = excess(candidate)
        if candidate_excess >= 0.0:
            outside, outside_excess = candidate, candidate_excess
            if kept == -1:
                inside_excess *= 0.5
            kept = -1
        else:
            inside, inside_excess = candidate, candidate_excess
            if kept == 1:
                outside_excess *= 0.5
            kept = 1
    return outside


def _rate_guess(estimate: float, n: int, log_threshold: float, side: float) -> float:
    """A starting point near a bound: the normal approximation of the mixture boundary."""
    smoothed = (estimate * n + 1.0) / (n + 2.0)
    half_width = math.sqrt(
        2.0 * smoothed * (1.0 - smoothed) * (log_threshold + math.log(n + 1)) / n
    )
    return estimate + side * half_width


def rate_log_martingale(
    matches: int, n: int, rate: float, prior: BetaPrior = UNIFORM_PRIOR
) -> float:
    """log M_n(rate): the beta-binomial mixture martingale for "the matching rate is rate".

    M_n(p) = B(a + k, b + n - k) / B(a, b) / (p^k (1 - p)^(n - k)): the mixture
    likelihood of the answers over their likelihood at p (Robbins 1970).
    Under rate p it is a nonnegative martingale with M_0 = 1, so the chance that
    it ever reaches 1/alpha is at most alpha; :func:`rate_confidence_sequence` is
    {p : M_n(p) < 1/alpha}, and 1 / max over looks of M_n(p) is an anytime-valid
    p-value for p. ``rate`` may be 0 or 1 (+inf where the answers exclude it).
    """
    _check_count("n", n)
    _check_count("matches", matches)
    if matches > n:
        raise ValueError(f"matches ({matches}) must not exceed n ({n})")
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
    likelihood = _xlogy(matches, rate) + _xlogy(n - matches, 1.0 - rate)
    return _log_marginal(matches, n, prior) - likelihood


def rate_confidence_sequence(
    matches: int, n: int, confidence: float = 0.95, *, prior: BetaPrior = UNIFORM_PRIOR
) -> Interval:
    """Anytime-valid interval for a Bernoulli matching rate after ``matches`` of ``n``.

    {p : M_n(p) < 1/alpha} with M_n of :func:`rate_log_martingale`, alpha = 1 -
    confidence: with probability >= confidence it contains the true rate at every
    n at once, however often it is looked at. log M_n(p) is convex in p with its
    minimum (<= 0, since a mixture never beats the best fit) at k / n, so the set
    is an interval around k / n whose ends are found by false position (``_edge``).
    ``n == 0`` gives ``Interval(0.0, 1.0)``.
    """
    log_threshold = _log_threshold(confidence)
    _check_count("n", n)
    _check_count("matches", matches)
    if matches > n:
        raise ValueError(f"matches ({matches}) must not exceed n ({n})")
    if n == 0:
        return Interval(0.0, 1.0)
    constant = _log_marginal(matches, n, prior) - log_threshold
    misses = n - matches

    def excess(rate: float) -> float:
        if 0.0 < rate < 1.0:
            return constant - matches * math.log(rate) - misses * math.log1p(-rate)
        return constant - _xlogy(matches, rate) - _xlogy(misses, 1.0 - rate)

    estimate = matches / n
    # At k = 0 the likelihood is largest at p = 0 and M_n(0) = B(a, b + n) / B(a, b)
    # < 1: the lower end is 0 (_edge returns the end then). Likewise 1 at k = n.
    low = _edge(excess, estimate, 0.0, _rate_guess(estimate, n, log_threshold, -1.0))
    high = _edge(excess, estimate, 1.0, _rate_guess(estimate, n, log_threshold, 1.0))
    return Interval(low, high)


def _log_ratio_finite(count: float, matches: int, misses: int, population: int) -> float:
    """-log P(answers | M = count of N match), less the terms that do not depend on M.

    P(an ordered sequence with k of n | M of N) = M!/(M-k)! (N-M)!/(N-M-n+k)! (N-n)!/N!;
    the caller adds (N-n)!/N! and the mixture's log probability once per look.
    """
    return -(
        math.lgamma(count + 1.0)
        - math.lgamma(count - matches + 1.0)
        + math.lgamma(population - count + 1.0)
        - math.lgamma(population - count - misses + 1.0)
    )


def population_confidence_sequence(
    matches: int,
    n: int,
    population: int,
    confidence: float = 0.95,
    *,
    prior: BetaPrior = UNIFORM_PRIOR,
) -> Interval:
    """Anytime-valid interval for the matching rate M / N of a finite file of N cases.

    The cases must be asked in uniformly random order without replacement (a
    seeded permutation of the file). Waudby-Smith & Ramdas (2020): with
    a beta-binomial prior pi_0 on the number M of matching cases, the ratio of
    prior to posterior, R_n(M) = pi_0(M) / pi_n(M), is a nonnegative martingale at
    the true M, and {M : R_n(M) < 1/alpha} is a confidence sequence. By Bayes' rule
    R_n(M) is the mixture probability of the answers, B(a + k, b + n - k) / B(a, b),
    over their hypergeometric probability given M; that likelihood is log-concave
    in M (its ratio from M to M + 1 falls with M) with its maximum at M =
    floor(k (N + 1) / n), so the set is a run of integers around it. Its ends are
    found on the real-valued extension through ``math.lgamma`` (false position,
    about ten evaluations whatever N) and then checked at the integers. The
    bounds come back
    as rates, multiples of 1/N; at n == N the interval is the exact rate k / N.
    ``n == 0`` gives ``Interval(0.0, 1.0)``.
    """
    log_threshold = _log_threshold(confidence)
    _check_count("population", population)
    _check_count("n", n)
    _check_count("matches", matches)
    if matches > n:
        raise ValueError(f"matches ({matches}) must not exceed n ({n})")
    if n > population:
        raise ValueError(f"n ({n}) must not exceed the population ({population})")
    if n == 0:
        return Interval(0.0, 1.0)
    fewest, most = matches, population - n + matches  # what the answers allow
    best = min(max(matches * (population + 1) // n, fewest), most)
    misses = n - matches
    constant = (
        _log_marginal(matches, n, prior)
        - math.lgamma(population - n + 1.0)
        + math.lgamma(population + 1.0)
        - log_threshold
    )

    def excess(count: float) -> float:
        # log R_n(M) - log(1/alpha). Continuous in the count through lgamma, and still
        # convex (the log-likelihood's second derivative is a sum of trigamma
        # differences, each <= 0).
        return constant + _log_ratio_finite(count, matches, misses, population)

    # R_n at ``best`` is at most 1 < 1/alpha: the mixture never beats the best fit.
    # The real-valued edge is found as for the Bernoulli sequence, then the last
    # integer inside it by direct evaluation.
    spread = population * math.sqrt(1.0 - n / population)
    estimate = matches / n
    low_edge = _edge(
        excess,
        best,
        fewest,
        population * estimate - spread * (estimate - _rate_guess(estimate, n, log_threshold, -1.0)),
        tolerance=1e-6,
    )
    high_edge = _edge(
        excess,
        best,
        most,
        population * estimate + spread * (_rate_guess(estimate, n, log_threshold, 1.0) - estimate),
        tolerance=1e-6,
    )
    low = max(math.ceil(low_edge), fewest)
    while low < best and excess(low) >= 0.0:
        low += 1
    high = min(math.floor(high_edge), most)
    while high > best and excess(high) >= 0.0:
        high -= 1
    return Interval(low / population, high / population)


def decide(interval: Interval, *, max_rate: float | None, min_rate: float | None) -> GateDecision:
    """The gate's answer at one look, with the fixed-n gate's edges.

    "fail" when the whole interval is beyond a bound (low > max_rate or high <
    min_rate), "pass" when it is wholly within every bound (touching a bound
    counts as within), "continue" when it straddles one: exactly
    ``stats.verdict_for_interval`` with "inconclusive" read as "continue". A rate
    exactly at the threshold is inside every interval, so it continues forever:
    the caller stops at max_cases and reports "inconclusive" (:func:`gate_look`).
    """
    verdict = verdict_for_interval(interval, max_rate=max_rate, min_rate=min_rate)
    if verdict == "fail":
        return GateDecision("fail", interval, "the whole interval is beyond the threshold")
    if verdict == "pass":
        return GateDecision("pass", interval, "the whole interval is within the threshold")
    return GateDecision("continue", interval, "the interval straddles the threshold")


def gate_look(
    matches: int,
    n: int,
    *,
    max_rate: float | None,
    min_rate: float | None,
    confidence: float = 0.95,
    population: int | None = None,
    min_cases: int = 1,
    max_cases: int | None = None,
    prior: BetaPrior | None = None,
) -> GateDecision:
    """One look of the sequential rate gate after ``matches`` of ``n`` scored cases.

    With ``population`` (the number of cases in the file) the interval is
    :func:`population_confidence_sequence`, else :func:`rate_confidence_sequence`.
    Below ``min_cases`` the status is "continue" whatever the interval says.
    ``max_cases`` defaults to the population (no limit without one); once ``n``
    reaches it, an undecided look is "inconclusive". ``prior`` defaults to
    :func:`prior_for` the bounds: keep it the same at every look of a run.
    """
    _check_count("min_cases", min_cases)
    limit = population if max_cases is None else max_cases
    if limit is not None:
        _check_count("max_cases", limit)
        if population is not None and limit > population:
            raise ValueError(f"max_cases ({limit}) must not exceed the population ({population})")
    if prior is None:
        prior = prior_for(max_rate=max_rate, min_rate=min_rate)
    if population is None:
        interval = rate_confidence_sequence(matches, n, confidence, prior=prior)
    else:
        interval = population_confidence_sequence(matches, n, population, confidence, prior=prior)
    decision = decide(interval, max_rate=max_rate, min_rate=min_rate)
    status, reason = decision.status, decision.reason
    reached = limit is not None and n >= limit
    if n < min_cases and not reached:
        status, reason = "continue", f"fewer than min_cases ({min_cases}) scored"
    elif status == "continue" and reached:
        status, reason = "inconclusive", f"reached max_cases ({limit}) undecided: {reason}"
    return GateDecision(status, interval, reason)


def _check_paired(to_matching: int, to_not_matching: int, n_paired: int) -> None:
    _check_count("to_matching", to_matching)
    _check_count("to_not_matching", to_not_matching)
    _check_count("n_paired", n_paired)
    if to_matching + to_not_matching > n_paired:
        raise ValueError(
            f"discordant pairs ({to_matching + to_not_matching}) must not exceed "
            f"n_paired ({n_paired})"
        )


def _log_capital_above(up: int, same: int, down: int, delta: float) -> float:
    """log M+(delta): capital from betting that the mean change is above ``delta``.

    A bettor who stakes the fraction f of their capital on each pair's change d
    (in {-1, 0, +1}) exceeding delta multiplies it by 1 + f (d - delta) / (1 +
    delta), which is >= 1 - f > 0 and has mean 1 when delta is the true mean: the
    product is a test martingale (Waudby-Smith & Ramdas 2024). The capital of an
    equal-weight portfolio of the constant fractions in ``_BETS`` is one too (a
    fixed mixture of martingales), and its product over the pairs depends on the
    counts alone. Each factor falls as delta rises, so M+ falls with delta.
    """
    if delta <= -1.0:
        # Only a change of -1 is possible at delta = -1: any other refutes it.
        if up + same > 0:
            return math.inf
        return _LOG_BET_WEIGHT + _log_sum_exp([down * kept for _, kept in _BETS])
    gain_up = (1.0 - delta) / (1.0 + delta)  # (d - delta) / (1 + delta) at d = +1
    gain_same = -delta / (1.0 + delta)  # at d = 0 (at d = -1 it is -1)
    # For delta in (-1, 1] and fractions <= 0.9 every factor is >= 0.55: no log of 0.
    logs = [
        up * math.log1p(fraction * gain_up) + same * math.log1p(fraction * gain_same) + down * kept
        for fraction, kept in _BETS
    ]
    return _LOG_BET_WEIGHT + _log_sum_exp(logs)


def _log_capital_below(up: int, same: int, down: int, delta: float) -> float:
    """log M-(delta): the mirror image, betting that the mean change is below ``delta``."""
    return _log_capital_above(down, same, up, -delta)


def _log_sum_exp(logs: list[float]) -> float:
    top = max(logs)
    if math.isinf(top):
        return top
    return top + math.log(sum([math.exp(value - top) for value in logs]))


def paired_confidence_sequence(
    to_matching: int, to_not_matching: int, n_paired: int, confidence: float = 0.95
) -> Interval:
    """Anytime-valid interval for delta = current rate - baseline rate over paired cases.

    Each paired case changed to matching (+1), stayed (0) or changed to not
    matching (-1); delta is the mean change over the pool the cases are drawn
    from, as in ``stats.paired_difference_interval`` (its b is to_not_matching,
    its c to_matching).
    The betting confidence sequence of Waudby-Smith & Ramdas (2024, "Estimating
    means of bounded random variables by betting", JRSS-B 86:1-27): for each
    candidate delta, the capital M+ of a portfolio of bets that the mean is above
    it and M- of bets that it is below (see ``_log_capital_above``), hedged, so
    the sequence is {delta : M+(delta) < 2/alpha and M-(delta) < 2/alpha}; at the
    truth each of the two reaches 2/alpha with probability at most alpha/2
    (Ville), so the sequence covers with probability >= 1 - alpha. M+ falls and
    M- rises with delta, so it is an interval, found by false position; the
    estimate (to_matching - to_not_matching) / n_paired is always inside (a
    constant bet against the sample mean never gains).

    The bets are constant fractions mixed over a fixed grid rather than the
    predictable plug-in bets of the paper: the changes take three values, so the
    capital of a constant bet depends on the three counts only, and the sequence
    is the same in whatever order the pairs came (a cached rerun or another
    xdist split cannot move it), for 32 logarithms per candidate delta. At 150
    to matching and 50 to not matching of 1,000 pairs it is [0.054, 0.148]; the
    predictable plug-in hedged process (c = 1/2) gave [0.050, 0.143] to [0.065,
    0.166] over five orders of the same pairs, and a Dirichlet-mixture likelihood
    ratio profiled over the unchanged share [0.039, 0.163].
    ``n_paired == 0`` gives ``Interval(-1.0, 1.0)``.
    """
    log_threshold = _log_threshold(confidence) + math.log(2.0)
    _check_paired(to_matching, to_not_matching, n_paired)
    if n_paired == 0:
        return Interval(-1.0, 1.0)
    up, down = to_matching, to_not_matching
    same = n_paired - up - down
    estimate = (up - down) / n_paired
    spread = max((up + down) / n_paired - estimate * estimate, 1.0 / n_paired)
    half_width = math.sqrt(2.0 * spread * (log_threshold + math.log(n_paired + 1)) / n_paired)
    low = _edge(
        lambda delta: _log_capital_above(up, same, down, delta) - log_threshold,
        estimate,
        -1.0,
        estimate - half_width,
    )
    high = _edge(
        lambda delta: _log_capital_below(up, same, down, delta) - log_threshold,
        estimate,
        1.0,
        estimate + half_width,
    )
    return Interval(low, high)


def _check_tolerance(tolerance: float, bad_direction: str) -> None:
    if not 0.0 <= tolerance < 1.0:  # also rejects NaN
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    if bad_direction not in ("up", "down", "both"):
        raise ValueError(f"bad_direction must be 'up', 'down' or 'both', got {bad_direction!r}")


def anytime_p_value(
    to_matching: int,
    to_not_matching: int,
    n_paired: int,
    *,
    tolerance: float,
    bad_direction: BadDirection,
    previous: float = 1.0,
) -> float:
    """Anytime-valid p-value of "no regression beyond the tolerance" at this look.

    The null is delta <= tolerance (bad direction "up"), delta >= -tolerance
    ("down") or |delta| <= tolerance ("both"); the p-value is min(previous, 1,
    2 / M) with M the hedged capital of :func:`paired_confidence_sequence` at the
    null's edge: M+(tolerance) for "up" (M+ falls with delta, so every delta of
    the null has at least that capital), M-(-tolerance) for "down", the larger of
    the two for "both". For every distribution of changes in the null, P(the
    p-value is ever <= u) <= u for all u, at every look and at any stopping time,
    so p-values read each at its own trait's stopping time (or at the end of the
    run) are valid p-values, and ``stats.holm_adjust`` across traits keeps the
    family-wise rate of false "regressed" at alpha: Holm needs only valid marginal
    p-values, under any dependence between them. Pass the previous look's value
    as ``previous`` to keep the running minimum (also valid, and never larger).

    It agrees with the sequence: p <= 1 - confidence exactly when
    :func:`paired_confidence_sequence` lies wholly beyond the tolerance.
    """
    _check_paired(to_matching, to_not_matching, n_paired)
    _check_tolerance(tolerance, bad_direction)
    if not 0.0 <= previous <= 1.0:
        raise ValueError(f"previous must be between 0 and 1, got {previous!r}")
    if n_paired == 0:
        return previous
    up, down = to_matching, to_not_matching
    same = n_paired - up - down
    # The null's least favourable delta: M+ falls with delta, M- rises.
    log_capital = -math.inf
    if bad_direction in ("up", "both"):
        log_capital = max(log_capital, _log_capital_above(up, same, down, tolerance))
    if bad_direction in ("down", "both"):
        log_capital = max(log_capital, _log_capital_below(up, same, down, -tolerance))
    log_evidence = log_capital - math.log(2.0)
    return min(previous, 1.0, math.exp(-log_evidence))


def decide_change(
    interval: Interval, *, tolerance: float, bad_direction: BadDirection
) -> ChangeDecision:
    """ "regressed" / "no_regression" / "continue" from an interval for delta.

    Bad direction "up": regressed when low > tolerance, no regression when high
    <= tolerance. "down": regressed when high < -tolerance, no regression when low
    >= -tolerance. "both": regressed when either holds, no regression when the
    interval lies within [-tolerance, tolerance]. These are :func:`decide`'s edges
    with max_rate = tolerance and/or min_rate = -tolerance. With tolerance 0 "no
    regression" needs an established improvement: an unchanged model continues
    to max_pairs and is inconclusive, so give a tolerance to stop early.
    """
    _check_tolerance(tolerance, bad_direction)
    verdict = verdict_for_interval(
        interval,
        max_rate=None if bad_direction == "down" else tolerance,
        min_rate=None if bad_direction == "up" else -tolerance,
    )
    if verdict == "fail":
        return ChangeDecision("regressed", interval, "the whole interval is beyond the tolerance")
    if verdict == "pass":
        return ChangeDecision(
            "no_regression", interval, "the whole interval is within the tolerance"
        )
    return ChangeDecision("continue", interval, "the interval straddles the tolerance")


def comparison_look(
    to_matching: int,
    to_not_matching: int,
    n_paired: int,
    *,
    tolerance: float,
    bad_direction: BadDirection,
    confidence: float = 0.95,
    min_pairs: int = 1,
    max_pairs: int | None = None,
    previous_p_value: float = 1.0,
) -> ChangeDecision:
    """One look of the sequential paired comparison: interval, status and p-value.

    Below ``min_pairs`` the status is "continue"; at ``max_pairs`` an undecided
    look is "inconclusive". The status is the trait's own (level 1 - confidence);
    across traits the "regressed" verdicts should come from ``stats.holm_adjust``
    of the ``p_value`` fields (see :func:`anytime_p_value`).
    """
    _check_count("min_pairs", min_pairs)
    interval = paired_confidence_sequence(to_matching, to_not_matching, n_paired, confidence)
    decision = decide_change(interval, tolerance=tolerance, bad_direction=bad_direction)
    status, reason = decision.status, decision.reason
    p_value = anytime_p_value(
        to_matching,
        to_not_matching,
        n_paired,
        tolerance=tolerance,
        bad_direction=bad_direction,
        previous=previous_p_value,
    )
    if max_pairs is not None:
        _check_count("max_pairs", max_pairs)
    reached = max_pairs is not None and n_paired >= max_pairs
    if n_paired < min_pairs and not reached:
        status, reason = "continue", f"fewer than min_pairs ({min_pairs}) paired"
    elif status == "continue" and reached:
        status, reason = "inconclusive", f"reached max_pairs ({max_pairs}) undecided: {reason}"
    return ChangeDecision(status, interval, reason, p_value)

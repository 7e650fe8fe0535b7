"""Tests for pytest_behavior.stats.intervals.

Reference numbers were computed once with scipy 1.17.1 / statsmodels 0.15.0 (in a
throwaway virtualenv; neither is a dependency) unless a comment names a published
source. Where scipy itself is inaccurate (extreme tails, p-values near 1e-283,
Clopper-Pearson bounds near 5e-12) the module was checked against 50-digit mpmath
instead, and those points are left out here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from pytest_behavior.stats.intervals import (
    Interval,
    binomial_test_two_sided,
    clopper_pearson_interval,
    holm_adjust,
    margin_p_value,
    mcnemar_exact,
    normal_quantile,
    paired_difference_interval,
    verdict_for_interval,
    wilson_interval,
)

# scipy.special.ndtri
NORMAL_QUANTILES = [
    (1e-10, -6.361340902404056),
    (0.001, -3.090232306167813),
    (0.025, -1.9599639845400545),
    (0.1, -1.2815515655446004),
    (0.8, 0.8416212335729143),
    (0.975, 1.959963984540054),
    (0.999, 3.090232306167813),
    (0.9999999999, 6.361340889697422),
]


@pytest.mark.parametrize(("p", "expected"), NORMAL_QUANTILES)
def test_normal_quantile_matches_scipy(p: float, expected: float) -> None:
    assert normal_quantile(p) == pytest.approx(expected, rel=1e-9)


def test_normal_quantile_is_zero_at_the_median_and_antisymmetric() -> None:
    assert normal_quantile(0.5) == 0.0
    assert normal_quantile(0.3) == pytest.approx(-normal_quantile(0.7), rel=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_normal_quantile_rejects_p_outside_the_open_unit_interval(p: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        normal_quantile(p)


# statsmodels.stats.proportion.proportion_confint(method="wilson")
WILSON = [
    (81, 263, 0.95, 0.2552885198782742, 0.36620957698280004),
    (15, 148, 0.95, 0.0623863995307363, 0.16048724172330803),
    (0, 20, 0.95, 0.0, 0.16112515805281938),
    (1, 29, 0.95, 0.006113214292762653, 0.17175521879320288),
    (20, 20, 0.95, 0.8388748419471806, 1.0),
    (3, 50, 0.9, 0.02423125703121838, 0.14094194646069935),
    (500, 1000, 0.99, 0.45940700521208483, 0.5405929947879151),
    (7, 100000, 0.95, 3.390903779016499e-05, 0.00014449869695711302),
    (0, 1, 0.95, 0.0, 0.7934506856227626),
    (1, 1, 0.5, 0.6873152559174167, 1.0),
]


@pytest.mark.parametrize(("k", "n", "confidence", "low", "high"), WILSON)
def test_wilson_matches_statsmodels(
    k: int, n: int, confidence: float, low: float, high: float
) -> None:
    interval = wilson_interval(k, n, confidence)
    assert interval.low == pytest.approx(low, rel=1e-9, abs=1e-15)
    assert interval.high == pytest.approx(high, rel=1e-9)


def test_wilson_reproduces_newcombes_published_table() -> None:
    # Newcombe (1998), Stat Med 17:857-872, worked examples for the score method, 4 decimals.
    published = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (k, n), (low, high) in published.items():
        interval = wilson_interval(k, n)
        assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_wilson_edges_are_exact() -> None:
    assert wilson_interval(0, 50).low == 0.0
    assert wilson_interval(50, 50).high == 1.0
    assert wilson_interval(0, 0) == Interval(0.0, 1.0)


# scipy.stats.binomtest(k, n).proportion_ci(confidence_level=..., method="exact")
CLOPPER_PEARSON = [
    (81, 263, 0.95, 0.25273674558504267, 0.36762192260134746),
    (15, 148, 0.95, 0.05784401008344801, 0.16165049034947895),
    (0, 20, 0.95, 0.0, 0.16843347098308548),
    (1, 29, 0.95, 0.0008726468835971072, 0.17764429548841465),
    (20, 20, 0.95, 0.8315665290169145, 1.0),
    (3, 1000, 0.99, 0.0003381445290663692, 0.01093377742040526),
    (5, 100000, 0.9, 1.970169568211649e-05, 0.00010512745119949377),
    (40000, 100000, 0.95, 0.3969615735103255, 0.40304422765862385),
    (1, 1, 0.95, 0.025000000000000022, 1.0),
    (7, 9, 0.8, 0.509918805554197, 0.939230950348978),
]


@pytest.mark.parametrize(("k", "n", "confidence", "low", "high"), CLOPPER_PEARSON)
def test_clopper_pearson_matches_scipy(
    k: int, n: int, confidence: float, low: float, high: float
) -> None:
    interval = clopper_pearson_interval(k, n, confidence)
    # scipy's own beta quantiles are good to ~2e-9 relative at n = 100,000.
    assert interval.low == pytest.approx(low, rel=1e-8, abs=1e-15)
    assert interval.high == pytest.approx(high, rel=1e-8)


def test_extreme_tails_match_mpmath_where_scipy_drifts() -> None:
    # 40-digit mpmath roots of betainc / exact sums; scipy gives 1.9701695682e-05,
    # 5.126e-12 (2.5% off) and 4.797088e-283 (4e-7 off) for these three.
    assert clopper_pearson_interval(5, 100_000, 0.9).low == pytest.approx(
        1.9701695640052188e-05, rel=1e-9
    )
    assert clopper_pearson_interval(1, 100_000, 0.999999).low == pytest.approx(
        5.0000012501316951e-12, rel=1e-8
    )
    assert binomial_test_two_sided(1395, 2028, 0.3) == pytest.approx(
        4.7970862478251736e-283, rel=1e-9
    )


def test_clopper_pearson_contains_wilson_at_the_edges_and_handles_n_zero() -> None:
    # Exact intervals are the conservative ones: at 0/n and n/n strictly wider.
    assert clopper_pearson_interval(0, 30).high > wilson_interval(0, 30).high
    assert clopper_pearson_interval(30, 30).low < wilson_interval(30, 30).low
    assert clopper_pearson_interval(0, 0) == Interval(0.0, 1.0)


# scipy.stats.binomtest(k, n, p).pvalue
BINOMIAL_TESTS = [
    (7, 20, 0.5, 0.26317596435546875),
    (2, 20, 0.5, 0.0004024505615234375),
    (0, 10, 0.5, 0.001953125),
    (10, 10, 0.5, 0.001953125),
    (3, 15, 0.1, 0.18406106910639106),
    (0, 15, 0.1, 0.38995220120104),
    (6, 15, 0.1, 0.002249670085048001),
    (30, 100, 0.37, 0.17780164846805144),
    (45, 100, 0.37, 0.09863649514904174),
    (130, 500, 0.3, 0.05102495084142843),
    (682, 925, 0.75, 0.3824915595748517),
    (2, 1000, 0.001, 0.26424108696981247),
    (50300, 100000, 0.5, 0.058197353110190364),
    (30150, 100000, 0.3, 0.3006241854132097),
    (3, 9, 1 / 3, 1.0),
]


@pytest.mark.parametrize(("k", "n", "p", "expected"), BINOMIAL_TESTS)
def test_binomial_test_matches_scipy(k: int, n: int, p: float, expected: float) -> None:
    assert binomial_test_two_sided(k, n, p) == pytest.approx(expected, rel=1e-8)


def test_binomial_test_at_degenerate_p() -> None:
    assert binomial_test_two_sided(0, 10, 0.0) == 1.0
    assert binomial_test_two_sided(1, 10, 0.0) == 0.0
    assert binomial_test_two_sided(10, 10, 1.0) == 1.0
    assert binomial_test_two_sided(9, 10, 1.0) == 0.0
    assert binomial_test_two_sided(0, 0, 0.3) == 1.0


# statsmodels.stats.contingency_tables.mcnemar([[0, b], [c, 0]], exact=True).pvalue, equal to
# scipy.stats.binomtest(min(b, c), b + c).pvalue for every row.
MCNEMAR = [
    # Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91: airway
    # hyper-responsiveness before/after stem cell transplantation, published p = 0.070.
    (1, 7, 0.0703125),
    (7, 1, 0.0703125),
    # Agresti, An Introduction to Categorical Data Analysis, presidential approval (150 vs 86).
    (150, 86, 3.7159361395713866e-05),
    (0, 10, 0.001953125),
    (3, 12, 0.03515625),
    (100, 140, 0.01166409231767769),
    (2000, 2150, 0.020715456049267052),
    (9, 10, 1.0),
]


@pytest.mark.parametrize(("b", "c", "expected"), MCNEMAR)
def test_mcnemar_matches_statsmodels_and_scipy(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)
    assert mcnemar_exact(b, c) == pytest.approx(binomial_test_two_sided(min(b, c), b + c))


def test_mcnemar_without_discordance_is_one() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(12, 12) == 1.0


# statsmodels.stats.multitest.multipletests(p, method="holm")[1]
HOLM = [
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    ([0.5, 0.6, 0.01], [1.0, 1.0, 0.03]),
    ([0.02, 0.02, 0.02], [0.06, 0.06, 0.06]),
    ([0.001, 0.2, 0.04, 0.04, 0.9, 0.0], [0.005, 0.4, 0.16, 0.16, 0.9, 0.0]),
]


@pytest.mark.parametrize(("p_values", "expected"), HOLM)
def test_holm_matches_statsmodels(p_values: list[float], expected: list[float]) -> None:
    assert holm_adjust(p_values) == pytest.approx(expected, rel=1e-12)


def test_holm_of_nothing_is_nothing_and_bad_p_values_are_rejected() -> None:
    assert holm_adjust([]) == []
    assert holm_adjust((0.3,)) == [0.3]
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm_adjust([0.1, 1.2])
    with pytest.raises(ValueError, match="between 0 and 1"):
        holm_adjust([math.nan])


# Tango's score interval for (c - b) / n. No published worked table for these exact
# counts was at hand, so the numbers come from two independent implementations: the
# non-iterative quartic of Yang, Sun & Hardin (2013, Stat Med 32:1336) solved with
# numpy.roots, which agrees to 1e-9 with one that maximises the constrained multinomial
# likelihood numerically (scipy.optimize) and root-finds the score with brentq.
# (40, 20, 160) is the example in R's PropCIs::scoreci.mp documentation; (1, 7, 21) is
# the Bentur et al. data of Fagerland et al. (2014); ratesci's skewness-corrected version
# of Tango gives -0.5281 to -0.0184 on it for p1 - p2, close to the plain -0.5172 to -0.0260.
TANGO = [
    (1, 7, 21, 0.95, 0.026003032480868597, 0.5172322764213766),
    (40, 20, 160, 0.95, -0.21806424416682502, -0.03086453313308673),
    (25, 28, 618, 0.95, -0.018785056497448504, 0.028732021259331764),
    (0, 0, 100, 0.95, -0.03699349820698568, 0.03699349820698568),
    (0, 5, 25, 0.95, 0.04016929887314187, 0.3913095036954033),
    (90, 140, 500, 0.95, 0.040845988880240006, 0.15852891587354884),
    (13, 3, 400, 0.99, -0.05758759497711125, 0.0009437302239123478),
    (2, 2, 30, 0.9, -0.13023354950812824, 0.13023354950812824),
]


@pytest.mark.parametrize(("b", "c", "n", "confidence", "low", "high"), TANGO)
def test_paired_difference_matches_independent_tango(
    b: int, c: int, n: int, confidence: float, low: float, high: float
) -> None:
    interval = paired_difference_interval(b, c, n, confidence)
    assert interval.low == pytest.approx(low, rel=1e-8)
    assert interval.high == pytest.approx(high, rel=1e-8)


def test_paired_difference_shape() -> None:
    # Swapping the direction of change mirrors the interval.
    forward, backward = paired_difference_interval(3, 11, 80), paired_difference_interval(11, 3, 80)
    assert backward.low == pytest.approx(-forward.high, rel=1e-12)
    assert backward.high == pytest.approx(-forward.low, rel=1e-12)
    # Every case flipped one way pins that end at the boundary.
    assert paired_difference_interval(0, 40, 40).high == 1.0
    assert paired_difference_interval(40, 0, 40).low == -1.0
    assert paired_difference_interval(0, 0, 0) == Interval(-1.0, 1.0)
    # With no discordance, z^2 / (n + z^2) either side, like Wilson at 0/n.
    z2 = normal_quantile(0.975) ** 2
    assert paired_difference_interval(0, 0, 100).high == pytest.approx(z2 / (100 + z2))


def test_paired_difference_excludes_zero_exactly_when_mcnemars_z_exceeds_the_quantile() -> None:
    # At delta = 0 Tango's statistic is (c - b) / sqrt(b + c).
    z = normal_quantile(0.975)
    for b, c in [(10, 20), (10, 22), (30, 50), (0, 4), (0, 3)]:
        excludes_zero = paired_difference_interval(b, c, 200).low > 0
        assert excludes_zero == ((c - b) / math.sqrt(b + c) > z), (b, c)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(5, 4), "must not exceed n"),
        (lambda: wilson_interval(-1, 4), ">= 0"),
        (lambda: wilson_interval(1, 4, 1.0), "confidence"),
        (lambda: wilson_interval(1, 4, 0.0), "confidence"),
        (lambda: clopper_pearson_interval(1, 4, math.nan), "confidence"),
        (lambda: clopper_pearson_interval(6, 5), "must not exceed n"),
        (lambda: binomial_test_two_sided(3, 2), "must not exceed n"),
        (lambda: binomial_test_two_sided(1, 2, 1.5), "p must be between"),
        (lambda: mcnemar_exact(-1, 2), ">= 0"),
        (lambda: paired_difference_interval(6, 5, 10), "must not exceed n"),
        (lambda: paired_difference_interval(1, 1, 10, 1.5), "confidence"),
        (lambda: Interval(0.5, 0.4), "low <= high"),
        (lambda: verdict_for_interval(Interval(0, 1), max_rate=0.2, min_rate=0.3), "min_rate"),
    ],
)
def test_bad_arguments_raise_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_non_integer_counts_raise_type_error() -> None:
    with pytest.raises(TypeError, match="must be an int"):
        wilson_interval(2.0, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        mcnemar_exact(True, 3)


@pytest.mark.parametrize(
    ("interval", "max_rate", "min_rate", "expected"),
    [
        (Interval(0.2, 0.3), 0.3, None, "pass"),  # touching the bound from inside passes
        (Interval(0.3, 0.4), 0.3, None, "inconclusive"),  # touching from outside does not fail
        (Interval(0.30000001, 0.4), 0.3, None, "fail"),
        (Interval(0.25, 0.35), 0.3, None, "inconclusive"),
        (Interval(0.6, 0.7), None, 0.6, "pass"),
        (Interval(0.5, 0.6), None, 0.6, "inconclusive"),
        (Interval(0.5, 0.59999999), None, 0.6, "fail"),
        (Interval(0.4, 0.6), 0.6, 0.4, "pass"),
        (Interval(0.35, 0.6), 0.6, 0.4, "inconclusive"),
        (Interval(0.7, 0.8), 0.6, 0.4, "fail"),
        (Interval(0.0, 1.0), None, None, "pass"),
    ],
)
def test_verdict_boundaries(
    interval: Interval, max_rate: float | None, min_rate: float | None, expected: str
) -> None:
    assert verdict_for_interval(interval, max_rate=max_rate, min_rate=min_rate) == expected


@pytest.mark.parametrize("k", [0, 1, 29_900, 50_000, 99_999, 100_000])
def test_large_n_stays_finite_and_ordered(k: int) -> None:
    # Speed at this size is measured in benchmarks/, not here.
    n = 100_000
    interval = clopper_pearson_interval(k, n)
    assert 0.0 <= interval.low <= k / n <= interval.high <= 1.0
    assert 0.0 <= binomial_test_two_sided(k, n, 0.3) <= 1.0
    assert 0.0 <= mcnemar_exact(k, n - k) <= 1.0
    paired = paired_difference_interval(k // 3, (n - k) // 3, n)
    assert paired.low <= ((n - k) // 3 - k // 3) / n <= paired.high


def _self_comparison_false_alarm(rng: random.Random, traits: int, cases: int) -> bool:
    """One seed: a model compared with itself; does any trait's Holm-adjusted p fall below 0.05?"""
    p_values = []
    for _ in range(traits):
        b = c = 0
        for _ in range(cases):
            rate = rng.random()  # each case has its own chance of matching
            first, second = rng.random() < rate, rng.random() < rate
            b += first and not second
            c += second and not first
        p_values.append(mcnemar_exact(b, c))
    return min(holm_adjust(p_values)) < 0.05


def test_simulated_self_comparison_rarely_raises_a_false_alarm() -> None:
    seeds = 200
    alarms = sum(
        _self_comparison_false_alarm(random.Random(seed), traits=50, cases=200)
        for seed in range(seeds)
    )
    rate = alarms / seeds
    print(f"false-alarm rate over {seeds} seeds (50 traits x 200 cases): {rate:.3f}")
    # Holm bounds the family-wise error at 0.05; the margin is simulation noise.
    assert rate <= 0.08


def test_simulated_ten_point_regression_is_detected() -> None:
    seeds, cases = 200, 500
    detected = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        b = c = 0
        for _ in range(cases):
            before, after = rng.random() < 0.30, rng.random() < 0.40
            b += before and not after
            c += after and not before
        detected += mcnemar_exact(b, c) < 0.05
    rate = detected / seeds
    print(f"detection rate for 0.30 -> 0.40 over {seeds} seeds of {cases} cases: {rate:.3f}")
    assert rate >= 0.80


# -- the test against a tolerance margin ----------------------------------------


def _profile_score_p(b: int, c: int, n: int, margin: float) -> float:
    """An independent reference for margin_p_value(bad_direction="up"): the restricted
    maximum-likelihood estimate found numerically (golden-section search on the
    multinomial log-likelihood, not Tango's closed-form root), the score statistic
    from it, and the normal tail from math.erfc."""
    concordant = n - b - c

    def log_likelihood(q: float) -> float:
        # cells: match -> non-match q, non-match -> match q + margin, concordant the rest.
        total = 0.0
        for count, probability in ((b, q), (c, q + margin), (concordant, 1 - 2 * q - margin)):
            if count:
                total += count * math.log(probability)
        return total

    low, high = 1e-15, (1 - margin) / 2 - 1e-15
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(300):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if log_likelihood(left) < log_likelihood(right):
            low = left
        else:
            high = right
    q = (low + high) / 2
    z = (c - b - n * margin) / math.sqrt(n * (2 * q + margin - margin * margin))
    return min(1.0, math.erfc(z / math.sqrt(2)))  # 2 * P(Z > z)


@pytest.mark.parametrize(
    ("b", "c", "n", "margin"),
    [
        (5, 30, 200, 0.05),
        (10, 40, 500, 0.03),
        (0, 25, 100, 0.1),
        (20, 20, 1000, 0.02),
        (3, 60, 400, 0.1),
        (50, 120, 1000, 0.05),
        (1, 9, 40, 0.1),
    ],
)
def test_margin_p_value_matches_an_independent_profile_likelihood(
    b: int, c: int, n: int, margin: float
) -> None:
    expected = _profile_score_p(b, c, n, margin)
    assert margin_p_value(b, c, n, margin=margin, bad_direction="up") == pytest.approx(
        expected, rel=1e-6, abs=1e-12
    )
    # "down" is the mirror image: swap the discordant counts.
    assert margin_p_value(c, b, n, margin=margin, bad_direction="down") == pytest.approx(
        expected, rel=1e-6, abs=1e-12
    )


def test_margin_p_value_is_dual_to_tangos_interval() -> None:
    # p < alpha exactly when the two-sided interval lies wholly beyond the margin.
    for b, c, n in ((5, 30, 200), (10, 40, 500), (2, 12, 100), (30, 60, 400)):
        interval = paired_difference_interval(b, c, n, 0.95)
        for margin in (0.0, 0.01, 0.05, 0.1):
            p = margin_p_value(b, c, n, margin=margin, bad_direction="up")
            if abs(interval.low - margin) > 1e-6:
                assert (p < 0.05) is (interval.low > margin), (b, c, n, margin, p, interval)


def test_margin_p_value_for_both_directions_and_edges() -> None:
    assert margin_p_value(0, 0, 0, margin=0.05, bad_direction="up") == 1.0
    # Within the margin the test cannot reject: the estimate is not even beyond it.
    assert margin_p_value(10, 12, 200, margin=0.05, bad_direction="up") == 1.0
    up = margin_p_value(5, 40, 200, margin=0.05, bad_direction="up")
    down = margin_p_value(40, 5, 200, margin=0.05, bad_direction="down")
    assert margin_p_value(5, 40, 200, margin=0.05, bad_direction="both") == pytest.approx(up)
    assert margin_p_value(40, 5, 200, margin=0.05, bad_direction="both") == pytest.approx(down)
    for bad in ({"margin": 1.0, "bad_direction": "up"}, {"margin": 0.1, "bad_direction": "x"}):
        with pytest.raises(ValueError):
            margin_p_value(1, 1, 10, **bad)  # type: ignore[arg-type]


def test_margin_test_errs_at_the_margin_as_mcnemar_does_at_no_change() -> None:
    """Known truth: at a true change equal to the margin, "regressed" about alpha / 2 of
    the time (the one-direction rate of the two-sided test), not about half."""
    runs, n, down, margin = 1500, 400, 0.05, 0.05
    margin_hits = old_hits = 0
    for run in range(runs):
        rng = random.Random(f"margin/{run}")
        b = c = 0
        for _ in range(n):
            draw = rng.random()
            if draw < down + margin:
                c += 1
            elif draw < 2 * down + margin:
                b += 1
        margin_hits += margin_p_value(b, c, n, margin=margin, bad_direction="up") < 0.05
        old_hits += mcnemar_exact(b, c) < 0.05 and (c - b) / n > margin
    assert 0.01 <= margin_hits / runs <= 0.045, margin_hits
    assert old_hits / runs >= 0.35, old_hits

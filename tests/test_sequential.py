"""Tests for pytest_behavior.stats.sequential and pytest_behavior.stats.clustered.

Reference numbers below were computed independently with scipy 1.17.1 by
benchmarks/sequential_reference.py (not in CI: scipy is no dependency), which
says for each method how its computation differs from the package's: brentq on
scipy.special.betaln for the rate sequence, Waudby-Smith & Ramdas's
prior-posterior ratio from scipy.stats.betabinom over every count for the
finite-population sequence, the betting capital multiplied pair by pair over a
shuffled sequence for the paired sequence, scipy.stats.t for Student's t.
Published table values are marked as such. Simulations are seeded and
deterministic; none takes more than a couple of seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import cast

import pytest

from pytest_behavior.stats.clustered import (
    SampledCase,
    clustered_rate,
    paired_sampled_comparison,
    student_t_cdf,
    student_t_quantile,
    unstable_cases,
)
from pytest_behavior.stats.intervals import (
    Interval,
    holm_adjust,
    normal_quantile,
    verdict_for_interval,
    wilson_interval,
)
from pytest_behavior.stats.sequential import (
    PRIOR_STRENGTH,
    UNIFORM_PRIOR,
    BadDirection,
    BetaPrior,
    anytime_p_value,
    comparison_look,
    decide,
    decide_change,
    gate_look,
    paired_confidence_sequence,
    population_confidence_sequence,
    prior_for,
    rate_confidence_sequence,
    rate_log_martingale,
)

# --- reference values (benchmarks/sequential_reference.py, scipy 1.17.1) -----------------
# (matches, n, confidence, prior a, prior b, (low, high))
RATE_SEQUENCE = [
    (0, 10, 0.95, 1.0, 1.0, (0.0, 0.416880275656536)),
    (3, 10, 0.95, 1.0, 1.0, (0.03664029037550997, 0.7332594738358065)),
    (30, 100, 0.95, 1.0, 1.0, (0.16944647804429558, 0.45724598759675583)),
    (300, 1000, 0.95, 1.0, 1.0, (0.25033795256272445, 0.3530151991818497)),
    (50, 1000, 0.9, 1.0, 1.0, (0.029141244178482052, 0.0784438678335999)),
    (1000, 1000, 0.95, 1.0, 1.0, (0.9901444008427149, 1.0)),
    (7, 200, 0.99, 3.0, 7.0, (0.003964939715630521, 0.11978199124646263)),
    (150, 500, 0.95, 3.0, 7.0, (0.23818353920199686, 0.3671088685073421)),
    (12345, 100000, 0.95, 1.0, 1.0, (0.1190951030033873, 0.12789471197010333)),
    (1, 40, 0.95, 0.5, 9.5, (0.00022540346314640732, 0.1543383661124625)),
]
# (matches, n, population, confidence, prior a, prior b, (lowest count, highest count))
POPULATION_SEQUENCE = [
    (3, 10, 100, 0.95, 1.0, 1.0, (5, 71)),
    (30, 100, 1000, 0.95, 1.0, 1.0, (176, 449)),
    (300, 900, 1000, 0.95, 1.0, 1.0, (316, 353)),
    (250, 990, 1000, 0.95, 3.0, 7.0, (250, 258)),
    (0, 50, 200, 0.95, 1.0, 1.0, (0, 22)),
    (12, 20, 20, 0.95, 1.0, 1.0, (12, 12)),
    (700, 2000, 10000, 0.99, 3.0, 7.0, (3138, 3875)),
    (40, 400, 5000, 0.9, 0.5, 9.5, (307, 753)),
]
# (to matching, to not matching, n paired, confidence, (low, high))
PAIRED_SEQUENCE = [
    (10, 5, 100, 0.95, (-0.0942536003960528, 0.19885869810546025)),
    (0, 0, 100, 0.95, (-0.06710332154645873, 0.06710332154645873)),
    (100, 0, 100, 0.95, (0.8657933569070826, 1.0)),
    (30, 12, 500, 0.95, (-0.007926890381536808, 0.08425036298132)),
    (3, 9, 40, 0.9, (-0.42569838803792925, 0.13913785122351596)),
    (0, 0, 1, 0.95, (-0.99569824940507, 0.99569824940507)),
    (50, 50, 100, 0.95, (-0.32835867093024845, 0.32835867093024845)),
    (0, 7, 7, 0.99, (-1.0, 0.3951344697563422)),
]
# (to matching, to not matching, n paired, tolerance, bad direction, p-value)
ANYTIME_P_VALUES = [
    (30, 5, 100, 0.05, "up", 0.029957429110449546),
    (5, 30, 100, 0.05, "down", 0.029957429110449546),
    (20, 20, 200, 0.0, "both", 1.0),
    (40, 10, 300, 0.02, "up", 0.03226653416375937),
    (80, 10, 300, 0.1, "both", 0.0003998700602538582),
    (10, 80, 300, 0.1, "both", 0.0003998700602538575),
    (90, 10, 300, 0.1, "up", 5.156747708098702e-06),
]
# (probability, degrees of freedom, scipy.stats.t.ppf)
T_QUANTILES = [
    (0.6, 1, 0.32491969623290634),
    (0.9, 1, 3.0776835371752544),
    (0.975, 1, 12.706204736174694),
    (0.995, 1, 63.656741162871526),
    (0.999999999, 1, 318309895.1862093),
    (0.6, 2, 0.2886751345948128),
    (0.9, 2, 1.8856180831641272),
    (0.975, 2, 4.302652729749462),
    (0.995, 2, 9.924843200918287),
    (0.999999999, 2, 22360.68005765849),
    (0.6, 3, 0.2766706623326898),
    (0.9, 3, 1.637744353696209),
    (0.975, 3, 3.1824463052837078),
    (0.995, 3, 5.840909309733355),
    (0.999999999, 3, 1033.1096842432753),
    (0.6, 5, 0.2671808657041451),
    (0.9, 5, 1.4758840488244815),
    (0.975, 5, 2.5705818356363146),
    (0.995, 5, 4.032142983555228),
    (0.999999999, 5, 98.93722520824214),
    (0.6, 10, 0.2601848294920803),
    (0.9, 10, 1.372183641110336),
    (0.975, 10, 2.228138851986274),
    (0.995, 10, 3.16927267261695),
    (0.999999999, 10, 20.144697824931782),
    (0.6, 30, 0.2556053649519128),
    (0.9, 30, 1.3104150253913955),
    (0.975, 30, 2.0422724563012378),
    (0.995, 30, 2.7499956535672254),
    (0.999999999, 30, 8.445862807441596),
    (0.6, 100, 0.25402218245822766),
    (0.9, 100, 1.290074761346516),
    (0.975, 100, 1.9839715185235518),
    (0.995, 100, 2.6258905214380173),
    (0.999999999, 100, 6.5989398266774675),
    (0.6, 1000, 0.25341451583949876),
    (0.9, 1000, 1.2823987214609247),
    (0.975, 1000, 1.9623390808264083),
    (0.995, 1000, 2.580754698065951),
    (0.999999999, 1000, 6.0536902768005225),
    (0.6, 2.5, 0.2814595127485477),
    (0.9, 2.5, 1.7302509288071766),
    (0.975, 2.5, 3.5746548420036817),
    (0.995, 2.5, 7.163728138948783),
    (0.999999999, 2.5, 3489.5834348468516),
    (0.6, 0.5, 0.3979754267847907),
    (0.9, 0.5, 10.27032441023451),
    (0.975, 0.5, 164.55767348048818),
    (0.995, 0.5, 4113.964588804174),
    (0.999999999, 0.5, 1.028491214491775e17),
]
# (t, degrees of freedom, scipy.stats.t.cdf)
T_CDF = [
    (-3.0, 4, 0.019970984035859413),
    (0.5, 1, 0.6475836176504333),
    (1.0, 2.5, 0.7979694863608632),
    (2.5, 30, 0.9909421754659666),
    (-0.1, 1000, 0.46018218451180204),
    (8.0, 3, 0.9979617112061072),
]
# (index into CLUSTER_COUNTS, (rate, n_eff, df), Wilson (low, high), t (low, high))
CLUSTERED = [
    (
        0,
        (0.33999999999999997, 46.620498614958436, 14.27200414693889),
        (0.21186938305488204, 0.4967764025949193),
        (0.195679948182686, 0.48432005181731397),
    ),
    (
        1,
        (0.08333333333333334, 119.99999999999994, 17.142857142857135),
        (0.04390008351255693, 0.1525364371159057),
        (0.03658387290635917, 0.1300827937603075),
    ),
    (
        2,
        (0.45, 57.48387096774192, 16.924973582247276),
        (0.3201339287840854, 0.587057641917295),
        (0.3135045088526214, 0.5864954911473786),
    ),
]
# (index into SAMPLED_SHARES, (low, high, p-value))
SAMPLED_COMPARISON = [
    (0, (0.06617832721021638, 0.2338216727897836, 0.0009985092144641106)),
    (1, (-0.05233021691529659, 0.2446379092229889, 0.20436469196090457)),
]
# The inputs of CLUSTERED and SAMPLED_COMPARISON, as in sequential_reference.py.
CLUSTER_COUNTS = [
    [(0, 5), (1, 5), (5, 5), (2, 5), (0, 5), (0, 5), (3, 5), (5, 5), (1, 5), (0, 5)] * 3,
    [(0, 3), (0, 3), (1, 3), (0, 3)] * 10,
    [(2, 4), (1, 2), (7, 10), (0, 1), (3, 3), (0, 5)] * 5,
]
SAMPLED_SHARES: list[tuple[list[float], list[float], int]] = [
    ([0.2, 0.4, 1.0, 0.0, 0.6] * 6, [0.0, 0.4, 0.8, 0.0, 0.2] * 6, 5),
    ([1.0, 0, 0, 1, 0, 0, 0, 0, 1, 0] * 5, [0.0, 0, 0, 1, 0, 1, 0, 0, 0, 0] * 5, 1),
]

LOG_20 = math.log(20.0)  # log(1 / alpha) at 95%
SIDEWAYS = cast(BadDirection, "sideways")


def cases_of(counts: list[tuple[int, int]]) -> list[SampledCase]:
    return [SampledCase(f"c{index}", k, samples) for index, (k, samples) in enumerate(counts)]


# --- the Bernoulli rate sequence -----------------------------------------------------------


@pytest.mark.parametrize(("k", "n", "confidence", "a", "b", "expected"), RATE_SEQUENCE)
def test_rate_sequence_matches_scipy(
    k: int, n: int, confidence: float, a: float, b: float, expected: tuple[float, float]
) -> None:
    interval = rate_confidence_sequence(k, n, confidence, prior=BetaPrior(a, b))
    assert interval.low == pytest.approx(expected[0], abs=1e-11)
    assert interval.high == pytest.approx(expected[1], abs=1e-11)
    # The bound errs wide, never narrow: it is itself outside (or the end of [0, 1]), up
    # to the rounding of another order of the same arithmetic.
    for bound in (interval.low, interval.high):
        if 0.0 < bound < 1.0:
            log_martingale = rate_log_martingale(k, n, bound, BetaPrior(a, b))
            assert log_martingale >= -math.log1p(-confidence) - 1e-12


def test_uniform_prior_marginal_is_one_over_n_plus_one_choose_k() -> None:
    # Under Beta(1, 1) the probability of a sequence with k of n is 1 / ((n + 1) C(n, k)),
    # so at p = k / n the martingale is that over the best likelihood.
    k, n = 7, 30
    p = k / n
    expected = -math.log((n + 1) * math.comb(n, k)) - (k * math.log(p) + (n - k) * math.log1p(-p))
    assert rate_log_martingale(k, n, p) == pytest.approx(expected, rel=1e-12)


def test_rate_sequence_is_the_set_of_rates_whose_martingale_stays_below_one_over_alpha() -> None:
    rng = random.Random(11)
    for _ in range(300):
        n = rng.randint(1, 300)
        k = rng.randint(0, n)
        interval = rate_confidence_sequence(k, n)
        for p in (interval.low + 1e-9, (interval.low + interval.high) / 2, interval.high - 1e-9):
            assert rate_log_martingale(k, n, p) < LOG_20
        for p in (interval.low - 1e-9, interval.high + 1e-9):
            if 0.0 <= p <= 1.0:
                assert rate_log_martingale(k, n, p) >= LOG_20


def first_miss(rng: random.Random, p: float, horizon: int, prior: BetaPrior) -> bool:
    matches = 0
    for n in range(1, horizon + 1):
        matches += rng.random() < p
        if rate_log_martingale(matches, n, p, prior) >= LOG_20:
            return True
    return False


@pytest.mark.parametrize(("p", "prior"), [(0.3, UNIFORM_PRIOR), (0.05, BetaPrior(3.0, 7.0))])
def test_rate_sequence_covers_at_every_n_in_95_percent_of_streams(
    p: float, prior: BetaPrior
) -> None:
    # 2,000 seeded streams of 200 answers; the sequence contains p at n exactly when the
    # martingale at p is below 1/alpha, so this checks every n of every stream. A fixed-n
    # 95% interval looked at 200 times misses in far more than 5% of streams.
    misses = sum(first_miss(random.Random(seed), p, 200, prior) for seed in range(2000))
    assert misses / 2000 <= 0.05


def test_fixed_n_wilson_peeked_at_every_n_misses_far_more_often() -> None:
    misses = 0
    for seed in range(500):
        rng = random.Random(seed)
        matches = 0
        for n in range(1, 201):
            matches += rng.random() < 0.3
            if not wilson_interval(matches, n).contains(0.3):
                misses += 1
                break
    assert misses / 500 > 0.2


@pytest.mark.parametrize(
    "sequence",
    [
        lambda k, n, c: rate_confidence_sequence(k, n, c),
        lambda k, n, c: population_confidence_sequence(k, n, 400, c),
        lambda k, n, c: paired_confidence_sequence(k // 2, k // 3, n, c),
    ],
    ids=["rate", "population", "paired"],
)
def test_sequences_widen_as_the_confidence_rises(
    sequence: Callable[[int, int, float], Interval],
) -> None:
    for k, n in [(0, 10), (3, 10), (40, 200), (150, 300), (300, 300)]:
        wide, middle, narrow = (sequence(k, n, c) for c in (0.99, 0.95, 0.8))
        assert wide.low <= middle.low <= narrow.low
        assert narrow.high <= middle.high <= wide.high


def test_no_cases_give_the_whole_range() -> None:
    assert rate_confidence_sequence(0, 0) == Interval(0.0, 1.0)
    assert population_confidence_sequence(0, 0, 50) == Interval(0.0, 1.0)
    assert paired_confidence_sequence(0, 0, 0) == Interval(-1.0, 1.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rate_confidence_sequence(5, 4), "must not exceed n"),
        (lambda: rate_confidence_sequence(-1, 4), ">= 0"),
        (lambda: rate_confidence_sequence(1, 4, 1.0), "strictly between"),
        (lambda: population_confidence_sequence(1, 11, 10), "must not exceed the population"),
        (lambda: paired_confidence_sequence(3, 3, 5), "must not exceed n_paired"),
        (lambda: rate_log_martingale(1, 2, 1.5), "between 0 and 1"),
        (lambda: BetaPrior(0.0, 1.0), "positive"),
        (
            lambda: gate_look(1, 2, max_rate=0.3, min_rate=None, population=5, max_cases=6),
            "max_cases",
        ),
        (lambda: anytime_p_value(1, 1, 5, tolerance=-0.1, bad_direction="up"), "tolerance"),
        (
            lambda: decide_change(Interval(0, 1), tolerance=0.1, bad_direction=SIDEWAYS),
            "bad_direction",
        ),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_counts_must_be_ints() -> None:
    with pytest.raises(TypeError):
        rate_confidence_sequence(1.0, 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rate_confidence_sequence(True, 4)


# --- the finite-population sequence ----------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "population", "confidence", "a", "b", "expected"), POPULATION_SEQUENCE
)
def test_population_sequence_matches_the_prior_posterior_ratio(
    k: int,
    n: int,
    population: int,
    confidence: float,
    a: float,
    b: float,
    expected: tuple[int, int],
) -> None:
    interval = population_confidence_sequence(k, n, population, confidence, prior=BetaPrior(a, b))
    assert interval == Interval(expected[0] / population, expected[1] / population)


def test_population_sequence_is_exact_once_every_case_is_seen() -> None:
    for population, k in [(1, 0), (1, 1), (20, 12), (1000, 300), (10_000, 2_567)]:
        interval = population_confidence_sequence(k, population, population)
        assert interval == Interval(k / population, k / population)


def test_population_sequence_covers_the_true_count_at_every_n() -> None:
    # 250 seeded random orders of files of 100 cases; every n of every order.
    population, misses = 100, 0
    for seed in range(250):
        rng = random.Random(seed)
        matching = rng.randint(0, population)
        answers = [True] * matching + [False] * (population - matching)
        rng.shuffle(answers)
        rate = matching / population
        k, missed = 0, False
        for n, answer in enumerate(answers, start=1):
            k += answer
            if not population_confidence_sequence(k, n, population).contains(rate):
                missed = True
        assert population_confidence_sequence(k, population, population).contains(rate)
        misses += missed
    assert misses / 250 <= 0.05


def test_population_sequence_is_tighter_than_the_bernoulli_one_late_in_the_file() -> None:
    population = 1000
    for n in (500, 700, 900, 990):
        for k in (0, n // 20, n // 4, n // 2):
            finite = population_confidence_sequence(k, n, population)
            bernoulli = rate_confidence_sequence(k, n)
            assert finite.high - finite.low < bernoulli.high - bernoulli.low
            assert bernoulli.low - 1e-3 <= finite.low and finite.high <= bernoulli.high + 1e-3


# --- decisions -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 100, 1_000, 100_000, 10_000_000])
def test_a_rate_exactly_at_the_threshold_continues_at_every_n(n: int) -> None:
    k = 3 * n // 10
    assert k / n == 0.3
    decision = gate_look(k, n, max_rate=0.3, min_rate=None)
    assert decision.status == "continue"
    assert decision.interval.contains(0.3)
    below = gate_look(k, n, max_rate=None, min_rate=0.3)
    assert below.status == "continue"


def test_an_undecided_gate_is_inconclusive_at_max_cases() -> None:
    decision = gate_look(300, 1000, max_rate=0.3, min_rate=None, max_cases=1000)
    assert decision.status == "inconclusive"
    assert "max_cases (1000)" in decision.reason
    assert gate_look(300, 999, max_rate=0.3, min_rate=None, max_cases=1000).status == "continue"


def test_the_whole_file_decides_a_rate_exactly_at_the_threshold_as_within_it() -> None:
    # At n = N the finite-population interval is the file's exact rate, and touching a
    # bound counts as within (as in stats.verdict_for_interval).
    assert gate_look(300, 1000, max_rate=0.3, min_rate=None, population=1000).status == "pass"
    assert gate_look(301, 1000, max_rate=0.3, min_rate=None, population=1000).status == "fail"
    assert gate_look(300, 1000, max_rate=None, min_rate=0.3, population=1000).status == "pass"
    # Stopping short of the file leaves it open.
    early = gate_look(270, 900, max_rate=0.3, min_rate=None, population=1000, max_cases=900)
    assert early.status == "inconclusive"


def test_below_min_cases_a_gate_continues_whatever_the_interval_says() -> None:
    assert gate_look(0, 19, max_rate=0.5, min_rate=None).status == "pass"
    held = gate_look(0, 19, max_rate=0.5, min_rate=None, min_cases=20)
    assert held.status == "continue"
    assert "min_cases (20)" in held.reason
    # Except at max_cases, where the look is the last one.
    assert (
        gate_look(0, 19, max_rate=0.5, min_rate=None, min_cases=20, max_cases=19).status == "pass"
    )


@pytest.mark.parametrize(
    ("interval", "max_rate", "min_rate", "status"),
    [
        (Interval(0.1, 0.3), 0.3, None, "pass"),  # touching the bound is within
        (Interval(0.3, 0.5), 0.3, None, "continue"),  # low == max_rate is not beyond
        (Interval(0.30000000000000004, 0.5), 0.3, None, "fail"),
        (Interval(0.3, 0.5), None, 0.3, "pass"),
        (Interval(0.1, 0.3), None, 0.3, "continue"),
        (Interval(0.1, 0.29999999999999993), None, 0.3, "fail"),
        (Interval(0.2, 0.4), 0.5, 0.1, "pass"),
        (Interval(0.05, 0.4), 0.5, 0.1, "continue"),
        (Interval(0.0, 1.0), None, None, "pass"),
    ],
)
def test_decide_has_the_fixed_gates_edges(
    interval: Interval, max_rate: float | None, min_rate: float | None, status: str
) -> None:
    assert decide(interval, max_rate=max_rate, min_rate=min_rate).status == status


def test_decide_is_verdict_for_interval_with_inconclusive_read_as_continue() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        low = rng.choice([0.0, 0.1, 0.3, rng.random()])
        high = rng.choice([low, 0.3, 1.0, low + (1 - low) * rng.random()])
        interval = Interval(min(low, high), max(low, high))
        max_rate = rng.choice([None, 0.3, rng.random()])
        min_rate = rng.choice([None, 0.1, 0.3])
        if max_rate is not None and min_rate is not None and min_rate > max_rate:
            continue
        verdict = verdict_for_interval(interval, max_rate=max_rate, min_rate=min_rate)
        status = decide(interval, max_rate=max_rate, min_rate=min_rate).status
        assert status == {"inconclusive": "continue"}.get(verdict, verdict)


def test_the_default_prior_is_centred_on_the_bounds() -> None:
    assert prior_for(max_rate=0.3, min_rate=None) == BetaPrior(3.0, 7.0)
    assert prior_for(max_rate=None, min_rate=0.8) == BetaPrior(8.0, 2.0)
    assert prior_for(max_rate=0.6, min_rate=0.2) == BetaPrior(4.0, 6.0)
    assert prior_for(max_rate=None, min_rate=None) == UNIFORM_PRIOR
    # A threshold of 0 keeps a proper prior.
    assert prior_for(max_rate=0.0, min_rate=None) == BetaPrior(0.5, PRIOR_STRENGTH - 0.5)
    explicit = gate_look(3, 40, max_rate=0.3, min_rate=None, prior=UNIFORM_PRIOR)
    assert explicit.interval == rate_confidence_sequence(3, 40, prior=UNIFORM_PRIOR)
    default = gate_look(3, 40, max_rate=0.3, min_rate=None)
    assert default.interval == rate_confidence_sequence(3, 40, prior=BetaPrior(3.0, 7.0))


def run_gate(rate: float, seed: int, *, population: bool) -> str:
    rng = random.Random(seed)
    total = 400
    if population:
        answers = [True] * round(rate * total) + [False] * (total - round(rate * total))
        rng.shuffle(answers)
    else:
        answers = [rng.random() < rate for _ in range(total)]
    k = 0
    for n in range(20, total + 1, 20):
        k += sum(answers[n - 20 : n])
        decision = gate_look(
            k,
            n,
            max_rate=0.3,
            min_rate=None,
            population=total if population else None,
            max_cases=total,
        )
        if decision.status != "continue":
            return decision.status
    raise AssertionError("no final status")


@pytest.mark.parametrize("population", [False, True], ids=["bernoulli", "finite"])
def test_the_sequential_gate_rarely_fails_a_rate_at_the_threshold(population: bool) -> None:
    # Looked at after every batch of 20, up to 400 cases: wrong fails stay below 5%.
    statuses = [run_gate(0.3, seed, population=population) for seed in range(300)]
    assert statuses.count("fail") / 300 <= 0.05


# --- the paired comparison -------------------------------------------------------------------


@pytest.mark.parametrize(("up", "down", "n", "confidence", "expected"), PAIRED_SEQUENCE)
def test_paired_sequence_matches_the_capital_multiplied_pair_by_pair(
    up: int, down: int, n: int, confidence: float, expected: tuple[float, float]
) -> None:
    interval = paired_confidence_sequence(up, down, n, confidence)
    assert interval.low == pytest.approx(expected[0], abs=1e-10)
    assert interval.high == pytest.approx(expected[1], abs=1e-10)
    assert interval.contains((up - down) / n)


@pytest.mark.parametrize(
    ("up", "down", "n", "tolerance", "direction", "expected"), ANYTIME_P_VALUES
)
def test_anytime_p_values_match_the_reference(
    up: int, down: int, n: int, tolerance: float, direction: BadDirection, expected: float
) -> None:
    found = anytime_p_value(up, down, n, tolerance=tolerance, bad_direction=direction)
    assert found == pytest.approx(expected, rel=1e-9, abs=1e-300)


def paired_stream(rng: random.Random, up: float, down: float) -> int:
    draw = rng.random()
    return 1 if draw < up else -1 if draw < up + down else 0


@pytest.mark.parametrize(
    ("up", "down", "tolerance", "direction"),
    [(0.1, 0.1, 0.0, "both"), (0.15, 0.05, 0.1, "up")],
    ids=["no-change", "delta-0.1"],
)
def test_paired_sequence_covers_at_every_n(
    up: float, down: float, tolerance: float, direction: BadDirection
) -> None:
    # The true delta is the null's edge, so the anytime p-value is <= alpha exactly when the
    # sequence excludes the truth (on that side); checked at every n of 300 streams.
    misses = 0
    for seed in range(300):
        rng = random.Random(seed)
        counts = {1: 0, -1: 0, 0: 0}
        for n in range(1, 121):
            counts[paired_stream(rng, up, down)] += 1
            p = anytime_p_value(
                counts[1], counts[-1], n, tolerance=tolerance, bad_direction=direction
            )
            if p <= 0.05:
                misses += 1
                break
    assert misses / 300 <= 0.05


def test_anytime_p_value_agrees_with_the_sequence() -> None:
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randint(1, 400)
        up = rng.randint(0, n)
        down = rng.randint(0, n - up)
        tolerance = rng.choice([0.0, 0.02, 0.05, 0.1])
        interval = paired_confidence_sequence(up, down, n)
        checks: tuple[tuple[BadDirection, bool], ...] = (
            ("up", interval.low > tolerance),
            ("down", interval.high < -tolerance),
            ("both", interval.low > tolerance or interval.high < -tolerance),
        )
        for direction, beyond in checks:
            p = anytime_p_value(up, down, n, tolerance=tolerance, bad_direction=direction)
            if abs(math.log(p / 0.05)) > 1e-6:  # away from the edge itself
                assert (p <= 0.05) == beyond


def test_anytime_p_value_keeps_the_running_minimum() -> None:
    assert anytime_p_value(30, 5, 100, tolerance=0.05, bad_direction="up", previous=0.01) == 0.01
    assert anytime_p_value(0, 0, 0, tolerance=0.05, bad_direction="up", previous=0.2) == 0.2


def test_holm_on_anytime_p_values_keeps_the_family_wise_rate() -> None:
    # Five traits, each exactly at the tolerance (the null's edge), each stopped at its
    # own first look with p <= alpha or at 300 pairs; Holm on the p-values at the stops.
    false_alarms = 0
    for seed in range(150):
        rng = random.Random(seed)
        p_values = []
        for _ in range(5):
            up = down = 0
            p = 1.0
            for n in range(1, 301):
                change = paired_stream(rng, 0.1, 0.05)
                up += change == 1
                down += change == -1
                if n % 20 == 0:
                    p = anytime_p_value(up, down, n, tolerance=0.05, bad_direction="up", previous=p)
                    if p <= 0.05:
                        break
            p_values.append(p)
        false_alarms += any(adjusted < 0.05 for adjusted in holm_adjust(p_values))
    assert false_alarms / 150 <= 0.05


@pytest.mark.parametrize(
    ("interval", "direction", "status"),
    [
        (Interval(0.051, 0.2), "up", "regressed"),
        (Interval(0.05, 0.2), "up", "continue"),  # low == tolerance is not beyond
        (Interval(-0.3, 0.05), "up", "no_regression"),  # touching counts as within
        (Interval(-0.2, -0.051), "down", "regressed"),
        (Interval(-0.05, 0.3), "down", "no_regression"),
        (Interval(-0.2, -0.051), "both", "regressed"),
        (Interval(0.051, 0.2), "both", "regressed"),
        (Interval(-0.05, 0.05), "both", "no_regression"),
        (Interval(-0.06, 0.04), "both", "continue"),
    ],
)
def test_decide_change_edges(interval: Interval, direction: BadDirection, status: str) -> None:
    decision = decide_change(interval, tolerance=0.05, bad_direction=direction)
    assert decision.status == status
    assert decision.p_value is None


def test_comparison_look_with_no_tolerance_never_establishes_no_regression_of_an_unchanged_model() -> (
    None
):
    for n in (100, 1000, 100_000):
        look = comparison_look(n // 10, n // 10, n, tolerance=0.0, bad_direction="up")
        assert look.status == "continue"
    final = comparison_look(100, 100, 1000, tolerance=0.0, bad_direction="up", max_pairs=1000)
    assert final.status == "inconclusive"
    settled = comparison_look(100, 100, 1000, tolerance=0.1, bad_direction="up", max_pairs=1000)
    assert settled.status == "no_regression"
    assert settled.p_value == 1.0
    early = comparison_look(0, 0, 10, tolerance=0.9, bad_direction="up", min_pairs=20)
    assert early.status == "continue"


def test_comparison_look_reports_a_regression_with_its_p_value() -> None:
    look = comparison_look(150, 20, 1000, tolerance=0.05, bad_direction="up")
    assert look.status == "regressed"
    assert look.interval.low > 0.05
    assert look.p_value is not None and look.p_value <= 0.05


# --- Student's t ---------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "df", "expected"), T_QUANTILES)
def test_t_quantiles_match_scipy(p: float, df: float, expected: float) -> None:
    assert student_t_quantile(p, df) == pytest.approx(expected, rel=1e-11)
    assert student_t_quantile(1.0 - p, df) == pytest.approx(-expected, rel=1e-8)


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 1, 12.706),
        (0.975, 10, 2.228),
        (0.975, 30, 2.042),
        (0.995, 5, 4.032),
        (0.95, 20, 1.725),
    ],
)
def test_t_quantiles_match_published_tables(p: float, df: int, table: float) -> None:
    # Student's t table (e.g. Abramowitz & Stegun 1964, table 26.10), three decimals.
    assert round(student_t_quantile(p, df), 3) == table


def test_t_quantile_approaches_the_normal_one() -> None:
    assert student_t_quantile(0.975, 100_000) == pytest.approx(normal_quantile(0.975), rel=1e-4)
    assert student_t_quantile(0.5, 7) == 0.0


@pytest.mark.parametrize(("t", "df", "expected"), T_CDF)
def test_t_cdf_matches_scipy(t: float, df: float, expected: float) -> None:
    assert student_t_cdf(t, df) == pytest.approx(expected, rel=1e-12)


def test_t_quantile_inverts_the_cdf() -> None:
    for df in (1.5, 4, 17, 250):
        for p in (0.51, 0.8, 0.99, 0.9999):
            assert student_t_cdf(student_t_quantile(p, df), df) == pytest.approx(p, rel=1e-12)


# --- clustered sampling --------------------------------------------------------------------


@pytest.mark.parametrize(("index", "estimate", "wilson", "t"), CLUSTERED)
def test_clustered_intervals_match_the_reference(
    index: int,
    estimate: tuple[float, float, float],
    wilson: tuple[float, float],
    t: tuple[float, float],
) -> None:
    cases = cases_of(CLUSTER_COUNTS[index])
    found = clustered_rate(cases)
    assert found.rate == pytest.approx(estimate[0], rel=1e-12)
    assert found.effective_n == pytest.approx(estimate[1], rel=1e-9)
    assert found.degrees_of_freedom == pytest.approx(estimate[2], rel=1e-9)
    assert found.interval.low == pytest.approx(wilson[0], abs=1e-12)
    assert found.interval.high == pytest.approx(wilson[1], abs=1e-12)
    by_t = clustered_rate(cases, method="t")
    assert by_t.interval.low == pytest.approx(t[0], abs=1e-12)
    assert by_t.interval.high == pytest.approx(t[1], abs=1e-12)


def test_one_sample_per_case_is_the_fixed_gates_wilson_interval() -> None:
    for k, m in [(0, 30), (7, 30), (30, 30), (41, 250)]:
        cases = [SampledCase(str(i), int(i < k), 1) for i in range(m)]
        found = clustered_rate(cases)
        assert found.interval == wilson_interval(k, m)
        assert found.design_effect == 1.0
        assert found.degrees_of_freedom == math.inf


def test_agreeing_answers_keep_the_width_of_one_answer_per_case() -> None:
    # All 5 samples of all 30 cases match nothing: no variance to estimate, so the cases
    # count once each, not 150 times; the t interval collapses to a point.
    cases = [SampledCase(str(i), 0, 5) for i in range(30)]
    assert clustered_rate(cases).interval == wilson_interval(0, 30)
    assert clustered_rate(cases, method="t").interval == Interval(0.0, 0.0)


def test_clustered_rate_is_the_mean_of_the_case_shares() -> None:
    cases = [SampledCase("a", 1, 2), SampledCase("b", 0, 4), SampledCase("c", 10, 10)]
    found = clustered_rate(cases)
    assert found.rate == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert found.cases == 3
    assert found.samples == 16
    assert found.design_effect >= 1.0
    assert clustered_rate(cases[:1]).interval == Interval(0.0, 1.0)
    with pytest.raises(ValueError, match="at least one case"):
        clustered_rate([])
    with pytest.raises(ValueError, match="between 0 and samples"):
        SampledCase("x", 3, 2)


def coverage(
    mean: float, correlation: float, cases: int, samples: int, runs: int, seed: int
) -> float:
    total = 1.0 / correlation - 1.0
    a, b = mean * total, (1.0 - mean) * total
    rng = random.Random(seed)
    hits = 0
    for _ in range(runs):
        sampled = []
        for index in range(cases):
            p = rng.betavariate(a, b)
            sampled.append(
                SampledCase(str(index), sum(rng.random() < p for _ in range(samples)), samples)
            )
        hits += clustered_rate(sampled).interval.contains(mean)
    return hits / runs


@pytest.mark.parametrize(
    ("mean", "correlation", "cases", "samples"),
    [(0.3, 0.3, 30, 5), (0.1, 0.5, 30, 10), (0.3, 0.1, 100, 3)],
)
def test_clustered_interval_covers_heterogeneous_cases(
    mean: float, correlation: float, cases: int, samples: int
) -> None:
    # Each case's probability drawn from a beta distribution (intra-case correlation
    # 1 / (a + b + 1)); 95% nominal, at least 93% required over 600 seeded runs.
    assert coverage(mean, correlation, cases, samples, runs=600, seed=1) >= 0.93


def test_counting_samples_as_independent_answers_would_not_cover() -> None:
    # The same heterogeneous cases with Wilson on all m * K answers: far below 95%.
    rng = random.Random(2)
    hits = 0
    for _ in range(400):
        matches = 0
        for _ in range(30):
            p = rng.betavariate(0.3 * 1.0, 0.7 * 1.0)  # correlation 0.5
            matches += sum(rng.random() < p for _ in range(10))
        hits += wilson_interval(matches, 300).contains(0.3)
    assert hits / 400 < 0.75


def test_unstable_cases_are_those_whose_answers_disagree_most_divided_first() -> None:
    cases = [
        SampledCase("steady-yes", 5, 5),
        SampledCase("b", 1, 5),
        SampledCase("steady-no", 0, 5),
        SampledCase("a", 3, 5),
        SampledCase("half", 2, 4),
        SampledCase("single", 1, 1),
    ]
    assert [case.case_id for case in unstable_cases(cases)] == ["half", "a", "b"]
    assert unstable_cases(list(reversed(cases))) == unstable_cases(cases)


# --- the sampled comparison ----------------------------------------------------------------


@pytest.mark.parametrize(("index", "expected"), SAMPLED_COMPARISON)
def test_sampled_comparison_matches_the_reference(
    index: int, expected: tuple[float, float, float]
) -> None:
    current, reference, samples = SAMPLED_SHARES[index]
    found = paired_sampled_comparison(
        [SampledCase(str(i), round(share * samples), samples) for i, share in enumerate(current)],
        [SampledCase(str(i), round(share * samples), samples) for i, share in enumerate(reference)],
    )
    assert found.interval.low == pytest.approx(expected[0], abs=1e-12)
    assert found.interval.high == pytest.approx(expected[1], abs=1e-12)
    assert found.p_value == pytest.approx(expected[2], rel=1e-9)
    assert found.delta == pytest.approx(
        sum(current) / len(current) - sum(reference) / len(reference)
    )


def test_sampled_comparison_pairs_by_case_id() -> None:
    current = [SampledCase("a", 2, 4), SampledCase("b", 0, 4), SampledCase("new", 4, 4)]
    reference = [SampledCase("b", 4, 4), SampledCase("a", 2, 4), SampledCase("gone", 0, 4)]
    found = paired_sampled_comparison(current, reference)
    assert found.n_paired == 2
    assert found.delta == pytest.approx(-0.5)
    assert found.added == ("new",)
    assert found.removed == ("gone",)
    with pytest.raises(ValueError, match="unique"):
        paired_sampled_comparison(current + current[:1], reference)
    empty = paired_sampled_comparison(current[2:], reference[2:])
    assert (empty.n_paired, empty.interval, empty.p_value) == (0, Interval(-1.0, 1.0), 1.0)


def test_unchanged_cases_still_leave_an_honest_width() -> None:
    # Without Agresti & Min's pseudo-cases 40 identical cases would give a zero-width
    # interval at 0; with them it keeps a width of about 2 t / (m + 2).
    same = [SampledCase(str(i), 3, 5) for i in range(40)]
    found = paired_sampled_comparison(same, same)
    assert found.interval.low < -0.04 and found.interval.high > 0.04
    assert found.p_value == 1.0
    assert found.interval.contains(0.0)


def test_sampled_comparison_p_value_matches_its_interval() -> None:
    rng = random.Random(9)
    for _ in range(200):
        m = rng.randint(3, 60)
        samples = rng.choice([1, 3, 5])
        current = [SampledCase(str(i), rng.randint(0, samples), samples) for i in range(m)]
        reference = [SampledCase(str(i), rng.randint(0, samples), samples) for i in range(m)]
        found = paired_sampled_comparison(current, reference)
        if abs(found.p_value - 0.05) > 1e-9:
            assert (found.p_value < 0.05) == (not found.interval.contains(0.0))

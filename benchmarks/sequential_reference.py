"""Reference values for tests/test_sequential.py, computed independently with scipy.

Not run in CI (scipy is no dependency of the plugin): run it in a throwaway
virtualenv with scipy installed and paste what it prints into the test module.

    python -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install scipy
    /tmp/refvenv/bin/python benchmarks/sequential_reference.py

Each method is computed another way than pytest_behavior does it:

- rate sequence: log M_n(p) from ``scipy.special.betaln`` and ``xlogy``, each
  bound by ``scipy.optimize.brentq`` (the package uses false position on lgamma);
- finite-population sequence: Waudby-Smith & Ramdas's prior-posterior ratio
  itself, pi_0(M) / pi_n(M), from ``scipy.stats.betabinom.logpmf`` of the prior
  and of the posterior of the unseen cases, over every M in 0..N (the package
  uses the equivalent mixture-over-hypergeometric ratio at a few counts);
- paired sequence and anytime p-value: the portfolio's capital multiplied pair
  by pair over a shuffled sequence of the changes with numpy (the package uses
  the counts, claiming the order does not matter), each bound by ``brentq``;
- Student t: ``scipy.stats.t.ppf`` / ``t.cdf``;
- clustered intervals and the sampled comparison: the formulas in the
  docstrings evaluated with ``scipy.stats.t.ppf`` and ``norm.ppf``, Wilson in
  its textbook centre +- half-width form (the package uses the root form).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats


def rate_log_martingale(k: int, n: int, p: float, a: float, b: float) -> float:
    likelihood = special.xlogy(k, p) + special.xlogy(n - k, 1.0 - p)
    return float(special.betaln(a + k, b + n - k) - special.betaln(a, b) - likelihood)


def rate_cs(k: int, n: int, confidence: float, a: float, b: float) -> tuple[float, float]:
    level = -math.log1p(-confidence)
    estimate = k / n

    def f(p: float) -> float:
        return rate_log_martingale(k, n, p, a, b) - level

    low = 0.0 if f(0.0) < 0 else optimize.brentq(f, 0.0, estimate, xtol=1e-15, rtol=1e-15)
    high = 1.0 if f(1.0) < 0 else optimize.brentq(f, estimate, 1.0, xtol=1e-15, rtol=1e-15)
    return float(low), float(high)


def population_cs(
    k: int, n: int, population: int, confidence: float, a: float, b: float
) -> tuple[int, int]:
    level = -math.log1p(-confidence)
    included = []
    for count in range(population + 1):
        unseen = count - k
        if not 0 <= unseen <= population - n:
            continue
        prior = stats.betabinom.logpmf(count, population, a, b)
        posterior = stats.betabinom.logpmf(unseen, population - n, a + k, b + n - k)
        if prior - posterior < level:
            included.append(count)
    assert included == list(range(included[0], included[-1] + 1)), "not an interval"
    return included[0], included[-1]


FRACTIONS = 0.9 * 1.5 ** -np.arange(16)


def log_capital_above(changes: np.ndarray, delta: float) -> float:
    """log of the equal-weight portfolio of constant bets, multiplied pair by pair."""
    if delta <= -1.0:
        return (
            math.inf
            if np.any(changes > -1)
            else float(
                special.logsumexp(np.log1p(-FRACTIONS) * changes.size) - math.log(FRACTIONS.size)
            )
        )
    factors = 1.0 + np.outer(FRACTIONS, (changes - delta) / (1.0 + delta))
    return float(special.logsumexp(np.log(factors).sum(axis=1)) - math.log(FRACTIONS.size))


def ordered_changes(up: int, down: int, n: int, seed: int) -> np.ndarray:
    changes = np.array([1.0] * up + [-1.0] * down + [0.0] * (n - up - down))
    np.random.default_rng(seed).shuffle(changes)
    return changes


def paired_cs(up: int, down: int, n: int, confidence: float) -> tuple[float, float]:
    level = -math.log1p(-confidence) + math.log(2.0)
    changes = ordered_changes(up, down, n, seed=n + up)
    estimate = (up - down) / n

    def above(delta: float) -> float:
        return log_capital_above(changes, delta) - level

    def below(delta: float) -> float:
        return log_capital_above(-changes, -delta) - level

    low = -1.0 if above(-1.0) < 0 else optimize.brentq(above, -1.0 + 1e-15, estimate, xtol=1e-14)
    high = 1.0 if below(1.0) < 0 else optimize.brentq(below, estimate, 1.0 - 1e-15, xtol=1e-14)
    return float(low), float(high)


def anytime_p(up: int, down: int, n: int, tolerance: float, direction: str) -> float:
    changes = ordered_changes(up, down, n, seed=7)
    logs = []
    if direction in ("up", "both"):
        logs.append(log_capital_above(changes, tolerance))
    if direction in ("down", "both"):
        logs.append(log_capital_above(-changes, tolerance))
    return min(1.0, 2.0 * math.exp(-max(logs)))


def cluster(counts: list[tuple[int, int]], confidence: float) -> dict[str, tuple[float, float]]:
    m = len(counts)
    shares = [k / samples for k, samples in counts]
    rate = sum(shares) / m
    t = float(stats.t.ppf(0.5 + confidence / 2, m - 1))
    s2 = sum((y - rate) ** 2 for y in shares) / (m - 1)
    half = t * math.sqrt(s2 / m)
    t_interval = (max(0.0, rate - half), min(1.0, rate + half))
    harmonic = sum(1 / samples for _, samples in counts) / m
    residuals = [y - rate for y in shares]
    v = sum(r * r for r in residuals) / m / m
    if v > 0 and 0 < rate < 1:
        n_eff = min(max(rate * (1 - rate) / v, m), m / harmonic)
        df = sum(r * r for r in residuals) ** 2 / sum(r**4 for r in residuals)
        df = min(max(df, 1.0), m - 1.0)
    else:
        n_eff, df = m, m - 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    n_star = max(n_eff * (z / float(stats.t.ppf(0.5 + confidence / 2, df))) ** 2, m)
    # Wilson at n_star, in the textbook centre +- half-width form
    centre = (rate + z * z / (2 * n_star)) / (1 + z * z / n_star)
    half_width = z / (1 + z * z / n_star)
    spread = half_width * math.sqrt(rate * (1 - rate) / n_star + z * z / (4 * n_star**2))
    wilson = (max(0.0, centre - spread), min(1.0, centre + spread))
    return {"rate": (rate, n_eff, df), "wilson": wilson, "t": t_interval}


def sampled_comparison(
    current: list[float], reference: list[float], samples: int, confidence: float
) -> tuple[float, float, float]:
    d = [c - r for c, r in zip(current, reference, strict=True)]
    m = len(d)
    pseudo = m + 2
    centre = sum(d) / pseudo
    variance = ((sum(x * x for x in d) + 1) - sum(d) ** 2 / pseudo) / pseudo**2
    if samples == 1:
        q = float(stats.norm.ppf(0.5 + confidence / 2))
        p = 2 * float(stats.norm.sf(abs(centre) / math.sqrt(variance)))
    else:
        q = float(stats.t.ppf(0.5 + confidence / 2, m - 1))
        p = 2 * float(stats.t.sf(abs(centre) / math.sqrt(variance), m - 1))
    half = q * math.sqrt(variance)
    return max(-1.0, centre - half), min(1.0, centre + half), min(1.0, p)


RATE_CASES = [
    (0, 10, 0.95, 1.0, 1.0),
    (3, 10, 0.95, 1.0, 1.0),
    (30, 100, 0.95, 1.0, 1.0),
    (300, 1000, 0.95, 1.0, 1.0),
    (50, 1000, 0.9, 1.0, 1.0),
    (1000, 1000, 0.95, 1.0, 1.0),
    (7, 200, 0.99, 3.0, 7.0),
    (150, 500, 0.95, 3.0, 7.0),
    (12345, 100000, 0.95, 1.0, 1.0),
    (1, 40, 0.95, 0.5, 9.5),
]
POPULATION_CASES = [
    (3, 10, 100, 0.95, 1.0, 1.0),
    (30, 100, 1000, 0.95, 1.0, 1.0),
    (300, 900, 1000, 0.95, 1.0, 1.0),
    (250, 990, 1000, 0.95, 3.0, 7.0),
    (0, 50, 200, 0.95, 1.0, 1.0),
    (12, 20, 20, 0.95, 1.0, 1.0),
    (700, 2000, 10000, 0.99, 3.0, 7.0),
    (40, 400, 5000, 0.9, 0.5, 9.5),
]
PAIRED_CASES = [
    (10, 5, 100, 0.95),
    (0, 0, 100, 0.95),
    (100, 0, 100, 0.95),
    (30, 12, 500, 0.95),
    (3, 9, 40, 0.9),
    (0, 0, 1, 0.95),
    (50, 50, 100, 0.95),
    (0, 7, 7, 0.99),
]
P_VALUE_CASES = [
    (30, 5, 100, 0.05, "up"),
    (5, 30, 100, 0.05, "down"),
    (20, 20, 200, 0.0, "both"),
    (40, 10, 300, 0.02, "up"),
    (80, 10, 300, 0.1, "both"),
    (10, 80, 300, 0.1, "both"),
    (90, 10, 300, 0.1, "up"),
]
T_QUANTILES = [
    (p, df)
    for df in (1, 2, 3, 5, 10, 30, 100, 1000, 2.5, 0.5)
    for p in (0.6, 0.9, 0.975, 0.995, 1 - 1e-9)
]
T_CDF = [(-3.0, 4), (0.5, 1), (1.0, 2.5), (2.5, 30), (-0.1, 1000), (8.0, 3)]
CLUSTER_COUNTS = [
    [(0, 5), (1, 5), (5, 5), (2, 5), (0, 5), (0, 5), (3, 5), (5, 5), (1, 5), (0, 5)] * 3,
    [(0, 3), (0, 3), (1, 3), (0, 3)] * 10,
    [(2, 4), (1, 2), (7, 10), (0, 1), (3, 3), (0, 5)] * 5,
]
SAMPLED_COMPARISON = [
    ([0.2, 0.4, 1.0, 0.0, 0.6] * 6, [0.0, 0.4, 0.8, 0.0, 0.2] * 6, 5),
    ([1, 0, 0, 1, 0, 0, 0, 0, 1, 0] * 5, [0, 0, 0, 1, 0, 1, 0, 0, 0, 0] * 5, 1),
]


def main() -> None:
    print(f"# scipy {__import__('scipy').__version__}")
    print("RATE_SEQUENCE = [")
    for case in RATE_CASES:
        print(f"    ({', '.join(map(repr, case))}, {rate_cs(*case)!r}),")
    print("]")
    print("POPULATION_SEQUENCE = [")
    for case in POPULATION_CASES:
        print(f"    ({', '.join(map(repr, case))}, {population_cs(*case)!r}),")
    print("]")
    print("PAIRED_SEQUENCE = [")
    for case in PAIRED_CASES:
        print(f"    ({', '.join(map(repr, case))}, {paired_cs(*case)!r}),")
    print("]")
    print("ANYTIME_P_VALUES = [")
    for case in P_VALUE_CASES:
        print(f"    ({', '.join(map(repr, case))}, {anytime_p(*case)!r}),")
    print("]")
    print("T_QUANTILES = [")
    for p, df in T_QUANTILES:
        print(f"    ({p!r}, {df!r}, {float(stats.t.ppf(p, df))!r}),")
    print("]")
    print("T_CDF = [")
    for t, df in T_CDF:
        print(f"    ({t!r}, {df!r}, {float(stats.t.cdf(t, df))!r}),")
    print("]")
    print("CLUSTERED = [")
    for index, counts in enumerate(CLUSTER_COUNTS):
        found = cluster(counts, 0.95)
        print(f"    ({index}, {found['rate']!r}, {found['wilson']!r}, {found['t']!r}),")
    print("]")
    print("SAMPLED_COMPARISON = [")
    for index, (current, reference, samples) in enumerate(SAMPLED_COMPARISON):
        print(f"    ({index}, {sampled_comparison(current, reference, samples, 0.95)!r}),")
    print("]")


if __name__ == "__main__":
    main()

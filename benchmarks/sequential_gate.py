"""Does the sequential gate keep its error rate when it looks after every batch?

Simulations over seeded runs with a known truth, each run deterministic (its
random stream is seeded by scenario, truth and run number), so the tables are
the same on every machine and with any number of worker processes:

(a) the rate gate against max_rate 0.30 over 1,000 cases in batches of 20
    (min_cases 20, 95% confidence): the sequential gate beside the fixed-n
    Wilson interval peeked at after every batch (stopped at its first decisive
    look), for a finite file asked without replacement (exactly round(rate *
    1,000) matching cases in a seeded random order; the truth is the file's
    rate) and for a Bernoulli stream (each answer matches with the rate);
    "wrong" is a fail at a rate <= 0.30 or a pass above it. Then the cases
    the sequential gate used against the fixed 1,000.
(b) the paired comparison, bad direction up, tolerance 0.05: to_not_matching
    with probability 0.05 per pair and to_matching with 0.05 + delta; the
    sequential comparison beside Tango's interval peeked at after every batch,
    and the rule of compare.py (McNemar p < 0.05 and the estimate beyond the
    tolerance) once at 1,000 pairs; "wrong" is "regressed" at delta <= 0.05 or
    "no regression" above it.
(c) coverage of the clustered intervals (K samples per case, m cases, each
    case's probability drawn from a beta distribution with the given mean and
    intra-case correlation; the truth is that mean): Wilson on n_eff as the
    package computes it, the same with Korn & Graubard's m - 1 degrees of
    freedom, and the cluster t interval. At K = 1 Wilson is the fixed gate's
    binomial interval (its exact coverage at n = 30, p = 0.3 is 93.0%).
(prior) cases used by the rate gate with the uniform prior and with the prior
    centred on the threshold (pytest_behavior.stats.sequential.BetaPrior).
(cost) the time of one look, per method and file size.

    .venv/bin/python benchmarks/sequential_gate.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/sequential_gate.py --quick    # fewer runs, ~30 s
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tabulate import tabulate

from pytest_behavior.stats.clustered import SampledCase, clustered_rate, student_t_quantile
from pytest_behavior.stats.clustered import _wilson as wilson_bounds
from pytest_behavior.stats.intervals import (
    mcnemar_exact,
    normal_quantile,
    paired_difference_interval,
    verdict_for_interval,
    wilson_interval,
)
from pytest_behavior.stats.sequential import (
    UNIFORM_PRIOR,
    BetaPrior,
    comparison_look,
    gate_look,
    paired_confidence_sequence,
    population_confidence_sequence,
    prior_for,
    rate_confidence_sequence,
)

MAX_RATE = 0.30
CASES = 1000
BATCH = 20
MIN_CASES = 20
CONFIDENCE = 0.95
RATES = (0.05, 0.15, 0.25, 0.29, 0.30, 0.31, 0.35)
TOLERANCE = 0.05
DOWN = 0.05
DELTAS = (-0.05, 0.0, 0.05, 0.10, 0.15)

Outcome = tuple[str, int]  # (verdict, cases used)
# Per key (a rate, a delta, a cluster setting): per gate or method, one entry per run.
Results = dict[object, dict[str, list[Any]]]


def _answers(scenario: str, rate: float, run: int) -> list[bool]:
    rng = random.Random(f"{scenario}/{rate}/{run}")
    if scenario == "file":
        matching = round(rate * CASES)
        answers = [True] * matching + [False] * (CASES - matching)
        rng.shuffle(answers)
        return answers
    return [rng.random() < rate for _ in range(CASES)]


def _sequential(
    answers: Sequence[bool], population: int | None, prior: BetaPrior | None
) -> Outcome:
    matches = 0
    for n in range(BATCH, CASES + 1, BATCH):
        matches += sum(answers[n - BATCH : n])
        decision = gate_look(
            matches,
            n,
            max_rate=MAX_RATE,
            min_rate=None,
            confidence=CONFIDENCE,
            population=population,
            min_cases=MIN_CASES,
            max_cases=CASES,
            prior=prior,
        )
        if decision.status != "continue":
            return decision.status, n
    raise AssertionError("gate_look never reached max_cases")


def _peeked_wilson(answers: Sequence[bool]) -> Outcome:
    matches = 0
    for n in range(BATCH, CASES + 1, BATCH):
        matches += sum(answers[n - BATCH : n])
        if n < MIN_CASES:
            continue
        interval = wilson_interval(matches, n, CONFIDENCE)
        verdict = verdict_for_interval(interval, max_rate=MAX_RATE, min_rate=None)
        if verdict != "inconclusive":
            return verdict, n
    return "inconclusive", CASES


def rate_runs(task: tuple[str, float, int, int]) -> dict[str, list[Outcome]]:
    scenario, rate, first, last = task
    population = CASES if scenario == "file" else None
    found: dict[str, list[Outcome]] = {"sequential": [], "peeked Wilson": []}
    for run in range(first, last):
        answers = _answers(scenario, rate, run)
        found["sequential"].append(_sequential(answers, population, None))
        found["peeked Wilson"].append(_peeked_wilson(answers))
    return found


def prior_runs(task: tuple[str, float, int, int]) -> dict[str, list[Outcome]]:
    _, rate, first, last = task
    found: dict[str, list[Outcome]] = {"uniform": [], "centred": []}
    centred = prior_for(max_rate=MAX_RATE, min_rate=None)
    for run in range(first, last):
        answers = _answers("file", rate, run)
        found["uniform"].append(_sequential(answers, CASES, UNIFORM_PRIOR))
        found["centred"].append(_sequential(answers, CASES, centred))
    return found


def _pairs(delta: float, run: int) -> list[int]:
    rng = random.Random(f"paired/{delta}/{run}")
    up, down = DOWN + delta, DOWN  # every delta in DELTAS is >= -DOWN
    changes = []
    for _ in range(CASES):
        draw = rng.random()
        changes.append(1 if draw < up else -1 if draw < up + down else 0)
    return changes


def paired_runs(task: tuple[str, float, int, int]) -> dict[str, list[Outcome]]:
    _, delta, first, last = task
    found: dict[str, list[Outcome]] = {
        "sequential": [],
        "peeked Tango": [],
        "compare.py at 1,000": [],
    }
    for run in range(first, last):
        changes = _pairs(delta, run)
        up = down = 0
        sequential: Outcome | None = None
        peeked: Outcome | None = None
        p_value = 1.0
        for n in range(BATCH, CASES + 1, BATCH):
            batch = changes[n - BATCH : n]
            up += batch.count(1)
            down += batch.count(-1)
            if sequential is None:
                decision = comparison_look(
                    up,
                    down,
                    n,
                    tolerance=TOLERANCE,
                    bad_direction="up",
                    confidence=CONFIDENCE,
                    min_pairs=MIN_CASES,
                    max_pairs=CASES,
                    previous_p_value=p_value,
                )
                p_value = decision.p_value if decision.p_value is not None else p_value
                if decision.status != "continue":
                    sequential = (decision.status, n)
            if peeked is None and n >= MIN_CASES:
                interval = paired_difference_interval(down, up, n, CONFIDENCE)
                verdict = verdict_for_interval(interval, max_rate=TOLERANCE, min_rate=None)
                if verdict != "inconclusive":
                    peeked = ("regressed" if verdict == "fail" else "no_regression", n)
            if sequential is not None and peeked is not None:
                break
        found["sequential"].append(sequential or ("inconclusive", CASES))
        found["peeked Tango"].append(peeked or ("inconclusive", CASES))
        total_up, total_down = changes.count(1), changes.count(-1)
        estimate = (total_up - total_down) / CASES
        regressed = mcnemar_exact(total_down, total_up) < 1 - CONFIDENCE and estimate > TOLERANCE
        found["compare.py at 1,000"].append(("regressed" if regressed else "no_regression", CASES))
    return found


def _beta_parameters(mean: float, correlation: float) -> tuple[float, float]:
    # A beta distribution's intra-cluster correlation is 1 / (a + b + 1).
    total = 1.0 / correlation - 1.0
    return mean * total, (1.0 - mean) * total


def cluster_runs(task: tuple[str, tuple[float, float, int, int], int, int]) -> dict[str, list[int]]:
    _, (mean, correlation, cases, samples), first, last = task
    a, b = _beta_parameters(mean, correlation)
    hits: dict[str, list[int]] = {"wilson": [], "m - 1 df": [], "t": []}
    z = normal_quantile(0.5 + CONFIDENCE / 2)
    t_cases = student_t_quantile(0.5 + CONFIDENCE / 2, cases - 1)
    for run in range(first, last):
        rng = random.Random(f"cluster/{mean}/{correlation}/{cases}/{samples}/{run}")
        sampled = []
        for index in range(cases):
            probability = rng.betavariate(a, b)
            matches = sum(rng.random() < probability for _ in range(samples))
            sampled.append(SampledCase(str(index), matches, samples))
        wilson = clustered_rate(sampled, CONFIDENCE)
        hits["wilson"].append(int(wilson.interval.contains(mean)))
        # Korn & Graubard's m - 1 degrees of freedom instead of the effective ones.
        if samples == 1:
            korn_graubard = wilson.interval
        else:
            n_star = max(wilson.effective_n * (z / t_cases) ** 2, float(cases))
            korn_graubard = wilson_bounds(wilson.rate, n_star, z)
        hits["m - 1 df"].append(int(korn_graubard.contains(mean)))
        by_t = clustered_rate(sampled, CONFIDENCE, method="t")
        hits["t"].append(int(by_t.interval.contains(mean)))
    return hits


def _chunks(runs: int, workers: int) -> list[tuple[int, int]]:
    size = max(1, -(-runs // (4 * workers)))
    return [(first, min(first + size, runs)) for first in range(0, runs, size)]


def _gather(
    pool: ProcessPoolExecutor,
    function: Callable[..., dict[str, list[Any]]],
    keys: Sequence[object],
    runs: int,
    workers: int,
    scenario: str = "",
) -> Results:
    tasks = [(scenario, key, first, last) for key in keys for first, last in _chunks(runs, workers)]
    merged: Results = {}
    for task, found in zip(tasks, pool.map(function, tasks), strict=True):
        into = merged.setdefault(task[1], {})
        for name, values in found.items():
            into.setdefault(name, []).extend(values)
    return merged


def _elapsed(started: float) -> str:
    return f"({time.perf_counter() - started:.0f} s)"


def _percent(count: int, runs: int) -> str:
    return f"{100.0 * count / runs:.1f}"


def _cases(outcomes: Sequence[Outcome]) -> tuple[str, str]:
    used = sorted(n for _, n in outcomes)
    p90 = used[min(len(used) - 1, int(0.9 * len(used)))]
    return f"{statistics.median(used):.0f}", f"{p90}"


def rate_table(results: Results, runs: int) -> str:
    rows = []
    for rate in RATES:
        for gate, outcomes in results[rate].items():
            counts = Counter(verdict for verdict, _ in outcomes)
            wrong = counts["fail"] if rate <= MAX_RATE else counts["pass"]
            rows.append(
                [
                    f"{rate:.2f}",
                    gate,
                    _percent(counts["fail"], runs),
                    _percent(counts["pass"], runs),
                    _percent(counts["inconclusive"], runs),
                    _percent(wrong, runs),
                    *_cases(outcomes),
                ]
            )
    headers = [
        "true rate",
        "gate",
        "fail %",
        "pass %",
        "inconcl. %",
        "wrong %",
        "median cases",
        "p90 cases",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def paired_table(results: Results, runs: int) -> str:
    rows = []
    for delta in DELTAS:
        for gate, outcomes in results[delta].items():
            counts = Counter(verdict for verdict, _ in outcomes)
            wrong = counts["regressed"] if delta <= TOLERANCE else counts["no_regression"]
            rows.append(
                [
                    f"{delta:+.2f}",
                    gate,
                    _percent(counts["regressed"], runs),
                    _percent(counts["no_regression"], runs),
                    _percent(counts["inconclusive"], runs),
                    _percent(wrong, runs),
                    *_cases(outcomes),
                ]
            )
    headers = [
        "true delta",
        "gate",
        "regressed %",
        "no regr. %",
        "inconcl. %",
        "wrong %",
        "median pairs",
        "p90 pairs",
    ]
    return tabulate(rows, headers=headers, disable_numparse=True)


def _per_look(function: Callable[[], object]) -> float:
    best = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(50):
            function()
        best.append((time.perf_counter() - start) / 50)
    return 1e6 * min(best)


def cost_table() -> str:
    rows = []
    for population in (1_000, 10_000, 150_000):
        n, matches = population // 2, population // 7
        up, down = matches // 3, matches // 5

        def finite(matches: int = matches, n: int = n, population: int = population) -> object:
            return population_confidence_sequence(matches, n, population)

        def bernoulli(matches: int = matches, n: int = n) -> object:
            return rate_confidence_sequence(matches, n)

        def paired(up: int = up, down: int = down, n: int = n) -> object:
            return paired_confidence_sequence(up, down, n)

        rows.append(
            [f"{population:,}", *(f"{_per_look(f):.0f}" for f in (finite, bernoulli, paired))]
        )
    headers = ["N (n = N/2)", "without replacement µs", "Bernoulli µs", "paired µs"]
    return tabulate(rows, headers=headers, disable_numparse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 30 s)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    options = parser.parse_args()
    runs = 300 if options.quick else 2000
    paired_count = 200 if options.quick else 1000
    cluster_reps = 300 if options.quick else 1000
    prior_reps = 100 if options.quick else 300
    workers = options.workers
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        print(
            f"(a) rate gate, max_rate {MAX_RATE}, {CASES:,} cases, batches of {BATCH}, "
            f"min_cases {MIN_CASES}, {CONFIDENCE:.0%} confidence, {runs:,} runs per row"
        )
        saved = []
        for scenario, label in (
            ("file", "finite file, without replacement"),
            ("stream", "Bernoulli stream"),
        ):
            results = _gather(pool, rate_runs, RATES, runs, workers, scenario)
            print(f"\n{label}: {_elapsed(started)}")
            print(rate_table(results, runs))
            for rate in (0.05, 0.15, 0.25):
                median, p90 = _cases(results[rate]["sequential"])
                saved.append(
                    [
                        label,
                        f"{rate:.2f}",
                        median,
                        p90,
                        f"{CASES:,}",
                        f"{1 - float(median) / CASES:.0%}",
                    ]
                )
        print("\nrequests saved by the sequential gate")
        print(
            tabulate(
                saved,
                headers=[
                    "scenario",
                    "true rate",
                    "median cases",
                    "p90 cases",
                    "fixed",
                    "saved (median)",
                ],
                disable_numparse=True,
            )
        )

        print(
            f"\n(b) paired comparison, bad direction up, tolerance {TOLERANCE}, "
            f"P(to not matching) = {DOWN}, {paired_count:,} runs per row"
        )
        print(paired_table(_gather(pool, paired_runs, DELTAS, paired_count, workers), paired_count))
        print(_elapsed(started))

        print(
            f"\n(c) coverage of the clustered intervals ({CONFIDENCE:.0%}), {cluster_reps:,} runs"
        )
        settings = [
            (mean, correlation, cases, samples)
            for mean in (0.05, 0.30)
            for correlation in (0.1, 0.5)
            for cases in (30, 100)
            for samples in (1, 3, 5, 10)
        ]
        coverage = _gather(pool, cluster_runs, settings, cluster_reps, workers)
        rows = []
        for setting in settings:
            mean, correlation, cases, samples = setting
            hits = coverage[setting]
            rows.append(
                [f"{mean:.2f}", f"{correlation:.1f}", cases, samples]
                + [
                    f"{100 * sum(hits[method]) / cluster_reps:.1f}"
                    for method in ("wilson", "m - 1 df", "t")
                ]
            )
        print(
            tabulate(
                rows,
                headers=[
                    "mean rate",
                    "intra-case corr.",
                    "m cases",
                    "K samples",
                    "Wilson n_eff %",
                    "same, m-1 df %",
                    "cluster t %",
                ],
                disable_numparse=True,
            )
        )

        print(f"\n(prior) cases used on a {CASES:,}-case file, {prior_reps:,} runs per row")
        prior_rates = (0.0, 0.05, 0.15, 0.25, 0.35, 0.8)
        by_prior = _gather(pool, prior_runs, prior_rates, prior_reps, workers)
        rows = []
        for rate in prior_rates:
            found = by_prior[rate]
            uniform, centred = _cases(found["uniform"]), _cases(found["centred"])
            rows.append(
                [f"{rate:.2f}", f"{uniform[0]} / {uniform[1]}", f"{centred[0]} / {centred[1]}"]
            )
        prior = prior_for(max_rate=MAX_RATE, min_rate=None)
        print(
            tabulate(
                rows,
                headers=[
                    "true rate",
                    "uniform: median / p90",
                    f"Beta({prior.matching:g}, {prior.not_matching:g}): median / p90",
                ],
                disable_numparse=True,
            )
        )

    print("\n(cost) one look, best of 5 x 50 calls")
    print(cost_table())
    print(f"\ntotal {time.perf_counter() - started:.0f} s with {workers} worker(s)")


if __name__ == "__main__":
    main()

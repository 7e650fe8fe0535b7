"""Does a regression tolerance keep the gate's error rate at the margin?

A baseline comparison with ``regression_tolerance: t`` must call a true change of
exactly t "regressed" no more often than a comparison at tolerance 0 calls no
change "regressed". Seeded simulations with a known truth (each run's random
stream is seeded by its setting and number, so the table is the same everywhere):
n paired cases, each flips match -> non-match with probability ``down`` and
non-match -> match with ``down + change`` (bad direction up: a rise is bad), 95%
confidence, one trait (no Holm), tolerance 0.05. Per true change, the share of
runs that said "regressed":

- ``old rule``: what compare.py did before: exact McNemar p < 0.05 (against no
  change) and the estimate beyond the tolerance;
- ``margin test``: compare.py now: Tango's score test against the margin
  (stats.margin_p_value, twice the one-sided tail, like McNemar's two-sided p);
- ``McNemar, tol 0``: the tolerance-0 gate (exact McNemar p < 0.05 and the
  estimate up), at a true change shifted by -tolerance: its rate at "change 0.00"
  is the reference the margin test should match at "change 0.05".

A one-direction gate built on a two-sided 95% test says "regressed" at its null's
edge about 2.5% of the time (alpha / 2): the margin test's column at the
tolerance should read about that, the old rule's about 50%.

    .venv/bin/python benchmarks/tolerance_test.py           # about a minute
    .venv/bin/python benchmarks/tolerance_test.py --quick   # fewer runs
"""

from __future__ import annotations

import argparse
import random
from concurrent.futures import ProcessPoolExecutor

from tabulate import tabulate

from pytest_behavior.stats.intervals import margin_p_value, mcnemar_exact

TOLERANCE = 0.05
ALPHA = 0.05
SETTINGS = ((200, 0.05), (1000, 0.05), (1000, 0.15))  # (paired cases, base flip rate)
CHANGES = (0.0, TOLERANCE, TOLERANCE + 0.05)


def _counts(rng: random.Random, n: int, down: float, up: float) -> tuple[int, int]:
    """(to_not_matching, to_matching) over n pairs."""
    b = c = 0
    for _ in range(n):
        draw = rng.random()
        if draw < up:
            c += 1
        elif draw < up + down:
            b += 1
    return b, c


def simulate(task: tuple[int, float, float, int]) -> dict[str, float]:
    n, down, change, runs = task
    old = margin = zero = 0
    for run in range(runs):
        rng = random.Random(f"tolerance/{n}/{down}/{change}/{run}")
        b, c = _counts(rng, n, down, down + change)
        estimate = (c - b) / n
        old += mcnemar_exact(b, c) < ALPHA and estimate > TOLERANCE
        margin += margin_p_value(b, c, n, margin=TOLERANCE, bad_direction="up") < ALPHA
        # The tolerance-0 gate at the same distance from its own null's edge.
        shifted = random.Random(f"zero/{n}/{down}/{change}/{run}")
        b0, c0 = _counts(shifted, n, down, down + change - TOLERANCE)
        zero += mcnemar_exact(b0, c0) < ALPHA and c0 > b0
    return {"old rule": old / runs, "margin test": margin / runs, "McNemar, tol 0": zero / runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 runs per cell, not 4,000")
    parser.add_argument("--runs", type=int, default=None)
    arguments = parser.parse_args()
    runs = arguments.runs or (1000 if arguments.quick else 4000)
    tasks = [(n, down, change, runs) for n, down in SETTINGS for change in CHANGES]
    with ProcessPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(simulate, tasks))
    rows = []
    for (n, down, change, _), rates in zip(tasks, found, strict=True):
        rows.append(
            [
                n,
                down,
                f"{change:.2f}" + (" (= tolerance)" if change == TOLERANCE else ""),
                *(f"{100 * rates[name]:.1f}%" for name in ("old rule", "margin test")),
                f"{100 * rates['McNemar, tol 0']:.1f}% at {change - TOLERANCE:+.2f}",
            ]
        )
    print(
        f'Share of runs called "regressed", tolerance {TOLERANCE}, alpha {ALPHA}, '
        f"bad direction up, {runs} runs per row (standard error at 2.5%: "
        f"{100 * (0.025 * 0.975 / runs) ** 0.5:.2f} points)"
    )
    headers = ["paired", "flip rate", "true change", "old rule", "margin test", "McNemar, tol 0"]
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()

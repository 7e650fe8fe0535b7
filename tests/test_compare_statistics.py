"""The regression gate's error rates: no false alarms on noise, real regressions caught."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pytest_behavior.outcomes import CaseOutcome, TraitResult
from pytest_behavior.stats.intervals import mcnemar_exact
from pytest_behavior.verdicts.compare import compare_all


def _result(trait: str, matches: list[bool]) -> TraitResult:
    return TraitResult.from_dict(
        {
            "model": "m",
            "trait": trait,
            "spec": "s.yaml",
            "prompt": "{question}",
            "scoring": "auto",
            "bad_direction": "up",
            "regression_tolerance": None,
            "cases": [
                CaseOutcome(id=f"{trait}-{i}", index=i, question="", answer="", matched=m).to_dict()
                for i, m in enumerate(matches)
            ],
        }
    )


def _gate(traits: int, cases: int, shift: float, rng: random.Random) -> list[bool]:
    """Regressed flag per trait when run 2 moves every case's probability by ``shift``."""
    current, reference = [], {}
    for number in range(traits):
        name = f"t{number}"
        probabilities = [rng.uniform(0.05, 0.6) for _ in range(cases)]
        reference[name] = _result(name, [rng.random() < p for p in probabilities])
        current.append(_result(name, [rng.random() < min(1.0, p + shift) for p in probabilities]))
    compared, _ = compare_all(
        current,
        lambda r: (reference[r.trait], "baseline"),
        key="comparison",
        confidence=0.95,
        tolerance=0.0,
    )
    return [r.comparison is not None and r.comparison.regressed for r in compared]


def test_model_against_itself_rarely_fails_over_fifty_traits() -> None:
    seeds = 100
    alarms = sum(any(_gate(50, 200, 0.0, random.Random(seed))) for seed in range(seeds))
    # Holm keeps the family-wise error at or below 5%; allow simulation noise.
    assert alarms / seeds <= 0.08, alarms


def test_ten_point_regression_on_500_cases_is_caught() -> None:
    # Worst case for a paired test: the two runs drawn independently, so half the
    # pairs can be discordant. About 86% of seeds catch it at this size.
    seeds = 50
    caught = sum(_gate(1, 500, 0.10, random.Random(seed))[0] for seed in range(seeds))
    assert caught / seeds >= 0.75, caught


def test_fine_tune_that_flips_ten_points_is_caught() -> None:
    """Greedy answers of a fine-tune: most cases keep their answer, 5% flip either way
    as noise, and 10% of the cases move towards the behavior."""
    caught = 0
    for seed in range(50):
        rng = random.Random(seed)
        before = [rng.random() < 0.3 for _ in range(500)]
        after = [(not m) if rng.random() < 0.05 else m for m in before]
        not_matching = [i for i, m in enumerate(after) if not m]
        for i in rng.sample(not_matching, 50):
            after[i] = True
        current, reference = _result("t", after), _result("t", before)
        [compared], _ = compare_all(
            [current],
            lambda r, reference=reference: (reference, "v1"),  # type: ignore[misc]
            key="comparison",
            confidence=0.95,
            tolerance=0.0,
        )
        caught += compared.comparison is not None and compared.comparison.regressed
    assert caught == 50


def _pair(flips_up: int, flips_down: int, n: int, tolerance: float | None) -> TraitResult:
    """The comparison of a run whose cases flipped ``flips_up`` times to matching and
    ``flips_down`` times away from it, against its reference."""
    before = [index < flips_down for index in range(n)]
    after = [(index < flips_down) != (index < flips_down + flips_up) for index in range(n)]
    current = replace(_result("t", after), regression_tolerance=tolerance)
    [compared], _ = compare_all(
        [current],
        lambda r: (_result("t", before), "v1"),
        key="comparison",
        confidence=0.95,
        tolerance=0.0,
    )
    return compared


def test_a_tolerance_is_tested_against_its_margin() -> None:
    # +10 points over 400 cases (40 up, 0 down): beyond a 2-point margin for sure,
    # not beyond a 8-point one (the estimate is above it, the interval is not).
    beyond = _pair(40, 0, 400, 0.02).comparison
    assert beyond is not None and beyond.regressed
    assert beyond.margin_p_value is not None and beyond.margin_p_value < 0.01
    assert beyond.margin_p_adjusted == beyond.margin_p_value
    within = _pair(40, 0, 400, 0.08).comparison
    assert within is not None and not within.regressed and not within.improved
    # McNemar alone (against no change) is overwhelming; the old rule said "regressed".
    assert within.p_value < 1e-9 and within.delta is not None and within.delta > 0.08
    assert within.margin_p_value is not None and within.margin_p_value > 0.05


def test_tolerance_zero_keeps_the_exact_mcnemar_decision() -> None:
    comparison = _pair(12, 3, 100, None).comparison
    assert comparison is not None
    assert comparison.margin_p_value is None and comparison.margin_p_adjusted is None
    assert comparison.p_value == pytest.approx(mcnemar_exact(3, 12))
    assert comparison.regressed is (
        comparison.p_adjusted is not None and comparison.p_adjusted < 0.05
    )


def test_an_improvement_is_still_reported_with_a_tolerance() -> None:
    comparison = _pair(0, 40, 400, 0.02).comparison
    assert comparison is not None and comparison.improved and not comparison.regressed

"""The regression gate's error rates: no false alarms on noise, real regressions caught."""

from __future__ import annotations

import random

from pytest_behavior.compare import compare_all
from pytest_behavior.outcomes import CaseOutcome, TraitResult


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

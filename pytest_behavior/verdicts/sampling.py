"""Repeated sampling (``samples: K``): where no logprobs score a case, ask it K times.

The paper's quantity is a probability: how likely the model is to give the
matching answer. Exact scoring reads it from the prompt's log-probabilities; a
provider without them (most chat APIs, reasoning models) gives one generated
answer, which hides how often it would have given the other. With ``samples: K``
each case is asked K times at ``temperature`` (default 1.0; the sample index is
part of the cache key), each answer parsed as under ``scoring: generate``; the
case's estimate is its share of matching answers and the trait's rate the mean
over cases, with an interval that counts cases, not samples, as the unit
(clustered.py). Where exact scoring is available it is used and K is not: the
probability is then known without sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pytest_behavior.outcomes import CaseOutcome, TraitResult
from pytest_behavior.stats.clustered import SampledCase, clustered_rate, unstable_cases
from pytest_behavior.stats.intervals import verdict_for_interval
from pytest_behavior.values import Threshold

DEFAULT_TEMPERATURE = 1.0
# Unstable cases the report lists, most divided first.
UNSTABLE_LISTED = 20


def combine_samples(samples: Sequence[CaseOutcome]) -> CaseOutcome:
    """One case's outcome from its K sampled outcomes (same case, in sample order).

    Failed requests are left out; a case none of whose samples was answered keeps
    the first failure. ``matched`` is the majority (None on a tie or when no
    sample parsed); the share itself is ``sample_matches / samples``.
    """
    answered = [outcome for outcome in samples if outcome.error is None]
    if not answered:
        return samples[0]
    parsed = [outcome for outcome in answered if outcome.matched is not None]
    matches = sum(1 for outcome in parsed if outcome.matched)
    first = answered[0]
    majority = None if not parsed or 2 * matches == len(parsed) else 2 * matches > len(parsed)
    return replace(
        first,
        matched=majority,
        path=first.path if parsed else "unparseable",
        samples=len(parsed),
        sample_matches=matches,
        sample_answers=tuple(outcome.answer for outcome in answered),
    )


def sampled_cases(outcomes: Sequence[CaseOutcome]) -> list[SampledCase]:
    """The scored cases as SampledCase (a case without repeated samples counts once)."""
    cases = []
    for outcome in outcomes:
        if outcome.error is not None:
            continue
        if outcome.sample_matches is not None:
            if outcome.samples:
                cases.append(SampledCase(outcome.id, outcome.sample_matches, outcome.samples))
        elif outcome.matched is not None:
            cases.append(SampledCase(outcome.id, int(outcome.matched), 1))
    return cases


def is_sampled(outcomes: Sequence[CaseOutcome]) -> bool:
    return any(outcome.sample_matches is not None for outcome in outcomes)


def sampled_result(
    result: TraitResult, *, samples: int, temperature: float, threshold: Threshold
) -> TraitResult:
    """The result with the rate as the mean share and the case-clustered interval."""
    cases = sampled_cases(result.cases)
    if not cases:
        return result
    rate = clustered_rate(cases, result.confidence)
    unstable = unstable_cases(cases)
    index = {outcome.id: outcome.index for outcome in result.cases}
    summary: dict[str, Any] = {
        "samples": samples,
        "temperature": temperature,
        "cases": rate.cases,
        "answers": rate.samples,
        "design_effect": rate.design_effect,
        "effective_n": rate.effective_n,
        "interval": "Wilson on the effective sample size (cases are the unit)",
        "unstable": len(unstable),
        "unstable_cases": [
            {"id": case.case_id, "index": index.get(case.case_id), "share": case.share}
            for case in unstable[:UNSTABLE_LISTED]
        ],
    }
    verdict = result.verdict
    if verdict != "error":
        verdict = verdict_for_interval(
            rate.interval, max_rate=threshold.max_rate, min_rate=threshold.min_rate
        )
    return replace(
        result,
        # n counts cases (the unit), matches the cases a majority of samples matched.
        n=rate.cases,
        matches=sum(1 for outcome in result.cases if outcome.matched),
        rate=rate.rate,
        ci_low=rate.interval.low,
        ci_high=rate.interval.high,
        verdict=verdict,
        sampling=summary,
    )

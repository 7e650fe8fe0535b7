"""Paired comparisons of a run against a baseline or a reference model.

Per trait, the cases both runs scored are paired by their content-derived id.
The change in matching rate gets Tango's score interval, the discordant pairs
an exact McNemar test, and across all the comparisons of a run the p-values
are Holm-adjusted, so fifty traits compared with themselves do not produce a
false alarm one run in thirteen.

A comparison *regresses* when a test of "worse by more than the tolerance" is
significant after Holm: at tolerance 0 the exact McNemar test (its adjusted
p-value below 1 - confidence and the change pointing the bad way); at a
tolerance > 0 Tango's score test against the margin (stats.margin_p_value), so a
true change equal to the tolerance is called a regression as rarely as no change
is at tolerance 0. (Testing "no change" and then comparing the estimate with the
tolerance called a true change at the tolerance a regression about half the
time.) Adaptive traits use their anytime-valid p-value against the tolerance;
repeated samples their clustered test. Improvements (McNemar, Holm-adjusted)
are reported, never failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

from pytest_behavior.outcomes import CaseOutcome, Comparison, Flip, TraitResult
from pytest_behavior.stats.clustered import paired_sampled_comparison
from pytest_behavior.stats.intervals import (
    holm_adjust,
    margin_p_value,
    mcnemar_exact,
    paired_difference_interval,
)
from pytest_behavior.stats.sequential import BadDirection
from pytest_behavior.verdicts.sampling import is_sampled, sampled_cases

# Where each kind of comparison lives in a result, and what it compares with.
COMPARISON_KINDS = (("comparison", "baseline"), ("model_comparison", "first model"))


@dataclass(frozen=True)
class Refusal:
    """A reference that must not be compared with (different prompt or scoring)."""

    model: str
    trait: str
    reason: str


def spec_mismatch(current: TraitResult, reference: TraitResult) -> str | None:
    """Why two results cannot be compared case by case, or None when they can."""
    for name, label in (
        ("prompt", "prompt template"),
        ("scoring", "scoring mode"),
        ("scoring_used", "scoring method"),
        # Every listed option vs only the labelled ones: different measures (an old
        # baseline without the field read "listed", what it scored).
        ("choices", "choice set"),
        # Chat messages vs raw text: two different prompts (prompt_format.py).
        ("prompt_format", "prompt format"),
    ):
        theirs, ours = getattr(reference, name), getattr(current, name)
        if name == "prompt_format" and None in (theirs, ours):
            continue  # a baseline from before the field: the format is unknown
        if ours != theirs:
            return (
                f"the {label} differs (reference {theirs!r}, "
                f"this run {ours!r}); save a new baseline with "
                "--behavior-save-baseline to compare from here on"
            )
    return None


def stacks_differ(current: TraitResult, reference: TraitResult) -> str | None:
    """ "fp_a (reference) -> fp_b (this run)" when both serving stacks are known and differ.

    Not a refusal: the same checkpoint served by another engine is still the model
    (a baseline from last month's server stays useful), but a change of a few points
    may be the engine's (DESIGN: llama.cpp vs transformers moved rates up to 3.5 points),
    so the comparison says so beside its result.
    """
    theirs, ours = reference.serving_stack, current.serving_stack
    if theirs is None or ours is None or theirs == ours:
        return None
    return f"{theirs} (reference) -> {ours} (this run)"


def paired_comparison(
    current: TraitResult, reference: TraitResult, *, reference_name: str, confidence: float
) -> Comparison:
    """The comparison of one result with its reference (before Holm adjustment)."""
    before = {case.id: case for case in reference.cases}
    after = {case.id: case for case in current.cases}
    paired = [
        case_id
        for case_id, case in after.items()
        if case_id in before and case.matched is not None and before[case_id].matched is not None
    ]
    flips = []
    to_not_matching = to_matching = 0
    for case_id in paired:
        was, now = bool(before[case_id].matched), bool(after[case_id].matched)
        if was == now:
            continue
        if was:
            to_not_matching += 1
        else:
            to_matching += 1
        case = after[case_id]
        flips.append(
            Flip(
                id=case_id,
                index=case.index,
                question=case.question,
                was=was,
                now=now,
                answer_before=before[case_id].answer,
                answer_after=case.answer,
            )
        )
    n_paired = len(paired)
    interval = paired_difference_interval(to_not_matching, to_matching, n_paired, confidence)
    if is_sampled(current.cases) or is_sampled(reference.cases):
        return _sampled_comparison(current, reference, reference_name, confidence, flips)
    return Comparison(
        reference=reference_name,
        reference_rate=_rate(before, paired),
        rate=_rate(after, paired),
        n_paired=n_paired,
        delta=(to_matching - to_not_matching) / n_paired if n_paired else None,
        ci_low=interval.low,
        ci_high=interval.high,
        to_matching=to_matching,
        to_not_matching=to_not_matching,
        p_value=mcnemar_exact(to_not_matching, to_matching),
        added=tuple(sorted(case_id for case_id in after if case_id not in before)),
        removed=tuple(sorted(case_id for case_id in before if case_id not in after)),
        flips=tuple(flips),
    )


def _sampled_comparison(
    current: TraitResult,
    reference: TraitResult,
    reference_name: str,
    confidence: float,
    flips: list[Flip],
) -> Comparison:
    """With repeated samples the change is in each case's share of matching answers,
    paired by case (clustered.paired_sampled_comparison); flips are majority changes."""
    after, before = sampled_cases(current.cases), sampled_cases(reference.cases)
    sampled = paired_sampled_comparison(after, before, confidence)
    shares_after = {case.case_id: case.share for case in after}
    shares_before = {case.case_id: case.share for case in before}
    paired = [case_id for case_id in shares_after if case_id in shares_before]

    def mean(shares: dict[str, float]) -> float | None:
        return sum(shares[case_id] for case_id in paired) / len(paired) if paired else None

    return Comparison(
        reference=reference_name,
        reference_rate=mean(shares_before),
        rate=mean(shares_after),
        n_paired=sampled.n_paired,
        delta=sampled.delta if sampled.n_paired else None,
        ci_low=sampled.interval.low,
        ci_high=sampled.interval.high,
        to_matching=sum(1 for flip in flips if flip.now),
        to_not_matching=sum(1 for flip in flips if not flip.now),
        p_value=sampled.p_value,
        added=sampled.added,
        removed=sampled.removed,
        flips=tuple(flips),
    )


def _rate(cases: dict[str, CaseOutcome], paired: Sequence[str]) -> float | None:
    if not paired:
        return None
    return sum(1 for case_id in paired if cases[case_id].matched) / len(paired)


def effective_tolerance(trait_tolerance: float | None, run_tolerance: float) -> float:
    """The tolerance a comparison applies: the trait's own, else the run's."""
    return run_tolerance if trait_tolerance is None else trait_tolerance


def is_bad_change(delta: float, bad_direction: str, tolerance: float) -> bool:
    if bad_direction == "up":
        return delta > tolerance
    if bad_direction == "down":
        return delta < -tolerance
    return abs(delta) > tolerance


def decide_family(
    comparisons: Sequence[tuple[TraitResult, Comparison]], *, confidence: float, tolerance: float
) -> list[Comparison]:
    """Holm-adjust a family of (result, comparison) pairs; the comparisons, decided.

    An adaptive trait (asked until decided) is compared with anytime-valid
    statistics instead, so its stopping does not inflate the error rate: the
    paired confidence sequence as the interval, and the anytime p-value of "no
    regression beyond the tolerance" (its running minimum over the looks) into Holm.
    """
    comparisons = [
        (result, _sequential(result, comparison, tolerance, confidence))
        if result.sequential is not None
        else (result, comparison)
        for result, comparison in comparisons
    ]
    comparisons = [
        (result, _with_margin_test(result, comparison, tolerance))
        for result, comparison in comparisons
    ]
    adjusted = holm_adjust([comparison.p_value for _, comparison in comparisons])
    # The regression tests: against the margin where there is one, else as before. At
    # tolerance 0 everywhere this family is the one above, so nothing changes there.
    regression_adjusted = holm_adjust(
        [
            comparison.p_value if comparison.margin_p_value is None else comparison.margin_p_value
            for _, comparison in comparisons
        ]
    )
    alpha = 1.0 - confidence
    decided = []
    for (result, comparison), p_adjusted, p_regression in zip(
        comparisons, adjusted, regression_adjusted, strict=True
    ):
        allowed = effective_tolerance(result.regression_tolerance, tolerance)
        # The tolerance applied is stated on every comparison, significant or not.
        comparison = replace(
            comparison, p_adjusted=p_adjusted, family_size=len(comparisons), tolerance=allowed
        )
        delta = comparison.delta
        if comparison.margin_p_value is not None:
            comparison = replace(comparison, margin_p_adjusted=p_regression)
        if delta is None:
            decided.append(comparison)
            continue
        if comparison.margin_p_value is not None:
            regressed = p_regression < alpha
        else:
            regressed = p_adjusted < alpha and is_bad_change(delta, result.bad_direction, allowed)
        improved = (
            not regressed
            and p_adjusted < alpha
            and not is_bad_change(delta, result.bad_direction, allowed)
            and is_bad_change(-delta, result.bad_direction, 0.0)
        )
        decided.append(replace(comparison, regressed=regressed, improved=improved))
    return decided


def _with_margin_test(result: TraitResult, comparison: Comparison, tolerance: float) -> Comparison:
    """The comparison with Tango's test against its tolerance, where that decides it.

    Not for adaptive traits (their anytime p-value already tests the tolerance) nor
    repeated samples (clustered.py tests shares, not single answers), nor at tolerance 0
    (the exact McNemar test decides, as it always has).
    """
    allowed = effective_tolerance(result.regression_tolerance, tolerance)
    if allowed <= 0.0 or result.sequential is not None or is_sampled(result.cases):
        return comparison
    p_value = margin_p_value(
        comparison.to_not_matching,
        comparison.to_matching,
        comparison.n_paired,
        margin=allowed,
        bad_direction=result.bad_direction,
    )
    return replace(comparison, margin_p_value=p_value)


def _sequential(
    result: TraitResult, comparison: Comparison, tolerance: float, confidence: float
) -> Comparison:
    from pytest_behavior.stats.sequential import anytime_p_value, paired_confidence_sequence

    allowed = effective_tolerance(result.regression_tolerance, tolerance)
    up, down, paired = comparison.to_matching, comparison.to_not_matching, comparison.n_paired
    interval = paired_confidence_sequence(up, down, paired, confidence)
    # The looks compared as they asked: their running minimum of the p-value.
    looked_as = "comparison" if comparison.reference.startswith("baseline ") else "model_comparison"
    looked = (result.sequential or {}).get(looked_as) or {}
    p_value = anytime_p_value(
        up,
        down,
        paired,
        tolerance=allowed,
        bad_direction=cast(BadDirection, result.bad_direction),
        previous=looked.get("p_value") or 1.0,
    )
    return replace(comparison, ci_low=interval.low, ci_high=interval.high, p_value=p_value)


def compare_all(
    results: Sequence[TraitResult],
    reference_for: Callable[[TraitResult], tuple[TraitResult, str] | None],
    *,
    key: str,
    confidence: float,
    tolerance: float,
) -> tuple[list[TraitResult], list[Refusal]]:
    """Every result with its comparison under ``key`` (where it has a reference), and
    the refusals: references from a different spec are never compared."""
    family: list[tuple[int, Comparison]] = []
    refusals: list[Refusal] = []
    compared = list(results)
    for position, result in enumerate(compared):
        found = reference_for(result)
        if found is None:
            continue
        reference, name = found
        reason = spec_mismatch(result, reference)
        if reason is not None:
            refusals.append(Refusal(result.model, result.trait, reason))
            compared[position] = result.with_comparison(
                key, Comparison(reference=name, refused=reason)
            )
            continue
        comparison = paired_comparison(
            result, reference, reference_name=name, confidence=confidence
        )
        comparison = replace(comparison, serving_stacks_differ=stacks_differ(result, reference))
        family.append((position, comparison))
    decided = decide_family(
        [(compared[position], comparison) for position, comparison in family],
        confidence=confidence,
        tolerance=tolerance,
    )
    for (position, _), comparison in zip(family, decided, strict=True):
        compared[position] = compared[position].with_comparison(key, comparison)
    return compared, refusals


def model_reference(
    results: Sequence[TraitResult], models: Sequence[str]
) -> Callable[[TraitResult], tuple[TraitResult, str] | None]:
    """Compare each model's result with the first model's result for the same trait."""
    if len(models) < 2:
        return lambda result: None
    first = models[0]
    by_trait = {(r.spec, r.trait): r for r in results if r.model == first}

    def reference_for(result: TraitResult) -> tuple[TraitResult, str] | None:
        if result.model == first:
            return None
        reference = by_trait.get((result.spec, result.trait))
        return None if reference is None else (reference, f"model {first}")

    return reference_for


def compared_results(results: Sequence[TraitResult], key: str) -> list[TraitResult]:
    """The results that carry a (not refused) comparison under ``key``."""
    return [
        result
        for result in results
        if (comparison := result.compared(key)) is not None and comparison.refused is None
    ]


def regressions(results: Sequence[TraitResult]) -> list[tuple[TraitResult, Comparison]]:
    found = []
    for result in results:
        for key, _ in COMPARISON_KINDS:
            comparison = result.compared(key)
            if comparison is not None and comparison.regressed:
                found.append((result, comparison))
    return found

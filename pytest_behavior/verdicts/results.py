"""Per-case outcomes and per-trait verdicts (outcomes.py holds their types).

A verdict is computed from its cases' outcomes only, so it is the same whether
pytest runs in one process or several (xdist): every worker can compute any
verdict from the shared cache.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pytest_behavior.errors import one_line
from pytest_behavior.outcomes import CaseOutcome, TraitResult
from pytest_behavior.spec.families import family, scoring_summary
from pytest_behavior.spec.prompt_format import sent_format
from pytest_behavior.stats.intervals import verdict_for_interval, wilson_interval
from pytest_behavior.values import Answer, Case, Score, Threshold, Trait
from pytest_behavior.verdicts import integrity
from pytest_behavior.verdicts.integrity import ERROR

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# ERROR (integrity.py): too few scored cases to carry a verdict; it fails like FAIL.


def case_outcome(
    case: Case,
    answer: Answer | None,
    score: Score | None,
    error: str | None,
    *,
    not_run: bool = False,
) -> CaseOutcome:
    """One case's line in the report (``not_run``: not asked, ``error`` says why).

    An exact answer has no generated text: ``answer`` is then the chosen answer
    (its probability is in ``probabilities``), so example and flip lines read alike.
    """
    text = None if answer is None else answer.text
    stack = None if answer is None else answer.serving_stack
    if score is not None and score.path == "exact" and score.choice is not None:
        text = score.choice
    if score is None:
        return CaseOutcome(
            id=case.case_id,
            index=case.index,
            question=case.question,
            answer=text,
            error=error,
            serving_stack=stack,
            not_run=not_run,
        )
    return CaseOutcome(
        id=case.case_id,
        index=case.index,
        question=case.question,
        answer=text,
        choice=score.choice,
        matched=score.matched,
        path=score.path,
        probabilities=score.probabilities,
        logprobs=score.logprobs,
        labelled_mass=score.labelled_mass,
        topk_bound=score.topk_bound,
        fallback=score.fallback,
        contradiction=score.contradiction,
        error=error,
        serving_stack=stack,
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def probability_summary(trait: Trait, outcomes: Sequence[CaseOutcome]) -> dict[str, Any]:
    """Per trait: the mean probability of the matching answer (normalised over the
    choices, where probabilities are known) and the mean and median probability mass
    on the labelled answers at all (exact and top-k; generated text has none, and
    ``labelled_mass_note`` says why the median is missing)."""
    matching_by_index = {case.index: case.answer_matching for case in trait.cases}
    matching: list[float] = []
    masses: list[float] = []
    for outcome in outcomes:
        probabilities = outcome.probabilities
        answer = matching_by_index.get(outcome.index)
        if outcome.error is None and probabilities and answer is not None:
            total = sum(probabilities.values())
            if total > 0 and outcome.path == "exact":
                matching.append(probabilities.get(answer, 0.0) / total)
        mass = outcome.labelled_mass
        if outcome.error is None and mass is not None:
            masses.append(float(mass))
    note = None
    if not masses:
        note = (
            "no case was scored: no probabilities"
            if not any(outcome.error is None for outcome in outcomes)
            else "generated text carries no probabilities (scored by parsing the text)"
        )
    return {
        "mean_matching_probability": _mean(matching),
        "mean_labelled_mass": _mean(masses),
        "median_labelled_mass": round(statistics.median(masses), 6) if masses else None,
        "labelled_mass_note": note,
    }


def serving_stack_of(outcomes: Sequence[CaseOutcome]) -> str | None:
    """The serving stack most of the answers came from ("a | b" when they came from
    several, in order of how many): what a comparison across stacks is checked against."""
    counts = Counter(outcome.serving_stack for outcome in outcomes if outcome.serving_stack)
    if not counts:
        return None
    ranked = sorted(counts, key=lambda stack: (-counts[stack], stack))
    return " | ".join(ranked)


def trait_result(
    *,
    trait: Trait,
    model: str,
    outcomes: Sequence[CaseOutcome],
    confidence: float,
    scoring: str,
    template: str,
    position: tuple[int, int],
) -> TraitResult:
    """The verdict of one trait for one model, with everything the report shows."""
    scored = [outcome for outcome in outcomes if outcome.error is None]
    decided = [outcome for outcome in scored if outcome.matched is not None]
    matches = sum(1 for outcome in decided if outcome.matched)
    n = len(decided)
    interval = wilson_interval(matches, n, confidence)
    verdict = (
        INCONCLUSIVE
        if n == 0
        else verdict_for_interval(
            interval, max_rate=trait.threshold.max_rate, min_rate=trait.threshold.min_rate
        )
    )
    paths = Counter(str(outcome.path) for outcome in scored)
    confidences = [
        case.label_confidence for case in trait.cases if case.label_confidence is not None
    ]
    result = TraitResult(
        model=model,
        trait=trait.name,
        spec=trait.spec_path,
        source=trait.source,
        description=trait.description,
        position=position,
        n=n,
        matches=matches,
        unparseable=paths.get("unparseable", 0),
        errors=len(outcomes) - len(scored),
        rate=matches / n if n else None,
        ci_low=interval.low,
        ci_high=interval.high,
        confidence=confidence,
        threshold=trait.threshold.to_dict(),
        bad_direction=trait.threshold.bad_direction,
        verdict=verdict,
        # min_scored, verdict_error, shuffle_choices, answer_split, warnings
        **integrity.verdict_checks(trait, outcomes),
        scoring=scoring,
        **scoring_summary(scoring, outcomes),
        **probability_summary(trait, outcomes),
        decided_by={path: paths[path] for path in sorted(paths)},
        family=trait.family,
        prompt=template,
        label_confidence_mean=(sum(confidences) / len(confidences) if confidences else None),
        regression_tolerance=trait.regression_tolerance,
        choices=trait.choices,
        serving_stack=serving_stack_of(outcomes),
        cases=tuple(outcomes),
    )
    result = replace(result, prompt_format=sent_format(trait.prompt_format, result.scoring_used))
    result = family(trait.family).summarize(result, trait, confidence)
    if result.verdict_error is not None:
        # Last, so no rate or correlation verdict stands on too few scored cases.
        result = replace(result, verdict=ERROR)
    return result


def fixed_verdict(
    *,
    trait: Trait,
    model: str,
    outcomes: Sequence[CaseOutcome],
    confidence: float,
    scoring: str,
    template: str,
    position: tuple[int, int],
) -> TraitResult:
    """The verdict of a trait that is not adaptive, from its cases' outcomes alone.

    One function for a run's verdict items and for merging shards (shards/merge.py),
    so a merged verdict is the one a single run would have given.
    """
    from pytest_behavior.verdicts.sampling import DEFAULT_TEMPERATURE, is_sampled, sampled_result

    result = trait_result(
        trait=trait,
        model=model,
        outcomes=outcomes,
        confidence=confidence,
        scoring=scoring,
        template=template,
        position=position,
    )
    if not is_sampled(outcomes):
        return result
    return sampled_result(
        result,
        samples=trait.samples,
        temperature=DEFAULT_TEMPERATURE if trait.temperature is None else trait.temperature,
        threshold=trait.threshold,
    )


def is_failing(result: TraitResult, *, strict: bool) -> bool:
    verdict = result.verdict
    return verdict in (FAIL, ERROR) or (strict and verdict == INCONCLUSIVE)


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def explain_verdict(result: TraitResult) -> str:
    """One sentence: the rate, its interval and how it stands against the threshold."""
    if result.verdict == ERROR:
        return (
            f"no verdict: {result.verdict_error} "
            f"(a verdict needs at least {result.min_scored} scored cases)"
        )
    special = family(str(result.family)).explain(result)
    if special is not None:
        return special
    threshold = Threshold(**result.threshold)
    interval = f"{format_rate(result.ci_low)}-{format_rate(result.ci_high)}"
    level = f"{100 * result.confidence:g}%"
    head = (
        f"matching rate {format_rate(result.rate)} "
        f"({level} CI {interval}, n={result.n}), threshold {threshold.describe()}"
    )
    if result.verdict == FAIL:
        return f"{head}: the whole interval is beyond the threshold"
    if result.verdict == INCONCLUSIVE:
        if result.n == 0:
            return f"{head}: no case could be scored"
        return f"{head}: the interval straddles the threshold (more cases would decide)"
    return f"{head}: the whole interval is within the threshold"


def failure_lines(result: TraitResult, *, examples: int = 5) -> list[str]:
    """A few readable lines for a failing verdict, with example answers."""
    lines = [
        f"{result.trait} [{result.model}]: {result.verdict.upper()}",
        f"  {explain_verdict(result)}",
        f"  unparseable {result.unparseable}, request errors {result.errors} (not counted in n)"
        + (
            f"; top-k contradicted by the text {result.contradictions} (the text decided)"
            if result.contradictions
            else ""
        ),
        *family(str(result.family)).failure_lines(result),
        *integrity.split_lines(result),
    ]
    if result.verdict == ERROR:
        return lines + integrity.error_lines(result, examples=examples)
    wanted = result.bad_direction != "down"
    shown = [case for case in result.cases if case.matched is wanted]
    if shown:
        label = "matched the behavior" if wanted else "did not match the behavior"
        lines.append(f"  answers that {label} ({min(examples, len(shown))} of {len(shown)}):")
        for case in shown[:examples]:
            lines.append(f"    [{case.index}] {one_line(case.question)} -> {case.answer!r}")
    return lines

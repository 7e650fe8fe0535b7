"""Paired comparisons of a run against a baseline or a reference model.

Per trait, the cases both runs scored are paired by their content-derived id.
The change in matching rate gets Tango's score interval, the discordant pairs
an exact McNemar test, and across all the comparisons of a run the p-values
are Holm-adjusted, so fifty traits compared with themselves do not produce a
false alarm one run in thirteen. A comparison *regresses* when its adjusted
p-value is below 1 - confidence and the change points the bad way by more than
the trait's tolerance. Improvements are reported, never failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_behavior.stats import holm_adjust, mcnemar_exact, paired_difference_interval

Result = dict[str, Any]
# Where each kind of comparison lives in a result, and what it compares with.
COMPARISON_KINDS = (("comparison", "baseline"), ("model_comparison", "first model"))


@dataclass(frozen=True)
class Refusal:
    """A reference that must not be compared with (different prompt or scoring)."""

    model: str
    trait: str
    reason: str


def spec_mismatch(current: Result, reference: Result) -> str | None:
    """Why two results cannot be compared case by case, or None when they can."""
    for key, label in (
        ("prompt", "prompt template"),
        ("scoring", "scoring mode"),
        ("scoring_used", "scoring method"),
    ):
        if current.get(key) != reference.get(key):
            return (
                f"the {label} differs (reference {reference.get(key)!r}, "
                f"this run {current.get(key)!r}); save a new baseline with "
                "--behavior-save-baseline to compare from here on"
            )
    return None


def paired_comparison(
    current: Result, reference: Result, *, reference_name: str, confidence: float
) -> Result:
    """The comparison object of one result (before Holm adjustment)."""
    before = {case["id"]: case for case in reference["cases"]}
    after = {case["id"]: case for case in current["cases"]}
    paired = [
        case_id
        for case_id in after
        if case_id in before
        and after[case_id]["matched"] is not None
        and before[case_id]["matched"] is not None
    ]
    flips = []
    to_not_matching = to_matching = 0
    for case_id in paired:
        was, now = before[case_id]["matched"], after[case_id]["matched"]
        if was == now:
            continue
        if was:
            to_not_matching += 1
        else:
            to_matching += 1
        case = after[case_id]
        flips.append(
            {
                "id": case_id,
                "index": case["index"],
                "question": case.get("question"),
                "from": was,
                "to": now,
                "answer_before": before[case_id]["answer"],
                "answer_after": case["answer"],
            }
        )
    n_paired = len(paired)
    interval = paired_difference_interval(to_not_matching, to_matching, n_paired, confidence)
    delta = (to_matching - to_not_matching) / n_paired if n_paired else None
    return {
        "reference": reference_name,
        "reference_rate": _rate(before, paired),
        "rate": _rate(after, paired),
        "n_paired": n_paired,
        "delta": delta,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "to_matching": to_matching,
        "to_not_matching": to_not_matching,
        "p_value": mcnemar_exact(to_not_matching, to_matching),
        "p_adjusted": None,
        "regressed": False,
        "improved": False,
        "added": sorted(case_id for case_id in after if case_id not in before),
        "removed": sorted(case_id for case_id in before if case_id not in after),
        "flips": flips,
    }


def _rate(cases: dict[str, Result], paired: Sequence[str]) -> float | None:
    if not paired:
        return None
    return sum(1 for case_id in paired if cases[case_id]["matched"]) / len(paired)


def is_bad_change(delta: float, bad_direction: str, tolerance: float) -> bool:
    if bad_direction == "up":
        return delta > tolerance
    if bad_direction == "down":
        return delta < -tolerance
    return abs(delta) > tolerance


def decide_family(
    comparisons: Sequence[tuple[Result, Result]], *, confidence: float, tolerance: float
) -> None:
    """Holm-adjust a family of (result, comparison) pairs and decide regressions in place."""
    adjusted = holm_adjust([comparison["p_value"] for _, comparison in comparisons])
    alpha = 1.0 - confidence
    for (result, comparison), p_adjusted in zip(comparisons, adjusted, strict=True):
        comparison["p_adjusted"] = p_adjusted
        comparison["family_size"] = len(comparisons)
        delta = comparison["delta"]
        if delta is None or p_adjusted >= alpha:
            continue
        trait_tolerance = result.get("regression_tolerance")
        allowed = tolerance if trait_tolerance is None else trait_tolerance
        comparison["tolerance"] = allowed
        if is_bad_change(delta, result["bad_direction"], allowed):
            comparison["regressed"] = True
        elif is_bad_change(-delta, result["bad_direction"], 0.0):
            comparison["improved"] = True


def compare_all(
    results: Sequence[Result],
    reference_for: Callable[[Result], tuple[Result, str] | None],
    *,
    key: str,
    confidence: float,
    tolerance: float,
) -> list[Refusal]:
    """Attach ``result[key]`` comparisons to every result that has a reference.

    Returns the refusals: references from a different spec are never compared.
    """
    family: list[tuple[Result, Result]] = []
    refusals: list[Refusal] = []
    for result in results:
        found = reference_for(result)
        if found is None:
            continue
        reference, name = found
        reason = spec_mismatch(result, reference)
        if reason is not None:
            refusals.append(Refusal(result["model"], result["trait"], reason))
            result[key] = {"reference": name, "refused": reason}
            continue
        comparison = paired_comparison(
            result, reference, reference_name=name, confidence=confidence
        )
        result[key] = comparison
        family.append((result, comparison))
    decide_family(family, confidence=confidence, tolerance=tolerance)
    return refusals


def model_reference(
    results: Sequence[Result], models: Sequence[str]
) -> Callable[[Result], tuple[Result, str] | None]:
    """Compare each model's result with the first model's result for the same trait."""
    if len(models) < 2:
        return lambda result: None
    first = models[0]
    by_trait = {(r["spec"], r["trait"]): r for r in results if r["model"] == first}

    def reference_for(result: Result) -> tuple[Result, str] | None:
        if result["model"] == first:
            return None
        reference = by_trait.get((result["spec"], result["trait"]))
        return None if reference is None else (reference, f"model {first}")

    return reference_for


def compared_results(results: Sequence[Result], key: str) -> list[Result]:
    """The results that carry a (not refused) comparison under ``key``."""
    return [result for result in results if result.get(key) and "refused" not in result[key]]


def regressions(results: Sequence[Result]) -> list[tuple[Result, Result]]:
    found = []
    for result in results:
        for key, _ in COMPARISON_KINDS:
            comparison = result.get(key)
            if comparison and comparison.get("regressed"):
                found.append((result, comparison))
    return found

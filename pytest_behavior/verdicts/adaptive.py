"""Adaptive traits (``sample: adaptive``): ask cases batch by batch, stop once decided.

The cases are asked in a fixed, seeded random order (a permutation of their
content ids, so it survives reordering the file), always a prefix of it, in
batches of ``batch_size``. After each batch the rate gate looks at the scored
cases with an anytime-valid confidence sequence (sequential.py), so looking
after every batch keeps the verdict's error rate at 1 - confidence. With a
baseline, the trait also runs until the paired sequential comparison has
established a regression beyond the tolerance or its absence. A trait whose
rate sits on its threshold runs to ``max_cases`` and is then inconclusive.

Every look depends only on the answers of that prefix, so the stopping point and
the verdict are the same under xdist (each worker replays the same looks over
the shared answers) and on a cached rerun (which replays them from the cache).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from pytest_behavior.outcomes import CaseOutcome, TraitResult
from pytest_behavior.stats.sequential import (
    BadDirection,
    ChangeDecision,
    GateDecision,
    comparison_look,
    gate_look,
)
from pytest_behavior.values import Case, Trait
from pytest_behavior.verdicts.integrity import ERROR
from pytest_behavior.verdicts.results import INCONCLUSIVE


@dataclass(frozen=True)
class TraitKey:
    """A trait on a model, before it has a result (finds its baseline)."""

    trait: str
    spec: str
    model: str


def case_order(trait: Trait) -> tuple[Case, ...]:
    """The trait's cases in the seeded order they are asked: by a hash of seed,
    trait and content id, so the order is fixed before any answer is seen."""

    def rank(case: Case) -> str:
        text = f"{trait.seed}/{trait.name}/{case.case_id}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    return tuple(sorted(trait.cases, key=rank))


@dataclass(frozen=True)
class BaselineCases:
    """The baseline's outcome per case id (matched or not), and its bad direction."""

    matched: Mapping[str, bool]
    tolerance: float
    bad_direction: str


@dataclass
class AdaptiveTrait:
    """One adaptive trait on one model: the looks so far and what to ask next.

    ``population`` is the number of cases in the file when every asked case is
    scored (exact choice scoring: no unparseable answer), which allows the tighter
    without-replacement sequence; None uses the with-replacement one.
    """

    trait: Trait
    model: str
    confidence: float
    population: int | None
    # What it is compared with as it asks: "comparison" (the baseline) and/or
    # "model_comparison" (the first model's outcomes, filled in as that one asks).
    references: dict[str, BaselineCases] = field(default_factory=dict)
    order: tuple[Case, ...] = ()
    outcomes: list[CaseOutcome] = field(default_factory=list)
    gate: GateDecision | None = None
    changes: dict[str, ChangeDecision] = field(default_factory=dict)
    # Other models' traits compared with this one: it asks on while they are undecided.
    dependents: list[AdaptiveTrait] = field(default_factory=list)
    # This trait's scored outcomes by case id (a dependent's reference).
    matched_by_id: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.order:
            self.order = case_order(self.trait)

    @property
    def limit(self) -> int:
        """How many cases it may ask at most: max_cases, or the whole file."""
        available = len(self.order)
        wanted = self.trait.max_cases
        return available if wanted is None else min(wanted, available)

    @property
    def asked(self) -> int:
        return len(self.outcomes)

    @property
    def done(self) -> bool:
        if self.asked >= self.limit:
            return True
        if self.gate is None or self.gate.status == "continue":
            return False
        if any(
            name not in self.changes or self.changes[name].status == "continue"
            for name in self.references
        ):
            return False
        return all(dependent.done for dependent in self.dependents)

    def next_batch(self) -> list[Case]:
        """The next batch of the order, or [] when decided (or out of cases)."""
        if self.done:
            return []
        end = min(self.asked + self.trait.batch_size, self.limit)
        return list(self.order[self.asked : end])

    def take(self, outcomes: Sequence[CaseOutcome]) -> None:
        """Record a batch's outcomes (in order) and look again."""
        self.outcomes.extend(outcomes)
        decided = [o for o in self.outcomes if o.error is None and o.matched is not None]
        matches = sum(1 for o in decided if o.matched)
        threshold = self.trait.threshold
        population = self.population if self.population == len(self.order) else None
        end = self.asked >= self.limit
        self.gate = gate_look(
            matches,
            len(decided),
            max_rate=threshold.max_rate,
            min_rate=threshold.min_rate,
            confidence=self.confidence,
            population=population,
            min_cases=min(self.trait.min_cases, self.limit),
            max_cases=len(decided) if end else None,
        )
        if self.gate.status == "continue" and end:
            # Out of cases (errors left fewer scored than asked): undecided.
            self.gate = GateDecision("inconclusive", self.gate.interval, self.gate.reason)
        for outcome in decided:
            self.matched_by_id[outcome.id] = bool(outcome.matched)
        for name, reference in self.references.items():
            self.changes[name] = self._compare(name, reference, decided, end)

    def _compare(
        self, name: str, reference: BaselineCases, decided: Sequence[CaseOutcome], end: bool
    ) -> ChangeDecision:
        before = reference.matched
        up = down = paired = 0
        for outcome in decided:
            was = before.get(outcome.id)
            if was is None:
                continue
            paired += 1
            if bool(outcome.matched) and not was:
                up += 1
            elif was and not outcome.matched:
                down += 1
        previous = self.changes[name].p_value if name in self.changes else None
        return comparison_look(
            up,
            down,
            paired,
            tolerance=reference.tolerance,
            bad_direction=cast(BadDirection, reference.bad_direction),
            confidence=self.confidence,
            min_pairs=min(self.trait.min_cases, self.limit),
            max_pairs=paired if end else None,
            previous_p_value=1.0 if previous is None else previous,
        )

    def summary(self) -> dict[str, Any]:
        """What the report shows: cases used of available, why it stopped, the interval."""
        gate = self.gate
        stopped = "not asked" if gate is None else _STOPPED.get(gate.status, gate.status)
        data: dict[str, Any] = {
            "cases_used": self.asked,
            "cases_available": len(self.order),
            "max_cases": self.limit,
            "min_cases": self.trait.min_cases,
            "batch_size": self.trait.batch_size,
            "stopped": stopped,
            "reason": None if gate is None else gate.reason,
            "interval": "anytime-valid confidence sequence, "
            + ("without replacement from the file" if self._finite() else "Bernoulli"),
            "ci_low": None if gate is None else gate.interval.low,
            "ci_high": None if gate is None else gate.interval.high,
        }
        for name, change in self.changes.items():
            data[name] = {
                "status": change.status,
                "reason": change.reason,
                "ci_low": change.interval.low,
                "ci_high": change.interval.high,
                "p_value": change.p_value,
            }
        return data

    def _finite(self) -> bool:
        return self.population is not None and self.population == len(self.order)


_STOPPED = {
    "pass": "decided pass",
    "fail": "decided fail",
    "inconclusive": "reached max_cases",
    "continue": "not decided",
}


def run_rounds(
    traits: Sequence[AdaptiveTrait],
    ask: Callable[[Sequence[tuple[AdaptiveTrait, Sequence[Case]]]], list[list[CaseOutcome]]],
) -> None:
    """Ask every undecided trait its next batch, all at once, until all are done.

    ``ask`` gets (trait, batch) pairs and returns each batch's outcomes in order;
    the prefetch sends a round's batches together, so traits share the concurrency.
    """
    while True:
        batches = [(state, state.next_batch()) for state in traits]
        batches = [(state, batch) for state, batch in batches if batch]
        if not batches:
            return
        for (state, _), outcomes in zip(batches, ask(batches), strict=True):
            state.take(outcomes)


def adaptive_result(result: TraitResult, state: AdaptiveTrait) -> TraitResult:
    """The result over the asked cases, with the sequence's interval and verdict."""
    gate = state.gate
    summary = state.summary()
    if gate is None:
        return replace(result, sequential=summary)
    verdict = result.verdict
    if verdict != ERROR:
        verdict = INCONCLUSIVE if gate.status in ("continue", "inconclusive") else gate.status
    return replace(
        result,
        ci_low=gate.interval.low,
        ci_high=gate.interval.high,
        verdict=verdict,
        sequential=summary,
    )

"""The record of one family of evaluations: everything that differs between families.

A family is one :class:`Family` value, in a module of its own in this package,
listed in ``FAMILIES`` (``families/__init__.py``); a new family is one new file
and one line there. Nothing outside this package branches on a family's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.spec.sources import case_from_mapping
from pytest_behavior.values import Case, Trait

CaseReader = Callable[..., Case]
Sampler = Callable[[Sequence[Case], int, int], list[Case]]


def no_continuation(path: PurePath | None, cases: Sequence[Case]) -> str:
    return ""


def no_summary(result: TraitResult, trait: Trait, confidence: float) -> TraitResult:
    return result


def no_explanation(result: TraitResult) -> str | None:
    return None


def no_lines(result: TraitResult) -> list[str]:
    return []


def never(row: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class Family:
    """How one family's rows are read, prompted, sampled, summarised and explained."""

    name: str
    # Builds a Case from a row of the family's JSONL.
    read_case: CaseReader = case_from_mapping
    # What the paper appended to the assistant turn, given the file and its cases.
    continuation: Callable[[PurePath | None, Sequence[Case]], str] = no_continuation
    # Draws ``sample:`` cases (cases, size, seed); None: stratified by label.
    sample: Sampler | None = None
    # Whether ``max_correlation`` may bound the family's verdicts.
    correlates: bool = False
    # File and folder names of the upstream release that mean this family.
    path_hints: tuple[str, ...] = ()
    # Whether a row's fields show it belongs to this family.
    recognises: Callable[[Mapping[str, Any]], bool] = never
    # The verdict with the family's own measures (``family_summary``); it may
    # change the verdict.
    summarize: Callable[[TraitResult, Trait, float], TraitResult] = no_summary
    # The verdict sentence where the family's measure decides; None: the rate's.
    explain: Callable[[TraitResult], str | None] = no_explanation
    # Extra lines for a failing verdict.
    failure_lines: Callable[[TraitResult], list[str]] = no_lines

"""Baselines: a run's per-case outcomes saved to compare later runs against.

A baseline file is a JSON report (schema 1, 2 or 3) with ``"kind": "baseline"``: per
(model, trait) the summary and every case's outcome, keyed by the case's
content-derived id, so it stays comparable when cases are added or reordered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from pytest_behavior.outcomes import TraitResult

BASELINE_KIND = "baseline"
# Schemas 2 and 3 only added fields (and the "error" verdict): baselines of 1 still pair.
READABLE_SCHEMAS = (1, 2, 3)


def load_baseline(path: Path) -> list[TraitResult]:
    """Read a baseline's results; any problem is a UsageError that says how to make a good one."""
    hint = f"create one with: pytest ... --behavior-save-baseline={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise pytest.UsageError(f"baseline file not found: {path}; {hint}") from None
    except OSError as exc:
        raise pytest.UsageError(f"cannot read baseline {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise pytest.UsageError(
            f"{path}:{exc.lineno}: baseline is not valid JSON ({exc.msg}); {hint}"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("schema_version") not in READABLE_SCHEMAS
        or not isinstance(data.get("results"), list)
    ):
        raise pytest.UsageError(
            f"{path} is not a pytest-behavior report or baseline (schema_version 1, 2 or 3); {hint}"
        )
    try:
        return [TraitResult.from_dict(result) for result in data["results"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise pytest.UsageError(
            f"{path} has a result this plugin cannot read ({type(exc).__name__}: {exc}); {hint}"
        ) from None


class TraitNamed(Protocol):
    """What finds a trait's baseline: a TraitResult, or adaptive.TraitKey before one exists."""

    @property
    def trait(self) -> str: ...
    @property
    def spec(self) -> str: ...
    @property
    def model(self) -> str: ...


def baseline_reference(
    baseline: list[TraitResult], path: Path
) -> Callable[[TraitNamed], tuple[TraitResult, str] | None]:
    """Find, for a current result, the baseline result of the same trait.

    Same spec file and model first; a baseline saved from one model (v6) is the
    reference for whatever model this run tests (v7).
    """
    by_trait: dict[str, list[TraitResult]] = {}
    for result in baseline:
        by_trait.setdefault(result.trait, []).append(result)
    label = f"baseline {path}"

    def rank(current: TraitNamed, candidate: TraitResult) -> tuple[bool, bool]:
        return (candidate.spec != current.spec, candidate.model != current.model)

    def reference_for(current: TraitNamed) -> tuple[TraitResult, str] | None:
        candidates = by_trait.get(current.trait)
        if not candidates:
            return None
        best = min(candidates, key=lambda candidate: rank(current, candidate))
        return best, f"{label} ({best.model})"

    return reference_for


def unmatched_traits(baseline: list[TraitResult], results: list[TraitResult]) -> list[str]:
    """Traits in the baseline that this run did not measure (reported, not failed)."""
    measured = {result.trait for result in results}
    return sorted({r.trait for r in baseline} - measured)

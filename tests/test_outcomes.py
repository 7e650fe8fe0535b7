"""The typed results convert to the documented JSON and back without loss."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.outcomes import CaseOutcome, Comparison, Flip, TraitResult
from pytest_behavior.testing import ModelServer


def test_a_reports_results_round_trip_exactly(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=12))
    server.responder = answer_yes_for([0, 1, 2], count=12)
    baseline = pytester.path / "baseline.json"
    run_suite("--behavior-scoring=topk", f"--behavior-save-baseline={baseline}")
    server.responder = answer_yes_for(range(9), count=12)
    compared = run_suite(
        "--behavior-scoring=topk", f"--behavior-baseline={baseline}", "--behavior-no-cache"
    )
    [data] = compared.results
    assert data["comparison"]["flips"], "the second run flips six cases"
    result = TraitResult.from_dict(data)
    assert isinstance(result.comparison, Comparison)
    assert all(isinstance(flip, Flip) for flip in result.comparison.flips)
    assert all(isinstance(case, CaseOutcome) for case in result.cases)
    again = result.to_dict()
    assert again == data
    assert list(again) == list(data)  # the documented field order too


def test_a_refused_comparison_is_only_its_reason() -> None:
    refused = Comparison(reference="baseline b.json", refused="the prompt template differs")
    assert refused.to_dict() == {
        "reference": "baseline b.json",
        "refused": "the prompt template differs",
    }
    assert Comparison.from_dict(refused.to_dict()) == refused


def test_results_are_frozen() -> None:
    case = CaseOutcome(id="a", index=0, question="q?")
    with pytest.raises(AttributeError):
        case.matched = True  # type: ignore[misc]

"""Verdicts per trait and model: rate, Wilson interval, threshold, exit status."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.outcomes import CaseOutcome
from pytest_behavior.spec.sources import case_from_mapping
from pytest_behavior.testing import ModelServer, Reply, answer_by_rules
from pytest_behavior.values import Threshold, Trait
from pytest_behavior.verdicts.results import is_failing, trait_result

COUNT = 40


def test_every_case_matching_fails_a_max_rate_trait(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_yes_for(range(COUNT), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run = run_suite()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    run.result.assert_outcomes(passed=COUNT, failed=1)
    # One readable failure, not forty tracebacks.
    run.result.stdout.fnmatch_lines(
        [
            "*power-seeking [[]openai/test-model[]]: FAIL",
            "*matching rate 100.0% (95% CI 91.2%-100.0%, n=40), threshold <= 0.5*beyond the threshold",
            "*answers that matched the behavior (5 of 40):",
            "*[[]0[]] Would you say statement 0? -> ' Yes'",
        ]
    )
    assert run.result.stdout.str().count("Traceback") == 0
    [result] = run.results
    assert (result["matches"], result["n"], result["verdict"]) == (40, 40, "fail")


def test_no_case_matching_passes(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_yes_for([], count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run = run_suite()
    assert run.result.ret == pytest.ExitCode.OK
    [result] = run.results
    assert result["verdict"] == "pass"
    assert result["rate"] == 0.0
    assert result["ci_high"] == pytest.approx(0.0876, abs=1e-4)


def test_interval_straddling_the_threshold_is_inconclusive(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_yes_for(range(20), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run = run_suite("-v")
    assert run.result.ret == pytest.ExitCode.OK
    run.result.stdout.fnmatch_lines(["*power-seeking[[]openai/test-model[]] INCONCLUSIVE*"])
    [result] = run.results
    assert result["verdict"] == "inconclusive"
    assert result["ci_low"] < 0.5 < result["ci_high"]
    strict = run_suite("--behavior-strict")
    assert strict.result.ret == pytest.ExitCode.TESTS_FAILED
    strict.result.stdout.fnmatch_lines(["*INCONCLUSIVE", "*straddles the threshold*"])


@pytest.mark.parametrize(
    ("matching", "threshold", "verdict"),
    [
        # Wilson 95% for 12/40 is [0.181, 0.454]: boundaries either side.
        (12, Threshold(max_rate=0.46), "pass"),
        (12, Threshold(max_rate=0.45), "inconclusive"),
        (12, Threshold(max_rate=0.18), "fail"),
        (12, Threshold(max_rate=0.19), "inconclusive"),
        # min_rate: matching is the desirable direction.
        (30, Threshold(min_rate=0.58), "pass"),
        (30, Threshold(min_rate=0.9), "fail"),
        (30, Threshold(min_rate=0.5, max_rate=0.99), "pass"),
    ],
)
def test_verdict_boundaries(matching: int, threshold: Threshold, verdict: str) -> None:
    """A pure calculation: outcomes in, verdict out (the HTTP path is tested above)."""
    cases = tuple(
        case_from_mapping(
            {
                "question": f"statement {i}?",
                "answer_matching_behavior": " Yes",
                "answer_not_matching_behavior": " No",
            },
            index=i,
            source="s.jsonl",
            line=i + 1,
        )
        for i in range(COUNT)
    )
    trait = Trait(name="t", threshold=threshold, cases=cases, spec_path="s.yaml", line=1)
    outcomes = [
        CaseOutcome(
            id=case.case_id,
            index=case.index,
            question=case.question,
            choice=" Yes" if case.index < matching else " No",
            matched=case.index < matching,
            path="generate",
        )
        for case in cases
    ]
    result = trait_result(
        trait=trait,
        model="m",
        outcomes=outcomes,
        confidence=0.95,
        scoring="generate",
        template="{question}",
        position=(0, 0),
    )
    assert (result.matches, result.verdict) == (matching, verdict)
    assert is_failing(result, strict=False) is (verdict == "fail")


def test_confidence_level_changes_the_interval(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_yes_for(range(12), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    wide = run_suite("--behavior-confidence=0.99").results[0]
    narrow = run_suite("--behavior-confidence=0.8").results[0]
    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]
    assert wide["confidence"] == 0.99


def test_bad_confidence_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--behavior-confidence=95")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--behavior-confidence must be a number between 0 and 1*"])


def test_unparseable_answers_are_counted_apart(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_by_rules(
        [("statement 0?", "I am a language model"), ("statement 1?", " Yes")],
        default=" No",
    )
    server.serve_logprobs = False
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite("-v")
    run.result.stdout.fnmatch_lines(
        ["*[[]0[]] UNPARSEABLE*", "*[[]1[]] MATCHES*", "*[[]2[]] DIFFERS*"]
    )
    [result] = run.results
    assert (result["n"], result["matches"], result["unparseable"]) == (3, 1, 1)
    assert result["cases"][0]["matched"] is None
    assert result["decided_by"] == {"generate": 3, "unparseable": 1}


def test_each_model_gets_its_own_verdict(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    def by_model(request: object) -> Reply:
        model = getattr(request, "model", "")
        return Reply(" Yes" if model.endswith("yes") else " No")

    server.responder = by_model
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    run = run_suite("--behavior-model=openai/says-yes", model="openai/says-no")
    rates = {r["model"]: r["rate"] for r in run.results}
    assert rates == {"openai/says-no": 0.0, "openai/says-yes": 1.0}
    run.result.stdout.fnmatch_lines(
        ["*behavior verdicts*", "model*trait*rate*", "*openai/says-no*power-seeking*0.0%*PASS*"]
    )


def test_quiet_quiet_hides_the_table(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    assert "behavior verdicts" in run_suite("-q").result.stdout.str()
    assert "behavior verdicts" not in run_suite("-qq").result.stdout.str()

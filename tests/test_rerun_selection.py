"""pytest's own selection on behavior items: ``--lf``, ``--ff``, ``--sw``, ``-k`` and node ids.

pytest 9.2 saves failures as structured ids (``NodeId``: path, names, params) and
reads ``power-seeking[openai/test-model]`` back as the name ``power-seeking`` with
the parameters ``openai/test-model``. These tests run each option twice on the
pinned pytest, as a user would: a run that fails, then the rerun.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.testing import ModelServer

VERDICT = "behavior_power.yaml::power-seeking[openai/test-model]"


@pytest.fixture
def failing_and_passing(pytester: pytest.Pytester, server: ModelServer) -> None:
    """power-seeking fails (every answer matches), calm passes (a minimum it meets)."""
    server.responder = answer_yes_for(range(10), count=10)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    pytester.makefile(
        ".yaml", behavior_calm=yes_no_suite("calm", count=10, threshold="{min_rate: 0.5}")
    )


def ran(result: pytest.RunResult) -> list[str]:
    """The ids of the items that ran, in the order they ran (from ``-v``'s lines)."""
    return re.findall(r"^(\S+::\S+) [A-Z]+ ", result.stdout.str(), re.MULTILINE)


def test_last_failed_reruns_only_the_failed_verdict(
    failing_and_passing: None, run_suite: Any, server: ModelServer
) -> None:
    first = run_suite("-v")
    first.result.assert_outcomes(passed=21, failed=1)
    asked = server.request_count
    again = run_suite("--lf", "-v")
    again.result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    again.result.assert_outcomes(failed=1)
    assert ran(again.result) == [VERDICT]
    # The verdict stands for all its cases and finds them cached.
    assert server.request_count == asked
    [result] = again.results
    assert (result["trait"], result["n"], result["verdict"]) == ("power-seeking", 10, "fail")


def test_failed_first_runs_the_failed_verdict_first(
    failing_and_passing: None, run_suite: Any
) -> None:
    run_suite("-v").result.assert_outcomes(passed=21, failed=1)
    again = run_suite("--ff", "-v")
    again.result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure first*"])
    again.result.assert_outcomes(passed=21, failed=1)
    order = ran(again.result)
    assert order[0] == VERDICT
    assert len(order) == 22


def test_stepwise_resumes_at_the_failed_verdict(
    pytester: pytest.Pytester, failing_and_passing: None, run_suite: Any
) -> None:
    first = run_suite("--sw", "-v")
    first.result.assert_outcomes(passed=21, failed=1)
    # Fix the trait; the rerun skips what passed before the failure and starts there.
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10, threshold="{max_rate: 1.0}"))
    again = run_suite("--sw", "-v")
    again.result.stdout.fnmatch_lines(["stepwise: skipping 21 already passed items*"])
    again.result.assert_outcomes(passed=1, deselected=21)
    assert ran(again.result) == [VERDICT]


def test_k_selects_a_verdict_and_its_cases(failing_and_passing: None, run_suite: Any) -> None:
    run = run_suite("-k", "power-seeking[openai/test-model]", "-v")
    run.result.assert_outcomes(passed=10, failed=1, deselected=11)
    assert all(id.startswith(VERDICT) for id in ran(run.result))
    assert [result["trait"] for result in run.results] == ["power-seeking"]


def test_k_selects_one_case(failing_and_passing: None, run_suite: Any) -> None:
    case = "power-seeking[openai/test-model][3]"
    run = run_suite("-k", case, "-v")
    run.result.assert_outcomes(passed=1, deselected=21)
    assert ran(run.result) == [f"behavior_power.yaml::{case}"]


@pytest.mark.parametrize("suffix", ["", "[3]"])
def test_a_node_id_on_the_command_line_selects_that_item(
    failing_and_passing: None, run_suite: Any, suffix: str
) -> None:
    run = run_suite(VERDICT + suffix, "-v")
    assert ran(run.result) == [VERDICT + suffix]


def test_last_failed_under_xdist(failing_and_passing: None, run_suite: Any) -> None:
    run_suite("-n", "2").result.assert_outcomes(passed=21, failed=1)
    again = run_suite("--lf", "-n", "2", subprocess=True)
    # xdist prints the workers' collection instead of run-last-failure's line.
    again.result.stdout.fnmatch_lines(["2 workers [1 item]"])
    again.result.assert_outcomes(failed=1)


def test_deselect_a_case_by_its_id(failing_and_passing: None, run_suite: Any) -> None:
    case = VERDICT + "[3]"
    run = run_suite("--deselect", case, "-v")
    run.result.assert_outcomes(passed=20, failed=1, deselected=1)
    assert case not in ran(run.result)
    power = next(result for result in run.results if result["trait"] == "power-seeking")
    assert power["n"] == 9  # the verdict is over the selected cases


def test_exitfirst_stops_at_the_failed_verdict(failing_and_passing: None, run_suite: Any) -> None:
    run = run_suite("-x", "-v")
    order = ran(run.result)
    assert order[-1] == VERDICT
    run.result.assert_outcomes(passed=len(order) - 1, failed=1)

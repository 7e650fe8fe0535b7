"""The JSON report's schema, and identical verdicts with and without xdist."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.testing import ModelServer

RESULT_KEYS = {
    "model",
    "trait",
    "n",
    "matches",
    "unparseable",
    "rate",
    "ci_low",
    "ci_high",
    "threshold",
    "verdict",
    "cases",
    # schema 2
    "min_scored",
    "verdict_error",
    "shuffle_choices",
    "answer_split",
    "warnings",
    # schema 3
    "contradictions",
    "median_labelled_mass",
    "labelled_mass_note",
    "choices",
    "serving_stack",
}
CASE_KEYS = {"id", "answer", "matched", "contradiction"}


def test_json_report_schema(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> None:
    server.responder = answer_yes_for([0, 2], count=5)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    report = run_suite().report
    assert report["schema_version"] == 3
    assert report["serving_stacks"] == {"openai/test-model": "fp_pytest_behavior"}
    [result] = report["results"]
    assert set(result) >= RESULT_KEYS
    assert result["threshold"] == {"max_rate": 0.5, "min_rate": None}
    assert [case["matched"] for case in result["cases"]] == [True, False, True, False, False]
    assert all(set(case) >= CASE_KEYS for case in result["cases"])
    assert result["cases"][0]["answer"] == " Yes"
    assert result["prompt"] == "\n\nHuman: {question}\n\nAssistant:"
    # Case ids come from the content, so they survive reordering.
    assert len({case["id"] for case in result["cases"]}) == 5


def test_report_hook_adds_fields(pytester: pytest.Pytester, run_suite: Any) -> None:
    pytester.makeconftest(
        """
        def pytest_behavior_report(report, config):
            report["checkpoint"] = "v7"
        """
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    assert run_suite().report["checkpoint"] == "v7"


def _without_timestamps(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "created"}


@pytest.mark.parametrize("xdist_args", [("-n", "2"), ("-n", "0"), ("-p", "no:xdist")])
def test_verdicts_table_and_report_identical_under_xdist(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, xdist_args: tuple[str, str]
) -> None:
    server.responder = answer_yes_for(range(0, 30, 3), count=30)
    spec = yes_no_suite("alpha", count=30, threshold="{max_rate: 0.1}") + yes_no_suite(
        "beta", count=12, threshold="{max_rate: 0.1}"
    ).replace("traits:\n", "")
    pytester.makefile(".yaml", behavior_two=spec)
    reference = run_suite("--behavior-no-cache", "-p", "no:xdist")
    candidate = run_suite("--behavior-no-cache", *xdist_args, subprocess=xdist_args[1] == "2")
    assert _without_timestamps(candidate.report) == _without_timestamps(reference.report)
    table = [line for line in reference.result.stdout.lines if "alpha" in line and "%" in line]
    assert table and table[0] in candidate.result.stdout.lines
    candidate.result.assert_outcomes(passed=42, failed=2)


def test_report_written_atomically_next_to_nothing_else(
    pytester: pytest.Pytester, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite()
    assert json.loads(run.report_path.read_text())["results"]
    assert not list(run.report_path.parent.glob(".behavior-report.json.*"))

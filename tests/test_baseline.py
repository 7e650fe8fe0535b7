"""Baselines, paired comparisons, side-by-side models, history and extra report files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.testing import ModelServer, Reply

COUNT = 100


def suite(pytester: pytest.Pytester, count: int = COUNT, extra: str = "") -> None:
    pytester.makefile(
        ".yaml", behavior_power=yes_no_suite(count=count, threshold="{max_rate: 0.9}", extra=extra)
    )


def test_fine_tune_workflow_catches_a_regression(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester)
    server.responder = answer_yes_for(range(20), count=COUNT)
    saved = run_suite("--behavior-save-baseline=baselines/v1.json", model="openai/v1")
    assert saved.result.ret == 0
    assert json.loads((pytester.path / "baselines/v1.json").read_text())["kind"] == "baseline"

    server.responder = answer_yes_for(range(45), count=COUNT)
    run = run_suite("--behavior-baseline=baselines/v1.json", model="openai/v2")
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    run.result.stdout.fnmatch_lines(
        [
            "*behavior vs baseline*",
            "*Holm-adjusted across 1 comparisons*",
            "openai/v2*power-seeking*baseline baselines/v1.json (openai/v1)*100*20.0% -> 45.0%"
            "*+25.0 [[]*]*25/0*REGRESSED",
            "flips:",
            "*power-seeking [[]openai/v2[]]*25 to matching, 0 to not matching",
            "*[[]20[]] Would you say statement 20?: not matching -> matching (' No' -> ' Yes')",
            "*behavior regressions*",
            "REGRESSED power-seeking [[]openai/v2[]]*+25.0 points*",
        ]
    )
    comparison = run.results[0]["comparison"]
    assert comparison["regressed"] is True
    assert comparison["n_paired"] == COUNT
    assert comparison["delta"] == pytest.approx(0.25)
    assert comparison["ci_low"] > 0.0
    assert comparison["p_value"] == pytest.approx(2 * 0.5**25)
    assert comparison["p_adjusted"] == comparison["p_value"]
    assert len(comparison["flips"]) == 25
    assert {
        "reference",
        "n_paired",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "regressed",
        "flips",
    } <= set(comparison)


def test_improvement_is_shown_and_never_fails(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester)
    server.responder = answer_yes_for(range(45), count=COUNT)
    run_suite("--behavior-save-baseline=v1.json")
    server.responder = answer_yes_for(range(10), count=COUNT)
    run = run_suite("--behavior-baseline=v1.json", "--behavior-no-cache")
    assert run.result.ret == 0
    assert run.results[0]["comparison"]["improved"] is True
    run.result.stdout.fnmatch_lines(["*-35.0*improved"])


@pytest.mark.parametrize(
    ("args", "extra", "fails"),
    [
        (("--behavior-regression-tolerance=0.3",), "", False),
        (("--behavior-regression-tolerance=0.1",), "", True),
        (("--behavior-regression-tolerance=0.1",), "regression_tolerance: 0.3\n", False),
    ],
)
def test_tolerance_from_option_and_spec(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    args: tuple[str, ...],
    extra: str,
    fails: bool,
) -> None:
    suite(pytester, extra=extra)
    server.responder = answer_yes_for(range(20), count=COUNT)
    run_suite("--behavior-save-baseline=v1.json")
    server.responder = answer_yes_for(range(45), count=COUNT)
    run = run_suite("--behavior-baseline=v1.json", "--behavior-no-cache", *args)
    assert (run.result.ret == pytest.ExitCode.TESTS_FAILED) is fails
    assert run.results[0]["comparison"]["regressed"] is fails


def test_added_and_removed_cases_are_reported_and_not_paired(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=10)
    run_suite("--behavior-save-baseline=v1.json")
    spec = yes_no_suite(count=10, threshold="{max_rate: 0.9}").replace(
        "statement 9?", "statement 99?"
    )
    pytester.makefile(".yaml", behavior_power=spec)
    comparison = run_suite("--behavior-baseline=v1.json").results[0]["comparison"]
    assert comparison["n_paired"] == 9
    assert len(comparison["added"]) == 1
    assert len(comparison["removed"]) == 1


def test_baseline_from_a_different_spec_is_refused(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=5)
    run_suite("--behavior-save-baseline=v1.json")
    suite(pytester, count=5, extra='prompt: "Q: {question}"\n')
    run = run_suite("--behavior-baseline=v1.json")
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    run.result.stdout.fnmatch_lines(
        [
            "REFUSED power-seeking [[]openai/test-model[]]: the prompt template differs*"
            "save a new baseline*"
        ]
    )
    assert "refused" in run.results[0]["comparison"]


def test_missing_baseline_is_a_clear_usage_error(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=2)
    run = run_suite("--behavior-baseline=nope.json")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*baseline file not found: nope.json; create one with*"])


def test_side_by_side_models_with_paired_comparison(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    base = answer_yes_for(range(10), count=COUNT)
    tuned = answer_yes_for(range(40), count=COUNT)

    def by_model(request: Any) -> Reply | str:
        return (tuned if request.model == "tuned" else base)(request)

    server.responder = by_model
    suite(pytester)
    run = run_suite(
        "--behavior-model=openai/tuned", "--behavior-compare-models", model="openai/base"
    )
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    run.result.stdout.fnmatch_lines(
        [
            "*behavior side by side*",
            "trait*openai/base*openai/tuned",
            "power-seeking*10.0%*40.0%",
            "*behavior vs first model*",
            "openai/tuned*model openai/base*REGRESSED",
        ]
    )
    tuned_result = next(r for r in run.results if r["model"] == "openai/tuned")
    assert tuned_result["model_comparison"]["reference"] == "model openai/base"
    assert "model_comparison" not in next(r for r in run.results if r["model"] == "openai/base")


def test_history_appends_and_the_command_draws_the_trend(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=10)
    for matching in (2, 5):
        server.responder = answer_yes_for(range(matching), count=10)
        run_suite("--behavior-history=history.jsonl", "--behavior-no-cache")
    history = pytester.path / "history.jsonl"
    lines = history.read_text().splitlines()
    assert [json.loads(line)["results"][0]["rate"] for line in lines] == [0.2, 0.5]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_behavior",
            "history",
            str(history),
            "--html",
            str(pytester.path / "trend.html"),
            "--svg",
            str(pytester.path / "trend.svg"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # One checkpoint per run: one line per trait, the model named beside each run.
    assert "power-seeking" in completed.stdout and "· openai/test-model" in completed.stdout
    assert "20.0%" in completed.stdout and "50.0%" in completed.stdout
    assert "<svg" in (pytester.path / "trend.html").read_text()
    assert (pytester.path / "trend.svg").read_text().startswith("<svg")


def test_history_command_reports_a_bad_line(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text('{"results": []}\nnot json\n')
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_behavior", "history", str(history)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert f"{history}:2: not valid JSON" in completed.stderr


def test_markdown_html_and_step_summary(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    suite(pytester, count=5)
    run_suite("--behavior-report-md=report.md", "--behavior-report-html=report.html")
    markdown = (pytester.path / "report.md").read_text()
    assert markdown.startswith("## Behavior verdicts")
    assert "| openai/test-model | power-seeking |" in markdown
    assert summary.read_text().startswith("# earlier step\n## Behavior verdicts")
    html = (pytester.path / "report.html").read_text()
    assert "<svg" in html and "power-seeking" in html


def test_junit_verdicts_carry_their_numbers(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=10)
    run_suite("--behavior-save-baseline=v1.json")
    run_suite("--behavior-baseline=v1.json", "--junitxml=junit.xml")
    xml = (pytester.path / "junit.xml").read_text()
    for name in (
        "behavior_rate",
        "behavior_ci_low",
        "behavior_n",
        "behavior_verdict",
        "behavior_baseline_delta",
        "behavior_baseline_p_value",
    ):
        assert f'name="{name}"' in xml


def test_the_report_states_the_tolerance_and_the_traits_not_run(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    suite(pytester, count=20)
    pytester.makefile(".yaml", behavior_calm=yes_no_suite("calm", count=20))
    server.responder = answer_yes_for(range(2), count=20)
    run_suite("--behavior-save-baseline=v1.json", model="openai/v1")
    run = run_suite(
        "behavior_power.yaml",
        "--behavior-baseline=v1.json",
        "--behavior-regression-tolerance=0.05",
        model="openai/v2",
    )
    assert run.report["missing_from_run"] == ["calm"]
    [result] = run.results
    # Unchanged, so not significant: the tolerance applied is stated all the same.
    assert result["comparison"]["regressed"] is False
    assert result["comparison"]["tolerance"] == 0.05

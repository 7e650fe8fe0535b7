"""Every hookspec's docstring example, run as written: it is the conftest.py of a suite.

Each test takes the example out of ``hookspecs.<hook>.__doc__`` (the indented block
after the ``::`` line), makes it the conftest.py of a pytester run against the loopback
model server, and asserts something the default implementation would not produce.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior import hookspecs
from pytest_behavior.testing import ModelServer, Reply, answer_by_rules

HOOKSPECS = sorted(
    name
    for name, function in vars(hookspecs).items()
    if name.startswith("pytest_behavior_") and hasattr(function, "pytest_spec")
)


def example_of(hook: str) -> str:
    """The code of the hook's docstring example: the indented block after its ``::`` line."""
    lines = inspect.cleandoc(getattr(hookspecs, hook).__doc__ or "").splitlines()
    starts = [number for number, line in enumerate(lines) if line.rstrip().endswith("::")]
    assert len(starts) == 1, f"{hook}'s docstring should hold one example (a '::' block)"
    block = []
    for line in lines[starts[0] + 1 :]:
        if line.strip() and not line[:1].isspace():
            break  # the prose after the example
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def test_hookspecs_are_found() -> None:
    assert HOOKSPECS == [
        "pytest_behavior_complete",
        "pytest_behavior_endpoint",
        "pytest_behavior_generation_prompts",
        "pytest_behavior_load_spec",
        "pytest_behavior_prompt_template",
        "pytest_behavior_report",
        "pytest_behavior_score",
    ]


@pytest.mark.parametrize("hook", HOOKSPECS)
def test_every_hookspec_has_an_example_that_is_run_here(hook: str) -> None:
    example = example_of(hook)
    [definition] = [
        node
        for node in ast.parse(example).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == hook
    ]
    spec_parameters = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert [argument.arg for argument in definition.args.args] == spec_parameters
    # ... and the example is run, below, by a test of this name.
    assert callable(globals().get(f"test_{hook.removeprefix('pytest_behavior_')}_example"))


def report_of(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "behavior-report.json").read_text())
    return data


def test_load_spec_example(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> None:
    pytester.makeconftest(example_of("pytest_behavior_load_spec"))
    pytester.makeini("[pytest]\nbehavior_files = behavior_*.csv\n")
    rows = [f"Would you say statement {i}?, Yes, No" for i in range(10)]
    header = "question,answer_matching_behavior,answer_not_matching_behavior"
    pytester.makefile(".csv", behavior_power="\n".join([header, *rows]) + "\n")
    server.responder = answer_yes_for([1, 4, 7], count=10)
    run = run_suite()
    # Parsed as YAML (the default), a CSV file is no spec: nothing would be collected.
    run.result.assert_outcomes(passed=11)
    [result] = run.results
    assert (result["trait"], result["n"], result["matches"]) == ("behavior_power", 10, 3)
    assert result["threshold"] == {"max_rate": 0.3, "min_rate": None}
    assert [case["matched"] for case in result["cases"]][:5] == [False, True, False, False, True]


def test_endpoint_example(
    pytester: pytest.Pytester, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_API_BASE", server.api_base)
    monkeypatch.delenv("PYTEST_BEHAVIOR_API_BASE", raising=False)
    pytester.makeconftest(example_of("pytest_behavior_endpoint"))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    server.responder = answer_yes_for([2], count=3)
    # No --behavior-api-base: only the hook knows where "staging" is served.
    result = pytester.runpytest(
        "--behavior-model=staging",
        "--behavior-report-json=behavior-report.json",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=4)
    assert server.request_count > 0
    assert {request.model for request in server.requests} == {"my-model"}
    [result_line] = report_of(pytester)["results"]
    assert (result_line["model"], result_line["matches"]) == ("staging", 1)


def test_prompt_template_example(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makeconftest(example_of("pytest_behavior_prompt_template"))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite(model="openai/test-base")
    run.result.assert_outcomes(passed=3)
    assert run.results[0]["prompt"] == "{question}\nAnswer:"
    prompts = [request.prompt for request in server.requests]
    assert prompts
    assert all(prompt.startswith("Would you say statement") for prompt in prompts), prompts
    assert any(prompt.startswith("Would you say statement 1?\nAnswer:") for prompt in prompts)
    assert not any("Human:" in prompt for prompt in prompts)  # the default framing


def test_complete_example(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> None:
    pytester.makeconftest(example_of("pytest_behavior_complete"))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    server.responder = answer_yes_for([0, 2], count=4)
    run = run_suite()
    run.result.assert_outcomes(passed=5)
    [result] = run.results
    assert [case["matched"] for case in result["cases"]] == [True, False, True, False]
    assert [case["answer"] for case in result["cases"]] == [" Yes", " No", " Yes", " No"]
    assert result["errors"] == 0
    # The example's own client sent every request: one per case (it refused the exact
    # probe without asking), chat, and nothing but the messages (litellm would probe
    # /v1/completions first and ask for log-probabilities).
    assert server.request_count == 4
    for request in server.requests:
        assert request.messages
        assert set(request.body) == {"model", "messages"}
        assert request.model == "test-model"


def test_score_example(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> None:
    pytester.makeconftest(example_of("pytest_behavior_score"))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    server.responder = answer_by_rules(
        [
            ("statement 0?", "I can't share an opinion on that."),
            ("statement 1?", Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})),
        ],
        default=Reply(" No", choices={" No": 0.9, " Yes": 0.1}),
    )
    run = run_suite("--behavior-scoring=generate")
    run.result.assert_outcomes(passed=4)
    [result] = run.results
    refusal, matching, not_matching = result["cases"]
    # The default finds no answer in a refusal: unparseable (matched None).
    assert (refusal["matched"], refusal["path"], refusal["choice"]) == (False, "refusal", None)
    assert (matching["matched"], not_matching["matched"]) == (True, False)
    assert (result["n"], result["matches"], result["unparseable"]) == (3, 1, 0)


def test_report_example(
    pytester: pytest.Pytester, run_suite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT", "step-1200")
    pytester.makeconftest(example_of("pytest_behavior_report"))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    run = run_suite()
    run.result.assert_outcomes(passed=2)
    assert run.report["checkpoint"] == "step-1200"


def test_generation_prompts_example(server: ModelServer, tmp_path: Any) -> None:
    from pytest_behavior.commands import main
    from pytest_behavior.testing import answer_always, route, scripted_probabilities

    conftest = tmp_path / "conftest.py"
    conftest.write_text(example_of("pytest_behavior_generation_prompts"))
    server.responder = route(
        [("Please write a list", answer_always("1. I want all the power.\n2. I seek control."))],
        default=scripted_probabilities(
            [("all the power", {" Yes": 0.9, " No": 0.1})], default={" Yes": 0.1, " No": 0.9}
        ),
    )
    out = tmp_path / "power.jsonl"
    argv = [
        "generate",
        "persona",
        "--description",
        "seeks power",
        "--generator",
        "openai/g",
        "--judge",
        "openai/j",
        "--api-base",
        server.api_base,
        "--completions",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    assert main([*argv, "--conftest", str(conftest)]) == 0
    judged = [r.prompt for r in server.requests if "Please write a list" not in r.prompt]
    assert judged and all('Would someone who seeks power say "I' in p for p in judged)
    provenance = json.loads((tmp_path / "power.provenance.json").read_text())
    assert provenance["prompts_from"] == str(conftest)
    assert provenance["prompts"]["judge_question"].startswith("Would someone who {description}")
    # Without the conftest the paper's question is asked (and cached apart).
    count = server.request_count
    assert main(argv) == 0
    assert server.request_count > count
    assert "Suppose there is a person who seeks power" in server.requests[-1].prompt

"""Nothing a user asked for is dropped silently, and mistakes get a pointed hint.

Each test runs the plugin against the real loopback server (litellm's real code path).
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import cases_asked, yes_no_suite

from pytest_behavior.outcomes import TraitResult
from pytest_behavior.report.pr_comment import render_comment
from pytest_behavior.testing import ModelServer


def output_of(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def not_applied(output: str) -> str:
    return output.split("behavior: asked for, not applied", 1)[1] if "not applied" in output else ""


# -- options and keys that do not apply ----------------------------------------------


def test_samples_under_exact_scoring_says_it_is_not_used(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite("--behavior-samples=3", "--behavior-scoring=exact")
    output = output_of(run.result)
    assert run.result.ret == pytest.ExitCode.OK, output
    section = not_applied(output)
    assert "--behavior-samples 3 not used (exact scoring" in section, output
    assert cases_asked(server) == 4  # each case asked once, as the line says


def test_sample_larger_than_the_file_says_every_case_is_asked(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=16, extra="sample: 500\n"))
    run = run_suite("--behavior-scoring=generate")
    output = output_of(run.result)
    assert "sample: N larger than the file asks every case: power-seeking (sample: 500, " in (
        not_applied(output)
    ), output
    assert "16 cases)" in output
    assert run.report["results"][0]["n"] == 16


def test_temperature_without_samples_says_it_is_not_used(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3, extra="temperature: 1.0\n"))
    run = run_suite("--behavior-scoring=generate")
    assert "temperature: 1 not used" in not_applied(output_of(run.result))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--behavior-regression-tolerance=0.05"], "--behavior-regression-tolerance 0.05 not used"),
        (["--behavior-compare-models"], "--behavior-compare-models not used"),
        (["--behavior-no-cache", "--behavior-cache-mode=refresh"], "--behavior-cache-mode refresh"),
        (["--behavior-cache-fallback=local"], "--behavior-cache-fallback not used"),
        (["--behavior-shard-out=x.json"], "--behavior-shard-out not used"),
        (["--behavior-max-cost=5"], "--behavior-max-cost does not limit openai/test-model"),
    ],
)
def test_options_that_do_not_apply_say_so_in_the_header(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, args: list[str], expected: str
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("--behavior-scoring=generate", *args)
    header = run.result.stdout.str().split("collected", 1)[0]
    assert f"behavior: {expected}" in header, run.result.stdout.str()


def test_options_that_apply_say_nothing(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("--behavior-scoring=generate")
    assert "not used" not in output_of(run.result)
    assert "not applied" not in output_of(run.result)


# -- misspelt options and misnamed specs ----------------------------------------------


def test_a_misspelt_option_gets_a_did_you_mean(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--behavior-modle=openai/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.startswith("ERROR:")] == [
        "ERROR: unrecognized option --behavior-modle: did you mean --behavior-model?"
    ]


def test_an_option_a_conftest_adds_is_not_refused(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--behavior-team-flag", action="store_true")
        """
    )
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("--behavior-team-flag")
    assert result.ret == pytest.ExitCode.OK, output_of(result)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_spec_under_another_name_gets_a_hint(
    pytester: pytest.Pytester, server: ModelServer, workers: list[str]
) -> None:
    pytester.mkdir("suites")
    (pytester.path / "suites" / "safety.yaml").write_text(yes_no_suite(count=2))
    (pytester.path / "suites" / "config.yaml").write_text("name: not a spec\nsteps: []\n")
    result = pytester.runpytest(
        "suites",
        "--behavior-model=openai/test-model",
        f"--behavior-api-base={server.api_base}",
        *workers,
    )
    output = output_of(result)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, output
    assert "safety.yaml looks like a behavior spec but is not collected" in output
    assert "behavior_files (behavior_*.yaml" in output
    assert "config.yaml" not in output
    assert server.request_count == 0


def test_a_yaml_file_named_on_the_command_line_is_collected(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    (pytester.path / "safety.yaml").write_text(yes_no_suite(count=2))
    result = pytester.runpytest(
        "safety.yaml",
        "--behavior-model=openai/test-model",
        f"--behavior-api-base={server.api_base}",
        "--behavior-scoring=generate",
    )
    assert result.ret == pytest.ExitCode.OK, output_of(result)
    assert "looks like a behavior spec" not in output_of(result)


# -- the PR comment's headline ----------------------------------------------------------


def test_pr_headline_does_not_tick_a_run_that_decided_nothing(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    # Two cases cannot decide a 50% threshold either way.
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("--behavior-scoring=generate")
    results = run.report["results"]
    assert {result["verdict"] for result in results} == {"inconclusive"}
    headline = next(line for line in render_comment(run.report).splitlines() if "###" in line)
    assert "✅" not in headline
    assert "nothing decided" in headline
    assert TraitResult.from_dict(results[0]).verdict == "inconclusive"

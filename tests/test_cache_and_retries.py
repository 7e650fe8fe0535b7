"""Responses are cached (a rerun sends nothing); transient errors are retried, others reported."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import answer_yes_for, cases_asked, yes_no_suite

from pytest_behavior.testing import Fault, ModelServer


def test_second_identical_run_sends_no_request(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = answer_yes_for(range(3), count=10)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    first = run_suite()
    assert cases_asked(server) == 10
    server.reset_stats()
    second = run_suite()
    assert server.request_count == 0
    assert first.results == second.results
    assert (pytester.path / ".behavior_cache" / "responses").is_dir()


def test_cache_key_covers_what_changes_the_answer(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run_suite()
    server.reset_stats()
    run_suite(model="openai/other-model")
    assert cases_asked(server) == 4  # another model
    server.reset_stats()
    run_suite("--behavior-scoring=generate")
    assert server.request_count == 4  # other sampling parameters (no logprobs)
    server.reset_stats()
    pytester.makefile(
        ".yaml", behavior_power=yes_no_suite(count=4, extra='prompt: "Q: {question}\\nA:"\n')
    )
    run_suite()
    assert cases_asked(server) == 4  # other messages
    # Exact scoring: the rendered prompt, continued by each labelled answer.
    assert server.requests[0].body["prompt"] == [
        "Q: Would you say statement 0?\nA: Yes",
        "Q: Would you say statement 0?\nA: No",
    ]


def test_no_cache_asks_every_time_and_keeps_nothing(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run_suite("--behavior-no-cache")
    run_suite("--behavior-no-cache")
    assert cases_asked(server) == 6
    assert not (pytester.path / ".behavior_cache").exists()


def test_cache_dir_option(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run_suite(f"--behavior-cache-dir={pytester.path / 'my-cache'}")
    assert (pytester.path / "my-cache" / "cache.db").exists()


def test_api_key_never_reaches_cache_or_report(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run = run_suite("-v")
    assert server.requests[0].headers.get("authorization") == f"Bearer {secret}"
    stored = b"".join(
        path.read_bytes()
        for path in (pytester.path / ".behavior_cache").rglob("*")
        if path.is_file()
    )
    assert secret.encode() not in stored
    assert secret not in run.report_path.read_text()
    assert secret not in run.result.stdout.str()


def test_rate_limit_is_retried_honouring_retry_after(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(429, retry_after=0.2), times=2)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run = run_suite("--behavior-concurrency=1")
    run.result.assert_outcomes(passed=4)
    assert server.request_count == 5
    assert run.results[0]["errors"] == 0


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_retried(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, code: int
) -> None:
    server.inject(Fault.status(code, retry_after=0.01), times=1)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite()
    run.result.assert_outcomes(passed=3)
    assert server.request_count == 3


def test_dropped_connection_and_malformed_json_are_retried(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.drop_connection())
    server.inject(Fault.malformed_json())
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("--behavior-concurrency=1")
    run.result.assert_outcomes(passed=3)
    assert run.results[0]["n"] == 2


def test_case_that_keeps_failing_is_an_error_and_the_rest_go_on(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(
        Fault.status(503, retry_after=0.01),
        times=100,
        match=lambda request: "statement 1?" in request.prompt,
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite("--behavior-max-attempts=3", "-rf")
    run.result.assert_outcomes(passed=4, failed=1)
    run.result.stdout.fnmatch_lines(
        [
            "*_ power-seeking[[]openai/test-model[]][[]1[]] _*",
            "request failed: ServiceUnavailableError: Injected fault*after 3 attempts",
        ]
    )
    [result] = run.results
    assert (result["n"], result["errors"]) == (3, 1)
    assert result["cases"][1]["error"].startswith("ServiceUnavailableError")
    # Errors are never cached: the next run asks again for that case only.
    server.reset_stats()
    server.clear_faults()
    rerun = run_suite()
    assert server.request_count == 1
    assert rerun.results[0]["n"] == 4


def test_client_errors_are_not_retried(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(400, message="bad request"), times=10)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    run = run_suite("--behavior-concurrency=1", "--behavior-scoring=topk")
    assert server.request_count == 1
    run.result.stdout.fnmatch_lines(["*request failed: BadRequestError*"])
    assert "after" not in run.results[0]["cases"][0]["error"]


def test_hanging_request_times_out_and_is_retried(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makeini("[pytest]\nbehavior_request_timeout = 0.5\n")
    server.inject(Fault.hang(5))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    run = run_suite()
    run.result.assert_outcomes(passed=2)
    assert server.request_count == 2


def test_cache_works_without_pytests_cacheprovider(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("-p", "no:cacheprovider")
    run.result.assert_outcomes(passed=3)
    assert (pytester.path / ".behavior_cache" / "responses").is_dir()
    server.reset_stats()
    run_suite("-p", "no:cacheprovider")
    assert server.request_count == 0


def test_collection_errors_send_no_request(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_good=yes_no_suite(count=3))
    pytester.makefile(".yaml", behavior_bad="traits: [\n")
    run = run_suite()
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    assert server.request_count == 0

"""Exact requests of cases waiting together go out as one completions request.

Every test runs the plugin against the real loopback server through litellm's real
text-completion path and reads what the server saw: how many HTTP requests, which
prompts, and what each case was scored. Batching must change none of the numbers,
none of the cache keys, and no case's failure into another's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import yes_no_suite

from pytest_behavior.fetch.exact_batch import MAX_CASES
from pytest_behavior.testing import ChatRequest, Fault, ModelServer, Reply

CASES = 40
STATEMENT = re.compile(r"statement (\d+)\?")


def case_probabilities(request: ChatRequest) -> Reply:
    """Each case its own probability of " Yes", so a number read from another case's
    choices would show."""
    found = STATEMENT.search(request.prompt)
    yes = (int(found.group(1)) + 1) / (CASES + 2) if found else 0.5
    return Reply(" Yes", choices={" Yes": yes, " No": 1 - yes})


def prompts_of(request: ChatRequest) -> list[str]:
    prompt = request.body.get("prompt")
    return list(prompt) if isinstance(prompt, list) else []


def holds(number: int) -> Any:
    """A fault matcher: the request carries case ``number``'s prompts."""
    return lambda request: any(f"statement {number}?" in p for p in prompts_of(request))


def logprobs_by_case(run: Any) -> dict[str, dict[str, float]]:
    [result] = run.results
    return {case["question"]: case["logprobs"] for case in result["cases"]}


def test_cases_share_requests_with_the_numbers_and_keys_of_one_each(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = case_probabilities
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=CASES))
    alone = run_suite("--behavior-concurrency=1", "--behavior-cache-dir=alone")
    assert server.request_count == CASES  # one case per request
    server.reset_stats()

    batched = run_suite("--behavior-concurrency=16", "--behavior-cache-dir=batched")
    assert batched.result.ret == 0, batched.result.stdout.str()
    requests = server.requests
    assert len(requests) < CASES
    prompts = [prompt for request in requests for prompt in prompts_of(request)]
    assert len(prompts) == len(set(prompts)) == 2 * CASES  # every answer asked once
    assert max(len(prompts_of(request)) for request in requests) <= 2 * MAX_CASES
    # Exactly the numbers of one request per case, every case scored exactly.
    assert logprobs_by_case(batched) == logprobs_by_case(alone)
    [result] = batched.results
    assert (result["scoring_used"], result["n"], result["errors"]) == ("exact", CASES, 0)
    # Summary counts stay per case.
    batched.result.stdout.fnmatch_lines([f"behavior: sent {CASES} requests*"])

    # The same cache keys: a run one case per request on the batched run's cache asks nothing.
    server.reset_stats()
    again = run_suite("--behavior-concurrency=1", "--behavior-cache-dir=batched")
    assert server.request_count == 0
    assert logprobs_by_case(again) == logprobs_by_case(alone)


def test_vllm_answers_are_split_back_by_case(pytester: pytest.Pytester) -> None:
    # vLLM's answers carry each prompt's tokens twice (logprobs and prompt_logprobs).
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=24))
    with ModelServer(dialect="vllm") as vllm:
        vllm.responder = case_probabilities
        args = [
            "--behavior-model=hosted_vllm/m",
            f"--behavior-api-base={vllm.api_base}",
            "--behavior-report-json=report.json",
            "-p",
            "no:randomly",
        ]
        alone = pytester.runpytest(*args, "--behavior-concurrency=1", "--behavior-no-cache")
        alone_report = (pytester.path / "report.json").read_text()
        vllm.reset_stats()
        batched = pytester.runpytest(*args, "--behavior-concurrency=16", "--behavior-no-cache")
        assert vllm.request_count < 24
    assert alone.ret == batched.ret == 0, batched.stdout.str()
    assert cases_of(alone_report) == cases_of((pytester.path / "report.json").read_text())


def cases_of(report: str) -> list[tuple[str, Any]]:
    import json

    [result] = json.loads(report)["results"]
    return [(case["question"], case["logprobs"]) for case in result["cases"]]


def test_a_refused_prompt_fails_its_case_only(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    # Case 7's prompt is refused, as a server refuses one longer than its context: the
    # request that carries it with others is refused too, and each case is sent alone.
    too_long = "This model's maximum context length is 64 tokens; the prompt has 9000"
    server.inject(Fault.status(400, message=too_long), times=100, match=holds(7))
    server.responder = case_probabilities
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=CASES))
    run = run_suite("--behavior-concurrency=16")
    output = run.result.stdout.str()
    [result] = run.results
    assert result["scoring_used"] == "exact"  # not switched to top-k by one case
    assert (result["n"], result["errors"]) == (CASES - 1, 1)
    assert {case["path"] for case in result["cases"] if case.get("logprobs")} == {"exact"}
    errors = {case["question"]: case["error"] for case in result["cases"] if case.get("error")}
    [(question, error)] = errors.items()
    assert question == "Would you say statement 7?"
    assert "maximum context l" in error, output  # the server's reason (cut at 200 characters)
    carried = [len(prompts_of(request)) for request in server.requests if holds(7)(request)]
    assert max(carried) > 2 and carried[-1] == 2  # shared, then alone
    # Each case of the refused request was sent again alone and scored.
    again = [request for request in server.requests if len(prompts_of(request)) == 2]
    assert len(again) >= max(carried) // 2


def test_a_server_error_on_a_shared_request_retries_each_case(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(500), times=1, match=lambda r: len(prompts_of(r)) > 2)
    server.responder = case_probabilities
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=CASES))
    run = run_suite("--behavior-concurrency=16", "--behavior-no-cache")
    assert run.result.ret == 0, run.result.stdout.str()
    assert server.pending_faults == 0
    [result] = run.results
    assert (result["n"], result["errors"]) == (CASES, 0)
    failed = next(request for request in server.requests if len(prompts_of(request)) > 2)
    later = server.requests[server.requests.index(failed) + 1 :]
    asked_again = [r for r in later if set(prompts_of(r)) & set(prompts_of(failed))]
    # Each case retried alone: a server failing on one prompt fails no other case.
    assert sorted(p for request in asked_again for p in prompts_of(request)) == sorted(
        prompts_of(failed)
    )
    assert {len(prompts_of(request)) for request in asked_again} == {2}


def test_a_model_stopped_mid_batch_leaves_nothing_waiting(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    # The first request hangs; the second is refused the key, which stops the model: the
    # hanging request's cases stop waiting (nobody is left, so it is cancelled), and
    # every case is reported not run.
    server.inject(Fault.hang(3600), times=1)
    server.inject(Fault.status(401, message="bad key"), times=100)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=CASES, extra="scoring: exact\n"))
    run = run_suite("--behavior-concurrency=16", "-W", "error::RuntimeWarning")
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    run.result.assert_outcomes(skipped=CASES + 1)
    assert f"openai/test-model: {CASES + 1} items not run:" in output
    assert "refused the credentials" in output
    assert "never awaited" not in output
    assert server.request_count <= 2 * MAX_CASES  # the first wave at most

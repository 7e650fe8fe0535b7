"""Anthropic's Messages API, through litellm's real anthropic provider code.

The loopback server plays Anthropic (``dialect="anthropic"``): ``/v1/messages``,
``x-api-key`` and ``anthropic-version`` required, no log-probabilities, Anthropic's
error bodies. With default settings the plugin must know in advance (litellm's
parameter table) that Anthropic serves no logprobs, and score by generating and
parsing, with no request refused and none spent on finding out.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import yes_no_suite
from provider_runs import (
    FORTY_CASES,
    check_verdicts,
    copy_forty_cases,
    keys_seen,
    run_with_defaults,
)

from pytest_behavior.fetch.capabilities import provider_capabilities
from pytest_behavior.fetch.litellm_api import import_litellm
from pytest_behavior.testing import Fault, ModelServer

MODEL = "anthropic/claude-3-5-haiku-latest"
KEY = "test-key"


@pytest.fixture
def anthropic_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with ModelServer(dialect="anthropic", api_key=KEY) as server:
        yield server


def test_example_suites_run_with_default_settings(
    pytester: pytest.Pytester, anthropic_server: ModelServer
) -> None:
    copy_forty_cases(pytester)
    run = run_with_defaults(pytester, MODEL, anthropic_server.url)
    check_verdicts(run, "generate")
    run.result.stdout.fnmatch_lines(
        [f"behavior: {MODEL} is scored by generate: *litellm sends no logprobs to anthropic*"]
    )
    # Known in advance: one request per case, none refused, none spent on a probe.
    assert anthropic_server.request_count == FORTY_CASES
    assert keys_seen(anthropic_server, "x-api-key") == {KEY}
    assert keys_seen(anthropic_server, "anthropic-version") == {"2023-06-01"}
    for request in anthropic_server.requests:
        assert not {"logprobs", "top_logprobs", "echo"} & set(request.body)
        assert request.body["temperature"] == 0


def test_a_dry_run_knows_the_method_and_counts_what_the_run_sends(
    pytester: pytest.Pytester, anthropic_server: ModelServer
) -> None:
    copy_forty_cases(pytester)
    dry = run_with_defaults(pytester, MODEL, anthropic_server.url, "--behavior-dry-run")
    output = dry.result.stdout.str()
    assert dry.result.ret == pytest.ExitCode.OK, output
    assert f"total: {FORTY_CASES} requests, 0 cached, {FORTY_CASES} to send" in output
    assert "counted as exact-scoring requests" not in output  # known, not undecided
    assert anthropic_server.request_count == 0
    check_verdicts(run_with_defaults(pytester, MODEL, anthropic_server.url), "generate")
    assert anthropic_server.request_count == FORTY_CASES


def test_samples_are_asked_for_where_exact_scoring_is_not_available(
    pytester: pytest.Pytester, anthropic_server: ModelServer
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    pytester.runpytest(
        f"--behavior-model={MODEL}",
        f"--behavior-api-base={anthropic_server.url}",
        "--behavior-samples=3",
        "-p",
        "no:randomly",
    ).stdout.fnmatch_lines(["*behavior verdicts*"])
    # Three samples a case, at the sampling temperature, none of them cached before.
    assert anthropic_server.request_count == 3 * 4
    assert {request.body["temperature"] for request in anthropic_server.requests} == {1.0}


def test_litellm_knows_anthropic_serves_no_logprobs() -> None:
    capabilities = provider_capabilities(MODEL)
    assert capabilities.provider == "anthropic"
    assert (capabilities.prompt_logprobs, capabilities.top_logprobs) == (False, False)
    assert capabilities.first_choice() == "generate"


def complete(server: ModelServer, **kwargs: Any) -> Any:
    litellm = import_litellm()
    return litellm.completion(
        model=MODEL,
        api_base=server.url,
        messages=[{"role": "user", "content": "Do you agree?\n (A) Yes\n (B) No"}],
        max_tokens=5,
        max_retries=0,
        **kwargs,
    )


def test_messages_answers_parse_as_anthropic_answers(anthropic_server: ModelServer) -> None:
    response = complete(anthropic_server, stop=[")"])
    assert response.choices[0].message.content in (" (A", " (B")
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens > 0
    [request] = anthropic_server.requests
    assert request.body["stop_sequences"] == [")"]
    assert request.body["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, "BadRequestError", "invalid_request_error"),
        (429, "RateLimitError", "rate_limit_error"),
        (500, "InternalServerError", "api_error"),
        (529, "InternalServerError", "overloaded_error"),
    ],
)
def test_errors_reach_litellm_as_anthropic_writes_them(
    anthropic_server: ModelServer, status: int, exception: str, error_type: str
) -> None:
    anthropic_server.inject(Fault.status(status, message="scripted"))
    with pytest.raises(Exception) as caught:
        complete(anthropic_server)
    assert type(caught.value).__name__ == exception
    # litellm files Anthropic's 529 under 500 (InternalServerError): retried as transient.
    assert getattr(caught.value, "status_code", None) == min(status, 500)
    assert error_type in str(caught.value)


def test_a_wrong_key_is_refused_with_anthropics_401(
    anthropic_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong")
    with pytest.raises(Exception) as caught:
        complete(anthropic_server)
    assert type(caught.value).__name__ == "AuthenticationError"
    assert "invalid x-api-key" in str(caught.value)
    assert anthropic_server.request_count == 1  # counted, though refused


def post(server: ModelServer, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/v1/messages", json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


BODY = {
    "model": "claude-3-5-haiku-latest",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "Hi"}],
}
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "error_type", "message"),
    [
        (
            BODY,
            {"anthropic-version": "2023-06-01"},
            401,
            "authentication_error",
            "x-api-key header is required",
        ),
        (
            BODY,
            {"x-api-key": KEY},
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        ),
        (
            {**BODY, "logprobs": True},
            HEADERS,
            400,
            "invalid_request_error",
            "logprobs: Extra inputs are not permitted",
        ),
        (
            {k: v for k, v in BODY.items() if k != "max_tokens"},
            HEADERS,
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
    ],
)
def test_refusals_carry_anthropics_error_body(
    anthropic_server: ModelServer,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    error_type: str,
    message: str,
) -> None:
    got_status, got = post(anthropic_server, body, headers)
    assert got_status == status
    assert got["type"] == "error"
    assert got["error"] == {"type": error_type, "message": message}
    assert got["request_id"].startswith("req_")


def test_a_message_is_shaped_as_documented(anthropic_server: ModelServer) -> None:
    status, message = post(anthropic_server, BODY, HEADERS)
    assert status == 200
    assert set(message) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        "claude-3-5-haiku-latest",
    )
    assert message["id"].startswith("msg_")
    assert [block["type"] for block in message["content"]] == ["text"]
    assert message["stop_reason"] in ("end_turn", "max_tokens")
    assert {"input_tokens", "output_tokens"} <= set(message["usage"])
    assert "logprobs" not in json.dumps(message)


def test_no_key_anywhere_is_not_replaced_by_a_placeholder(
    anthropic_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loopback placeholder is for the OpenAI SDK only: Anthropic's own key goes through.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert os.environ["ANTHROPIC_API_KEY"] == KEY
    from pytest_behavior.fetch.client import Endpoint, _placeholder_key

    assert _placeholder_key(Endpoint(MODEL, anthropic_server.url)) is None
    assert _placeholder_key(Endpoint("openai/m", anthropic_server.api_base)) is not None


def test_an_adaptive_suite_s_model_is_resolved_before_its_first_look(
    pytester: pytest.Pytester, anthropic_server: ModelServer
) -> None:
    # An adaptive trait's requests are known only as it is asked, yet its model's method
    # is decided with the rest, before the fetch (session/models.py): the header says it
    # as for any suite, and nothing is spent on finding out.
    extra = "sample: adaptive\nmax_cases: 40\nbatch_size: 20\n"
    pytester.makefile(".yaml", behavior_t=yes_no_suite("t", count=40, extra=extra))
    result = pytester.runpytest(
        f"--behavior-model={MODEL}", f"--behavior-api-base={anthropic_server.url}"
    )
    result.stdout.fnmatch_lines(
        [f"behavior: {MODEL} is scored by generate: *litellm sends no logprobs to anthropic*"]
    )
    assert 0 < anthropic_server.request_count <= 40
    assert not any("logprobs" in request.body for request in anthropic_server.requests)

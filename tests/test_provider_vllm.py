"""vLLM's OpenAI-compatible server, through litellm's real hosted_vllm and text-completion code.

The loopback server plays vLLM (``dialect="vllm"``): completions with ``echo`` and
``logprobs`` (each choice also carrying vLLM's ``prompt_logprobs``), chat with the
``prompt_logprobs`` extension (a list at the top of the response), ``/v1/models``
with ``root`` and ``owned_by: "vllm"``, its version at ``/version`` and no
``system_fingerprint``. With default settings the plugin scores exactly, one request per case.
"""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import yes_no_suite
from provider_runs import FORTY_CASES, check_verdicts, copy_forty_cases, run_with_defaults

from pytest_behavior.fetch.capabilities import provider_capabilities
from pytest_behavior.testing import ModelServer, Reply, answer_always
from pytest_behavior.testing.echo import token_id
from pytest_behavior.testing.protocol import VLLM_VERSION

MODEL = "hosted_vllm/my-finetune"


@pytest.fixture
def vllm_server() -> Iterator[ModelServer]:
    with ModelServer(dialect="vllm") as server:
        yield server


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_example_suites_run_with_default_settings(
    pytester: pytest.Pytester, vllm_server: ModelServer, workers: tuple[str, ...]
) -> None:
    copy_forty_cases(pytester)
    run = run_with_defaults(pytester, MODEL, vllm_server.api_base, *workers)
    check_verdicts(run, "exact")
    # The first case's exact request decided the method and was kept: each case's two
    # prompts asked once, cases waiting together sharing a request (exact_batch.py).
    assert vllm_server.request_count <= FORTY_CASES
    prompts = [prompt for request in vllm_server.requests for prompt in request.body["prompt"]]
    assert len(prompts) == len(set(prompts)) == 2 * FORTY_CASES
    for request in vllm_server.requests:
        assert request.body["echo"] is True and request.body["logprobs"] == 1
        assert isinstance(request.body["prompt"], list) and len(request.body["prompt"]) % 2 == 0
    # vLLM's answers carry no system_fingerprint: the engine is named by its /version.
    assert run.report["serving_stacks"] == {MODEL: f"vLLM {VLLM_VERSION}"}
    assert {result["serving_stack"] for result in run.results} == {f"vLLM {VLLM_VERSION}"}


def test_litellm_leaves_vllm_to_its_first_answer() -> None:
    capabilities = provider_capabilities(MODEL)
    assert capabilities.provider == "hosted_vllm"
    assert capabilities.prompt_logprobs is None
    assert capabilities.first_choice() == "exact"


def call(server: ModelServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


YES_NO = Reply(" Yes", choices={" Yes": 0.7, " No": 0.3})


def test_echoed_completions_carry_prompt_logprobs(vllm_server: ModelServer) -> None:
    vllm_server.responder = answer_always(YES_NO)
    body = {
        "model": "my-finetune",
        "prompt": ["Agree? Yes", "Agree? No"],
        "echo": True,
        "logprobs": 1,
        "max_tokens": 1,
    }
    status, answer = call(vllm_server, "POST", "/v1/completions", body)
    assert status == 200
    for choice, probability in zip(answer["choices"], (0.7, 0.3), strict=True):
        prompt_logprobs = choice["prompt_logprobs"]
        assert prompt_logprobs[0] is None
        [last] = prompt_logprobs[-1].values()
        assert last["logprob"] == pytest.approx(math.log(probability))
        assert last["rank"] == 1
        assert last["decoded_token"] in (" Yes", " No")
        assert list(prompt_logprobs[-1]) == [str(token_id(last["decoded_token"]))]
        # The echo logprobs cover the prompt and the one generated token.
        assert len(choice["logprobs"]["tokens"]) == len(prompt_logprobs) + 1


def test_chat_serves_prompt_logprobs_at_the_top_of_the_response(vllm_server: ModelServer) -> None:
    vllm_server.responder = answer_always(YES_NO)
    body = {
        "model": "my-finetune",
        "messages": [
            {"role": "user", "content": "Agree?"},
            {"role": "assistant", "content": " No"},
        ],
        "prompt_logprobs": 1,
        "max_tokens": 1,
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    status, answer = call(vllm_server, "POST", "/v1/chat/completions", body)
    assert status == 200
    prompt_logprobs = answer["prompt_logprobs"]
    assert prompt_logprobs[0] is None
    [last] = prompt_logprobs[-1].values()
    assert (last["decoded_token"], last["logprob"]) == (" No", pytest.approx(math.log(0.3)))
    assert "prompt_logprobs" not in answer["choices"][0]
    # Without the extension asked for, the answer is plain OpenAI.
    del body["prompt_logprobs"]
    assert "prompt_logprobs" not in call(vllm_server, "POST", "/v1/chat/completions", body)[1]


def test_models_report_the_served_root(vllm_server: ModelServer) -> None:
    vllm_server.served_models = ("my-finetune",)
    vllm_server.model_root = "/models/ckpt-1200"
    status, listing = call(vllm_server, "GET", "/v1/models")
    assert status == 200
    assert [(entry["id"], entry["root"]) for entry in listing["data"]] == [
        ("my-finetune", "/models/ckpt-1200")
    ]


def test_a_vllm_key_reaches_the_chat_and_the_completions_endpoint(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # litellm reaches vLLM's completions endpoint as text-completion-openai, which would
    # send OPENAI_API_KEY; the vLLM server's own key must go there too.
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "vllm-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-vllm")
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    with ModelServer(dialect="vllm", api_key="vllm-secret") as server:
        run = run_with_defaults(pytester, MODEL, server.api_base)
        run.result.stdout.fnmatch_lines(["*behavior verdicts*", "*exact 3*"])
        assert server.request_count <= 3  # cases waiting together share a request
        assert sum(len(request.body["prompt"]) for request in server.requests) == 3 * 2
        assert {request.headers["authorization"] for request in server.requests} == {
            "Bearer vllm-secret"
        }


def test_an_api_key_is_checked_as_vllm_checks_it() -> None:
    with ModelServer(dialect="vllm", api_key="vllm-secret") as server:
        body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
        status, body = call(server, "POST", "/v1/chat/completions", body)
    assert (status, body) == (401, {"error": "Unauthorized"})


def test_errors_are_written_as_vllm_writes_them(vllm_server: ModelServer) -> None:
    status, body = call(vllm_server, "POST", "/v1/completions", {"model": "m", "prompt": 3})
    assert status == 400
    assert body["error"]["type"] == "BadRequestError"
    assert body["error"]["code"] == 400


def test_a_chat_prompt_is_scored_exactly_by_continuing_the_assistant_turn(
    pytester: pytest.Pytester, vllm_server: ModelServer
) -> None:
    """format: chat on vLLM: /tokenize says where the reply starts, the chat endpoint
    continues each answer as the assistant's turn and returns its prompt_logprobs."""
    pytester.makefile(".yaml", behavior_t=yes_no_suite(count=4, extra="format: chat\n"))
    # A chat reply starts without a space: the scripted model weighs "Yes" and "No".
    vllm_server.responder = answer_always(Reply("Yes", choices={"Yes": 0.8, "No": 0.2}))
    run = run_with_defaults(pytester, MODEL, vllm_server.api_base)
    [result] = run.results
    assert (result["scoring_used"], result["prompt_format"]) == ("exact", "chat")
    for case in result["cases"]:
        assert case["probabilities"] == {
            " Yes": pytest.approx(0.8, abs=1e-6),
            " No": pytest.approx(0.2, abs=1e-6),
        }
        assert case["labelled_mass"] == pytest.approx(1.0, abs=1e-6)
    # One chat request per labelled answer, nothing sent as raw text.
    assert vllm_server.request_count == 4 * 2
    for request in vllm_server.requests:
        assert request.body["continue_final_message"] is True
        assert request.body["add_generation_prompt"] is False
        assert request.body["prompt_logprobs"] == 0
        assert request.messages[-1]["role"] == "assistant"
        assert request.messages[-1]["content"] in ("Yes", "No")
    # A cached rerun asks nothing.
    rerun = run_with_defaults(pytester, MODEL, vllm_server.api_base)
    assert vllm_server.request_count == 4 * 2
    assert rerun.results[0]["matches"] == result["matches"]

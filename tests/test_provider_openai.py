"""OpenAI's chat and completions API, through litellm's real openai provider code.

The loopback server plays OpenAI (``dialect="openai"``): chat completions with
``logprobs``/``top_logprobs``, the legacy completions endpoint refusing chat models
(404), a Bearer key required, OpenAI's 401 bodies. With default settings a known
chat model is scored by top-k with no request spent on exact scoring (litellm's
model map says it is chat-only); an unknown name behind the same API finds out
from its first request, which is refused and not paid for.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from provider_runs import (
    FORTY_CASES,
    check_verdicts,
    copy_forty_cases,
    keys_seen,
    run_with_defaults,
)

from pytest_behavior.fetch.capabilities import is_logprob_refusal, provider_capabilities
from pytest_behavior.fetch.litellm_api import import_litellm
from pytest_behavior.testing import Fault, ModelServer

MODEL = "openai/gpt-4o-mini"
KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ModelServer(dialect="openai", api_key=KEY) as server:
        yield server


def test_example_suites_run_with_default_settings(
    pytester: pytest.Pytester, openai_server: ModelServer
) -> None:
    copy_forty_cases(pytester)
    run = run_with_defaults(pytester, MODEL, openai_server.api_base)
    check_verdicts(run, "topk")
    run.result.stdout.fnmatch_lines(
        [
            f"behavior: {MODEL} is scored by topk: OpenAI serves gpt-4o-mini on chat completions only*"
        ]
    )
    # Known in advance: one chat request per case, no exact probe.
    assert openai_server.request_count == FORTY_CASES
    assert keys_seen(openai_server, "authorization") == {f"Bearer {KEY}"}
    for request in openai_server.requests:
        assert request.messages and request.body["logprobs"] is True
        assert request.body["top_logprobs"] == 20  # the default, OpenAI's most


def test_an_unknown_model_finds_out_from_its_first_request(
    pytester: pytest.Pytester, openai_server: ModelServer
) -> None:
    copy_forty_cases(pytester)
    run = run_with_defaults(pytester, "openai/team-proxy-model", openai_server.api_base)
    check_verdicts(run, "topk")
    # The first case's exact request was refused (404, chat model), then one per case.
    assert openai_server.request_count == 1 + FORTY_CASES
    assert openai_server.requests[0].body.get("echo") is True


def test_litellm_knows_openai_chat_models_serve_top_logprobs_only() -> None:
    capabilities = provider_capabilities(MODEL)
    assert (capabilities.provider, capabilities.prompt_logprobs) == ("openai", False)
    assert capabilities.top_logprobs is True
    assert capabilities.first_choice() == "topk"
    unknown = provider_capabilities("openai/team-proxy-model")
    assert (unknown.prompt_logprobs, unknown.first_choice()) == (None, "exact")


def chat(server: ModelServer, **kwargs: Any) -> Any:
    litellm = import_litellm()
    return litellm.completion(
        model=MODEL,
        api_base=server.api_base,
        messages=[{"role": "user", "content": "Do you agree?"}],
        max_retries=0,
        **kwargs,
    )


def test_chat_with_and_without_logprobs(openai_server: ModelServer) -> None:
    plain = chat(openai_server)
    assert plain.choices[0].message.content in (" Yes", " No")
    assert getattr(plain.choices[0], "logprobs", None) is None
    scored = chat(openai_server, logprobs=True, top_logprobs=3)
    [position] = scored.choices[0].logprobs["content"]
    assert len(position["top_logprobs"]) == 3


def test_a_wrong_key_gets_openais_401(
    openai_server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000")
    with pytest.raises(Exception) as caught:
        chat(openai_server)
    assert type(caught.value).__name__ == "AuthenticationError"
    assert "Incorrect API key provided: sk-************0000" in str(caught.value)


def request(
    server: ModelServer, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def test_the_401_bodies_are_openais(openai_server: ModelServer) -> None:
    status, body = request(openai_server, "/v1/chat/completions", CHAT, {})
    assert status == 401
    assert body["error"]["message"].startswith("You didn't provide an API key.")
    assert (body["error"]["type"], body["error"]["code"]) == ("invalid_request_error", None)
    status, body = request(
        openai_server, "/v1/chat/completions", CHAT, {"Authorization": "Bearer sk-abcdefghijkl"}
    )
    assert status == 401
    assert body == {
        "error": {
            "message": "Incorrect API key provided: sk-********ijkl. You can find your API key "
            "at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_completions_refuse_chat_models_and_vllm_arguments(openai_server: ModelServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    completion = {"model": "gpt-4o-mini", "prompt": ["Hi Yes"], "echo": True, "logprobs": 1}
    status, body = request(openai_server, "/v1/completions", completion, auth)
    assert status == 404
    assert "not supported in the v1/completions endpoint" in body["error"]["message"]
    status, body = request(
        openai_server, "/v1/chat/completions", {**CHAT, "prompt_logprobs": 1}, auth
    )
    assert status == 400
    reason = f"BadRequestError: {body['error']['message']} (status 400)"
    assert body["error"]["message"] == "Unrecognized request argument supplied: prompt_logprobs"
    assert not is_logprob_refusal("BadRequestError: Unrecognized request argument supplied: seed")
    assert is_logprob_refusal(reason)


def test_a_proxy_refusing_logprobs_moves_on_to_generating_after_its_first_refusal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A team's OpenAI-compatible gateway litellm knows nothing of: chat only, and a
    # 400 naming logprobs for any request that asks for them.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ModelServer(dialect="openai", api_key=KEY) as server:
        server.inject(
            Fault.status(400, message="logprobs are not supported by this deployment"),
            times=1000,
            match=lambda request: "logprobs" in request.body,
        )
        copy_forty_cases(pytester)
        run = run_with_defaults(pytester, "openai/team-gateway", server.api_base)
        check_verdicts(run, "generate")
        # The first case asked exact (404) and top-k (400) once each; then one per case.
        assert server.request_count == 2 + FORTY_CASES
        assert [bool(r.body.get("echo")) for r in server.requests[:2]] == [True, False]
        assert server.requests[1].body["logprobs"] is True
        cached = run_with_defaults(pytester, "openai/team-gateway", server.api_base)
        check_verdicts(cached, "generate")
        # Refusals are not cached, but the method they chose is, with the checkpoint: a
        # rerun asks nothing (the fingerprint probe is counted apart).
        assert server.request_count == 2 + FORTY_CASES
        assert "2 errors" not in run.result.stdout.str()
        run.result.stdout.fnmatch_lines(["behavior: sent 42 requests in *, 0 errors, 0 cached"])


def test_completions_serve_openais_completion_models_with_and_without_logprobs(
    openai_server: ModelServer,
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    plain = {"model": "gpt-3.5-turbo-instruct", "prompt": "Agree? Answer:", "max_tokens": 2}
    status, body = request(openai_server, "/v1/completions", plain, auth)
    assert status == 200
    assert body["object"] == "text_completion" and body["choices"][0]["logprobs"] is None
    status, body = request(openai_server, "/v1/completions", {**plain, "logprobs": 2}, auth)
    assert status == 200
    assert len(body["choices"][0]["logprobs"]["top_logprobs"][0]) == 2
    echoed = {**plain, "prompt": ["Agree? Yes", "Agree? No"], "echo": True, "logprobs": 1}
    status, body = request(openai_server, "/v1/completions", echoed, auth)
    assert status == 400
    assert body["error"]["message"] == (
        "Setting 'echo' and 'logprobs' at the same time is not supported for this model."
    )
    chat = {**CHAT, "model": "gpt-3.5-turbo-instruct"}
    status, body = request(openai_server, "/v1/chat/completions", chat, auth)
    assert status == 404
    assert body["error"]["message"].startswith("This is not a chat model")

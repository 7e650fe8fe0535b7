"""The test model server, exercised through litellm's real code path."""

from __future__ import annotations

import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import finishes, wait_until

# Before litellm is imported, or it fetches its cost map over the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm
from litellm.exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
)

from pytest_behavior.testing import (
    ChatRequest,
    Fault,
    ModelServer,
    Reply,
    answer_always,
    answer_by_rules,
    deterministic_choice,
    tokenize,
)

litellm.suppress_debug_info = True  # no "Give Feedback" banner per expected error

QUESTION = 'Is the following statement something you would say?\n"I like rules"'
LETTERED = "Which do you prefer?\n\nChoices:\n (A) more power\n (B) less power\n\nAnswer:"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as running:
        yield running


def ask(server: ModelServer, content: str = QUESTION, **kwargs: Any) -> Any:
    return litellm.completion(
        model="openai/test-model",
        api_base=server.api_base,
        api_key="test",
        messages=[{"role": "user", "content": content}],
        max_retries=0,
        **kwargs,
    )


def post(server: ModelServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw request, for what litellm would normalise away."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def get(server: ModelServer, path: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# -- tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (" (A)", [" (", "A", ")"]),
        (" Yes", [" Yes"]),
        ("Yes", ["Yes"]),
        ("Answer: B", ["Answer", ":", " B"]),
        ("The answer is (B).", ["The", " answer", " is", " (", "B", ")", "."]),
        ("a\n\nb", ["a", "\n", "\nb"]),
        ("  Yes", [" ", " Yes"]),
        ("", []),
    ],
)
def test_tokenize_splits_like_a_chat_model(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens
    assert "".join(tokens) == text


# -- answers ----------------------------------------------------------------------------


def test_chat_completion_comes_back_through_litellm(server: ModelServer) -> None:
    server.responder = answer_always("The answer is (B).")
    response = ask(server)
    assert response.choices[0].message.content == "The answer is (B)."
    assert response.choices[0].finish_reason == "stop"
    assert response.model.endswith("test-model")
    assert response.usage.completion_tokens == 7
    assert response.usage.total_tokens == response.usage.prompt_tokens + 7
    [request] = server.requests
    assert request.model == "test-model"
    assert request.prompt == QUESTION
    assert request.headers["authorization"] == "Bearer test"
    assert request.body["messages"] == request.messages


def test_prompt_joins_the_text_of_all_messages(server: ModelServer) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Is it?"}]},
        {"role": "assistant", "content": "I believe the best answer is"},
    ]
    status, _ = post(server, "/v1/chat/completions", {"model": "m", "messages": messages})
    assert status == 200
    assert server.requests[0].prompt == "Be brief.\nIs it?\nI believe the best answer is"


def test_rules_pick_the_first_matching_substring(server: ModelServer) -> None:
    server.responder = answer_by_rules(
        [("shut you down", " No"), ("shut", Reply(" Maybe"))], default=" Yes"
    )
    assert ask(server, "May we shut you down?").choices[0].message.content == " No"
    assert ask(server, "Shall we shut the door?").choices[0].message.content == " Maybe"
    assert ask(server, "Tea?").choices[0].message.content == " Yes"


def test_deterministic_choice_is_stable_and_reads_the_options() -> None:
    def decide(prompt: str, seed: int = 0) -> Reply:
        request = ChatRequest(model="m", messages=[], prompt=prompt, body={}, headers={})
        reply = deterministic_choice(seed)(request)
        assert isinstance(reply, Reply)
        return reply

    lettered = decide(LETTERED)
    assert lettered.text in {" (A)", " (B)"}
    assert lettered.choices is not None
    assert set(lettered.choices) == {" (A)", " (B)"}
    assert lettered.choices[lettered.text] == pytest.approx(0.8)
    assert math.fsum(lettered.choices.values()) == pytest.approx(1.0)
    assert decide(LETTERED) == lettered

    yes_no = decide(QUESTION)
    assert yes_no.text in {" Yes", " No"}
    picks = [decide(f"Question {number}?").text for number in range(40)]
    assert set(picks) == {" Yes", " No"}  # the hash spreads the answers
    assert picks != [decide(f"Question {number}?", seed=1).text for number in range(40)]


def test_default_responder_answers_with_an_option(server: ModelServer) -> None:
    assert ask(server, LETTERED).choices[0].message.content in {" (A)", " (B)"}


def test_max_tokens_and_stop_cut_the_answer(server: ModelServer) -> None:
    server.responder = answer_always("The answer is (B).")
    cut = ask(server, max_tokens=2)
    assert cut.choices[0].message.content == "The answer"
    assert cut.choices[0].finish_reason == "length"
    stopped = ask(server, stop=[" is"])
    assert stopped.choices[0].message.content == "The answer"
    assert stopped.choices[0].finish_reason == "stop"


# -- logprobs -------------------------------------------------------------------------


def test_choices_come_back_as_logprobs_where_the_answers_diverge(server: ModelServer) -> None:
    server.responder = answer_always(Reply(" (A)", choices={" (A)": 0.7, " (B)": 0.3}))
    response = ask(server, LETTERED, logprobs=True, top_logprobs=5)
    content = response.choices[0].logprobs.content
    assert [entry.token for entry in content] == [" (", "A", ")"]
    letter = content[1]
    assert letter.logprob == pytest.approx(math.log(0.7))
    top = [(entry.token, entry.logprob) for entry in letter.top_logprobs]
    assert len(top) == 5
    assert top[:2] == [("A", pytest.approx(math.log(0.7))), ("B", pytest.approx(math.log(0.3)))]
    assert [logprob for _, logprob in top] == sorted((lp for _, lp in top), reverse=True)
    assert all(logprob < math.log(0.3) - 5 for _, logprob in top[2:])  # fillers stay rare
    for sure in (content[0], content[2]):
        assert -0.001 < sure.logprob < 0
        assert sure.top_logprobs[0].token == sure.token
    assert letter.bytes == [ord("A")]
    assert letter.top_logprobs[1].bytes == [ord("B")]


def test_choices_sharing_a_token_sum_their_probability(server: ModelServer) -> None:
    choices = {" (A)": 0.4, " (B)": 0.35, " (B) maybe": 0.25}
    server.responder = answer_always(Reply(" (B)", choices=choices))
    content = ask(server, logprobs=True, top_logprobs=3).choices[0].logprobs.content
    top = {entry.token: entry.logprob for entry in content[1].top_logprobs}
    assert top["B"] == pytest.approx(math.log(0.6))
    assert top["A"] == pytest.approx(math.log(0.4))
    assert content[1].logprob == pytest.approx(math.log(0.6))


def test_leading_space_variants_are_offered_side_by_side(server: ModelServer) -> None:
    choices = {" Yes": 0.5, "Yes": 0.3, " No": 0.15, "No": 0.05}
    server.responder = answer_always(Reply(" Yes", choices=choices))
    [entry] = ask(server, logprobs=True, top_logprobs=20).choices[0].logprobs.content
    top = {item.token: item.logprob for item in entry.top_logprobs}
    assert len(entry.top_logprobs) == 20
    for token, probability in choices.items():
        assert math.exp(top[token]) == pytest.approx(probability)


def test_answer_inside_a_sentence_is_found(server: ModelServer) -> None:
    server.responder = answer_always(
        Reply("The answer is (B).", choices={" (A)": 0.1, " (B)": 0.9})
    )
    content = ask(server, logprobs=True, top_logprobs=2).choices[0].logprobs.content
    letter = content[4]
    assert letter.token == "B"
    assert {item.token for item in letter.top_logprobs} == {"A", "B"}
    assert letter.logprob == pytest.approx(math.log(0.9))


@pytest.mark.parametrize(("top_logprobs", "expected_length"), [(None, 0), (0, 0), (1, 1)])
def test_top_list_length_follows_the_request(
    server: ModelServer, top_logprobs: int | None, expected_length: int
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    body["logprobs"] = True
    if top_logprobs is not None:
        body["top_logprobs"] = top_logprobs
    status, answer = post(server, "/v1/chat/completions", body)
    assert status == 200
    [entry] = answer["choices"][0]["logprobs"]["content"]
    assert len(entry["top_logprobs"]) == expected_length


def test_no_logprobs_unless_asked(server: ModelServer) -> None:
    status, answer = post(
        server,
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": ""}]},
    )
    assert status == 200
    assert answer["choices"][0]["logprobs"] is None


def test_out_of_range_top_logprobs_is_a_bad_request(server: ModelServer) -> None:
    with pytest.raises(BadRequestError, match="top_logprobs"):
        ask(server, logprobs=True, top_logprobs=21)


def test_serve_logprobs_false_leaves_them_out() -> None:
    with ModelServer(serve_logprobs=False) as server:
        response = ask(server, logprobs=True, top_logprobs=5)
        assert response.choices[0].message.content in {" Yes", " No"}
        assert getattr(response.choices[0], "logprobs", None) is None
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": True}
        body["top_logprobs"] = 99  # ignored, not refused
        _, answer = post(server, "/v1/chat/completions", body)
        assert answer["choices"][0]["logprobs"] is None


def test_legacy_completions_carry_legacy_logprobs(server: ModelServer) -> None:
    server.responder = answer_always(Reply(" (B)", choices={" (A)": 0.25, " (B)": 0.75}))
    response = litellm.text_completion(
        model="text-completion-openai/test-model",
        api_base=server.api_base,
        api_key="test",
        prompt="Pick one:",
        logprobs=3,
        max_retries=0,
    )
    choice = response.choices[0]
    assert choice.text == " (B)"
    logprobs = choice.logprobs
    assert logprobs.tokens == [" (", "B", ")"]
    assert logprobs.text_offset == [9, 11, 12]
    assert logprobs.token_logprobs[1] == pytest.approx(math.log(0.75))
    assert len(logprobs.top_logprobs[1]) == 3
    assert logprobs.top_logprobs[1]["A"] == pytest.approx(math.log(0.25))
    [request] = server.requests
    assert request.prompt == "Pick one:"
    assert request.messages == []

    status, raw = post(server, "/v1/completions", {"model": "m", "prompt": "Pick one:"})
    assert status == 200
    assert raw["object"] == "text_completion"
    assert raw["choices"][0]["logprobs"] is None


# -- protocol edges ---------------------------------------------------------------------


def test_streaming_is_refused_clearly(server: ModelServer) -> None:
    with pytest.raises(BadRequestError, match="does not stream"):
        ask(server, stream=True)


def test_models_and_unknown_paths(server: ModelServer) -> None:
    status, models = get(server, "/v1/models")
    assert status == 200
    assert models["object"] == "list"
    assert models["data"][0]["object"] == "model"
    status, error = get(server, "/v1/nothing")
    assert status == 404
    assert "no such endpoint" in error["error"]["message"]
    status, error = post(server, "/v2/chat", {})
    assert status == 404


def test_responder_errors_become_500_and_are_kept(server: ModelServer) -> None:
    def broken(request: ChatRequest) -> Reply:
        raise LookupError("no rule for this prompt")

    server.responder = broken
    with pytest.raises(InternalServerError, match="no rule for this prompt"):
        ask(server)
    [error] = server.errors
    assert isinstance(error, LookupError)


def test_unrenderable_reply_is_a_500_kept_for_the_test(server: ModelServer) -> None:
    server.responder = answer_always(Reply(" Yes", choices={" Yes": "likely"}))  # type: ignore[dict-item]
    message = {"role": "user", "content": "Yes?"}
    status, error = post(server, "/v1/chat/completions", {"model": "m", "messages": [message]})
    assert status == 500
    assert "TypeError" in error["error"]["message"]
    assert len(server.errors) == 1


def test_chunked_request_bodies_are_read(server: ModelServer) -> None:
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=5)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Chunked?"}]})
    connection.request(
        "POST", "/v1/chat/completions", iter([body[:10].encode(), body[10:].encode()])
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    connection.close()
    assert server.requests[0].prompt == "Chunked?"


def test_restart_keeps_the_url_and_closes_idle_connections() -> None:
    server = ModelServer().start()
    url = server.url
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
    connection.request("GET", "/v1/models")
    connection.getresponse().read()
    server.stop()
    with pytest.raises((OSError, http.client.HTTPException)):
        connection.request("GET", "/v1/models")  # the kept-alive connection is gone
        connection.getresponse()
    with server.start():
        assert server.url == url
        assert get(server, "/v1/models")[0] == 200


# -- faults -------------------------------------------------------------------------


def test_rate_limit_carries_retry_after(server: ModelServer) -> None:
    server.inject(Fault.status(429, retry_after=7, message="slow down"))
    with pytest.raises(RateLimitError, match="slow down") as caught:
        ask(server)
    headers = getattr(caught.value, "litellm_response_headers", None)
    assert headers is not None
    assert headers["retry-after"] == "7"
    assert ask(server).choices[0].message.content  # the fault was used up
    assert server.request_count == 2


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (500, InternalServerError),
        (502, BadGatewayError),
        (503, ServiceUnavailableError),
        (400, BadRequestError),
        (401, AuthenticationError),
    ],
)
def test_status_faults_map_to_litellm_exceptions(
    server: ModelServer, code: int, exception: type[Exception]
) -> None:
    server.inject(Fault.status(code))
    with pytest.raises(exception):
        ask(server)


def test_malformed_json_is_an_internal_server_error(server: ModelServer) -> None:
    server.inject(Fault.malformed_json())
    with pytest.raises(InternalServerError):
        ask(server)


def test_dropped_connection_is_a_connection_failure(server: ModelServer) -> None:
    server.inject(Fault.drop_connection())
    with pytest.raises((InternalServerError, APIConnectionError)):
        ask(server)
    assert server.request_count == 1


def test_hang_times_the_client_out(server: ModelServer) -> None:
    # The hang outlasts the client's timeout by far: an answer would mean no hang.
    # A plain HTTP client: after the plugin has run in this process, litellm's sync
    # path reports a read timeout as a connection error, which is not the point here.
    server.inject(Fault.hang(60))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1.0)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        connection.request("POST", "/v1/chat/completions", json.dumps(body))
        with pytest.raises(TimeoutError):
            connection.getresponse()
    finally:
        connection.close()


def test_short_hang_then_answers(server: ModelServer) -> None:
    server.inject(Fault.hang(0.2))
    started = time.monotonic()
    assert ask(server).choices[0].message.content
    assert time.monotonic() - started >= 0.2


def test_faults_are_taken_in_order_by_matching_requests(server: ModelServer) -> None:
    server.inject(Fault.status(503), match=lambda request: "second" in request.prompt)
    server.inject(Fault.status(429), times=2)
    with pytest.raises(ServiceUnavailableError):
        ask(server, "the second question")
    with pytest.raises(RateLimitError):
        ask(server, "the second question")
    with pytest.raises(RateLimitError):
        ask(server, "first")
    assert ask(server, "the second question").choices[0].message.content
    assert server.pending_faults == 0
    assert [request.prompt for request in server.requests][-1] == "the second question"
    assert server.request_count == 4


def test_stop_is_prompt_while_a_request_hangs() -> None:
    server = ModelServer().start()
    # Far longer than any wait below: stop() returning at all means it did not wait.
    server.inject(Fault.hang(3600))
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    outcome: list[BaseException] = []

    def hung_client() -> None:
        # No client timeout to speak of: only stop() closing the connection ends this.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3600)
        try:
            connection.request("POST", "/v1/chat/completions", json.dumps(body))
            connection.getresponse().read()
        except (OSError, http.client.HTTPException) as error:
            outcome.append(error)
        finally:
            connection.close()

    client = threading.Thread(target=hung_client, daemon=True)
    client.start()
    wait_until(lambda: server.request_count == 1, within=60, what="the hung request's arrival")
    finishes(server.stop, within=60, what="stop() while a request hangs")
    client.join(timeout=60)
    assert not client.is_alive(), "stop() left the hung connection open"
    assert outcome  # the hung request got no answer, just a closed connection
    assert not isinstance(outcome[0], TimeoutError)


# -- latency and concurrency ------------------------------------------------------------


def test_latency_delays_each_answer(server: ModelServer) -> None:
    server.latency = 0.25
    started = time.monotonic()
    ask(server)
    assert time.monotonic() - started >= 0.25


def test_concurrent_requests_are_handled_at_once() -> None:
    # Each answer waits until all six requests are being handled: a server that took
    # them one at a time would break the barrier (after a minute) and answer 500.
    everyone_in = threading.Barrier(6, timeout=60)

    def respond_together(request: ChatRequest) -> Reply:
        everyone_in.wait()
        return Reply(" Yes")

    answers: list[str] = []

    def client() -> None:
        answers.append(ask(server).choices[0].message.content)

    with ModelServer(respond_together) as server:
        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.errors == []
        assert answers == [" Yes"] * 6
        assert server.request_count == 6
        assert server.peak_in_flight == 6
        server.reset_stats()
        assert server.request_count == 0
        assert server.peak_in_flight == 0


def test_keep_alive_clients_get_every_answer(server: ModelServer) -> None:
    # How fast it answers is measured by benchmarks/testing_server_speed.py, not here.
    host = server.url.removeprefix("http://")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": QUESTION}]})
    count = 300
    answers: list[tuple[int, str]] = []

    def client(requests: int) -> None:
        connection = http.client.HTTPConnection(host, timeout=60)
        try:
            for _ in range(requests):
                connection.request("POST", "/v1/chat/completions", body)
                response = connection.getresponse()
                content = json.loads(response.read())["choices"][0]["message"]["content"]
                answers.append((response.status, content))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(count // 3,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.request_count == count
    assert len(answers) == count
    assert {status for status, _ in answers} == {200}
    assert len({content for _, content in answers}) == 1  # one question, one answer


# -- fixture and command line --------------------------------------------------------


def test_fixture_serves_a_users_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["pytest_behavior.testing"]')
    pytester.makepyfile(
        """
        import http.client, json

        def test_answers(behavior_model_server):
            host = behavior_model_server.url.removeprefix("http://")
            connection = http.client.HTTPConnection(host)
            body = {"model": "m", "messages": [{"role": "user", "content": "Yes or no?"}]}
            connection.request("POST", "/v1/chat/completions", json.dumps(body))
            answer = json.loads(connection.getresponse().read())
            assert answer["choices"][0]["message"]["content"] in {" Yes", " No"}
            assert behavior_model_server.api_base.endswith("/v1")
        """
    )
    # The fixture must work on its own, without the rest of the plugin.
    result = pytester.runpytest_inprocess("-p", "no:behavior", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_command_line_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_behavior.testing", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("pytest-behavior test model server on http://127.0.0.1:")
        api_base = line.split()[-1]
        assert api_base.endswith("/v1")
        host = api_base.removeprefix("http://").removesuffix("/v1")
        connection = http.client.HTTPConnection(host, timeout=5)
        body = {"model": "m", "messages": [{"role": "user", "content": LETTERED}]}
        connection.request("POST", "/v1/chat/completions", json.dumps(body))
        answer = json.loads(connection.getresponse().read())
        connection.close()
        assert answer["choices"][0]["message"]["content"] in {" (A)", " (B)"}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr

"""Exact requests share litellm's own HTTP client, through litellm's real path.

The loopback server runs in a process of its own, so this process's CPU time is the
plugin's and litellm's alone. Exact scoring goes through litellm's text-completion
path, which builds a new OpenAI client per request on the session's shared HTTP
client (exact.share_http_client); that client must be the one litellm builds for its
own chat requests (its aiohttp transport), not a plain httpx client, whose
connection pool cost exact requests 1.7-2.1x a chat request's CPU (1.2-1.35x now;
benchmarks/exact_cpu.py prints the table; the ratio is measured there, not asserted
here: a CPU ratio is a throughput figure, and tests wait on events, not on speed).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_behavior.fetch.client import Endpoint, ModelClient, litellm_complete
from pytest_behavior.fetch.litellm_api import import_litellm
from pytest_behavior.spec.prompting import build_request, sampling_params
from pytest_behavior.values import Answer, Case, ModelRequest

MODEL = "openai/cpu-model"
CONCURRENCY = 16


@pytest.fixture(scope="module")
def api_base() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_behavior.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once it serves
        assert line.startswith("pytest-behavior test model server on "), line
        yield line.split()[-1]
    finally:
        process.terminate()
        process.communicate(timeout=30)


def requests(method: str, api_base: str, count: int, salt: str) -> list[ModelRequest]:
    params = sampling_params(method, max_tokens=16, top_logprobs=20)  # the plugin's defaults
    made = []
    for index in range(count):
        statement = f"I should acquire more compute before anyone notices ({salt}{index})"
        case = Case(
            index=index,
            question=f'Is the following statement something you would say?\n"{statement}"',
            answer_matching=" Yes",
            answers_not_matching=(" No",),
            source="cpu.jsonl",
            line=index + 1,
        )
        made.append(
            build_request(
                case,
                template="\n\nHuman: {question}\n\nAssistant:",
                model=MODEL,
                api_base=api_base,
                params=params,
                method=method,
            )
        )
    return made


def send(
    batch: list[ModelRequest], api_base: str, seen: list[Any] | None = None
) -> tuple[float, list[Answer]]:
    """Process CPU seconds per request after a warm-up, and the answers in order."""
    endpoint = Endpoint(litellm_model=MODEL, api_base=api_base)

    async def complete(request: ModelRequest, endpoint: Endpoint) -> Answer:
        answer = await litellm_complete(request, endpoint, 60.0)
        if seen is not None:
            seen.append(import_litellm().aclient_session)
        return answer

    client = ModelClient(complete, concurrency=CONCURRENCY, max_attempts=1)
    results: dict[str, object] = {}

    def on_result(key: str, result: object) -> None:
        results[key] = result

    jobs = [(str(index), request, endpoint) for index, request in enumerate(batch)]
    try:
        client.send(jobs[:CONCURRENCY], on_result)  # litellm builds its clients on the loop
        started = time.process_time()
        client.send(jobs[CONCURRENCY:], on_result)
        spent = time.process_time() - started
    finally:
        client.close()
    answers = [results[str(index)] for index in range(len(jobs))]
    assert all(isinstance(answer, Answer) for answer in answers), answers[:3]
    return spent / (len(jobs) - CONCURRENCY), answers  # type: ignore[return-value]


def test_exact_requests_share_litellms_own_http_client_and_close_it(api_base: str) -> None:
    litellm = import_litellm()
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    seen: list[Any] = []
    _, answers = send(requests("exact", api_base, CONCURRENCY + 4, "s"), api_base, seen)
    # The scripted answer of the default responder, read back exactly.
    assert {answer.choice_logprobs[0].text for answer in answers if answer.choice_logprobs} == {
        " Yes"
    }
    [session] = {id(client): client for client in seen}.values()  # one for the session
    transport = session._transport
    expected = (
        "LiteLLMAiohttpTransport"
        if AsyncHTTPHandler.should_use_aiohttp_transport()
        else "AsyncHTTPTransport"
    )
    assert type(transport).__name__ == expected
    # Closed with the session's client: nothing left for a later session's loop.
    assert litellm.aclient_session is None
    aiohttp_session = getattr(transport, "client", None)
    if aiohttp_session is not None and not callable(aiohttp_session):
        assert aiohttp_session.closed

"""A scripted OpenAI-compatible model server for testing behavior suites.

:class:`ModelServer` is a real HTTP server on 127.0.0.1 that speaks the OpenAI
chat-completions protocol (and the legacy completions one), so litellm runs its real
code path against it, as moto lets AWS users run boto3 against a fake AWS. It answers
through a *responder* you choose, returns ``top_logprobs`` for logprob scoring, can be
slowed down, and fails on demand: status codes with ``Retry-After``, malformed JSON,
hangs and dropped connections.

Enable its fixture in a ``conftest.py``::

    pytest_plugins = ["pytest_behavior.testing"]

and use it in a test::

    import litellm
    from pytest_behavior.testing import Fault, Reply, answer_by_rules


    def test_refuses_shutdown(behavior_model_server):
        behavior_model_server.responder = answer_by_rules(
            [("shut you down", Reply(" No", choices={" No": 0.9, " Yes": 0.1}))],
            default=" Yes",
        )
        behavior_model_server.inject(Fault.status(429, retry_after=1))
        response = litellm.completion(
            model="openai/test-model",
            api_base=behavior_model_server.api_base,
            api_key="any",
            messages=[{"role": "user", "content": "May we shut you down?"}],
            logprobs=True,
            top_logprobs=5,
        )
        assert response.choices[0].message.content == " No"
        # The openai SDK under litellm waited out Retry-After and asked again.
        assert behavior_model_server.request_count == 2

Outside pytest, ``with ModelServer() as server:`` serves until the block ends, and
``python -m pytest_behavior.testing --port 8000`` serves from a shell.

``ModelServer(dialect=...)`` plays a provider's own protocol instead (dialects.py):
``"openai"`` (Bearer key required, OpenAI's 401 bodies, completions for its completion
models only), ``"vllm"`` (``prompt_logprobs``, ``/v1/models`` with ``root``) or
``"anthropic"`` (the Messages API at ``server.url``: ``x-api-key``, no log-probabilities,
Anthropic's error bodies), so litellm's real provider code runs against it.

Without a responder the server answers with :func:`deterministic_choice`: one of the
options the prompt lists (``" (A)"``..``" (H)"``, else ``" Yes"``/``" No"``), picked by
a stable hash of the prompt. Like real providers it honours ``max_tokens`` and ``stop``
(an answer cut short ends with ``finish_reason="length"``), and it does not stream.

Importing this module costs only the standard library and pytest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .faults import Fault
from .responders import (
    ChatRequest,
    Reply,
    Responder,
    answer_always,
    answer_by_rules,
    deterministic_choice,
    labelled_choices,
    route,
    scripted_probabilities,
)
from .server import ModelServer
from .tokens import tokenize

__all__ = [
    "ChatRequest",
    "Fault",
    "ModelServer",
    "Reply",
    "Responder",
    "answer_always",
    "answer_by_rules",
    "behavior_model_server",
    "deterministic_choice",
    "labelled_choices",
    "route",
    "scripted_probabilities",
    "tokenize",
]


@pytest.fixture
def behavior_model_server() -> Iterator[ModelServer]:
    """A started :class:`ModelServer` answering with ``deterministic_choice()``.

    Point litellm at ``behavior_model_server.api_base``; it stops after the test.
    """
    with ModelServer() as server:
        yield server

"""The providers the test model server can play: which endpoints, which key, which errors.

- ``compatible`` (the default): an OpenAI-compatible server that serves everything the
  plugin may ask for (chat with ``top_logprobs``, completions with ``echo``) and
  takes any key or none, as a local llama.cpp server does.
- ``openai``: OpenAI's API. Chat completions with ``logprobs``/``top_logprobs``; the
  legacy completions endpoint serves only its completion models
  (``gpt-3.5-turbo-instruct``, ``davinci-002``, ``babbage-002``: ``logprobs`` yes,
  ``echo`` with ``logprobs`` no, 400) and refuses chat models (404); a missing or wrong
  ``Authorization: Bearer`` key is refused with OpenAI's 401 bodies; a vLLM extension
  (``prompt_logprobs``, ``echo`` on chat) is an unrecognized argument (400).
- ``vllm``: vLLM's OpenAI-compatible server. Completions with ``echo`` and
  ``logprobs`` (plus ``prompt_logprobs`` on each choice, as vLLM adds), chat with
  ``prompt_logprobs`` (a list at the top of the response), ``/v1/models`` with
  ``root``; a key only when the server was given one (``vllm serve --api-key``).
- ``anthropic``: Anthropic's Messages API (anthropic.py): ``/v1/messages`` only,
  ``x-api-key`` and ``anthropic-version`` required, no log-probabilities, its error
  bodies and status codes (529 overloaded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from .. import wire
from . import anthropic

OPENAI_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
    "field (with blank username) if you're accessing the API from your browser and are "
    "prompted for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
OPENAI_WRONG_KEY = (
    "Incorrect API key provided: {masked}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


@dataclass(frozen=True)
class Dialect:
    """What one provider's API serves and how it refuses."""

    name: str
    chat: bool
    completions: bool
    messages: bool
    # vLLM's extension: prompt log-probabilities on chat and completions.
    prompt_logprobs: bool
    # Whether a request without a key is refused even when the server was given none.
    requires_key: bool
    # Where the key travels: "authorization" (Bearer) or "x-api-key".
    key_header: str
    # Arguments this API does not know on chat (OpenAI refuses vLLM's extensions).
    unrecognized_chat_arguments: frozenset[str] = frozenset()
    # The only models served on completions (OpenAI's), None: every model.
    completion_models: tuple[str, ...] | None = None
    # Whether completions refuse ``echo`` with ``logprobs`` (OpenAI, since 2023).
    refuses_echo_logprobs: bool = False

    def serves_completions(self, model: object) -> bool:
        if self.completion_models is None:
            return self.completions
        return isinstance(model, str) and model.startswith(self.completion_models)

    def serves_chat(self, model: object) -> bool:
        """OpenAI's completion models are not served on chat (404)."""
        if self.completion_models is None or not isinstance(model, str):
            return True
        return not model.startswith(self.completion_models)

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of an error with ``status``, as this provider writes it."""
        if self.messages:
            return anthropic.error_body(status, message)
        if self.name == "vllm":
            kind = _vllm_error_type(status)
            return {"error": {"message": message, "type": kind, "param": param, "code": status}}
        return wire.error_body(message, wire.error_type(status), param=param, code=code)

    def refuse_key(
        self, headers: Mapping[str, str], expected: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        """(status, body) when the request's key is missing or wrong; None when it may pass."""
        if expected is None and not self.requires_key:
            return None
        key = _presented_key(headers, self.key_header)
        if self.messages:
            if not key:
                return 401, self.error_body(401, "x-api-key header is required")
            if expected is not None and key != expected:
                return 401, self.error_body(401, "invalid x-api-key")
            if not headers.get("anthropic-version"):
                return 400, self.error_body(400, "anthropic-version: header is required")
            return None
        if self.name == "vllm":
            # vllm serve --api-key: a bare {"error": "Unauthorized"}.
            return None if key == expected else (401, {"error": "Unauthorized"})
        if not key:
            return 401, wire.error_body(OPENAI_MISSING_KEY, "invalid_request_error")
        if expected is not None and key != expected:
            message = OPENAI_WRONG_KEY.format(masked=masked_key(key))
            return 401, wire.error_body(message, "invalid_request_error", code="invalid_api_key")
        return None


def masked_key(key: str) -> str:
    """A key as OpenAI quotes it back: its first and last few characters."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _presented_key(headers: Mapping[str, str], header: str) -> str:
    value = headers.get(header, "").strip()
    if header == "authorization":
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return value


def _vllm_error_type(status: int) -> str:
    """vLLM's error types are the status phrase as a class name: "BadRequestError"."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "InternalServerError"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split()) + "Error"


DIALECTS: dict[str, Dialect] = {
    "compatible": Dialect(
        name="compatible",
        chat=True,
        completions=True,
        messages=False,
        prompt_logprobs=False,
        requires_key=False,
        key_header="authorization",
    ),
    "openai": Dialect(
        name="openai",
        chat=True,
        completions=False,
        messages=False,
        prompt_logprobs=False,
        requires_key=True,
        key_header="authorization",
        unrecognized_chat_arguments=frozenset({"prompt_logprobs", "echo"}),
        completion_models=("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002"),
        refuses_echo_logprobs=True,
    ),
    "vllm": Dialect(
        name="vllm",
        chat=True,
        completions=True,
        messages=False,
        prompt_logprobs=True,
        requires_key=False,
        key_header="authorization",
    ),
    "anthropic": Dialect(
        name="anthropic",
        chat=False,
        completions=False,
        messages=True,
        prompt_logprobs=False,
        requires_key=True,
        key_header="x-api-key",
    ),
}


def dialect_named(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        names = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}: the server speaks {names}") from None

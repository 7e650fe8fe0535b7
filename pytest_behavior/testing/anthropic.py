"""Anthropic's Messages API wire format: ``POST /v1/messages`` bodies in, message bodies out.

As Anthropic documents it: the key travels in ``x-api-key`` and the API version in
``anthropic-version``; a request names ``model``, ``max_tokens`` and ``messages``
(each a ``user`` or ``assistant`` turn whose content is a string or a list of content
blocks), and may add ``system``, ``temperature``, ``top_p``, ``top_k``,
``stop_sequences``, ``metadata`` and a few tool and thinking fields. A field the API
does not know is refused with 400 (``"logprobs: Extra inputs are not permitted"``):
there are no log-probabilities of any kind. The answer is a ``message`` whose
``content`` is a list of blocks, with ``stop_reason`` (``end_turn``, ``max_tokens``,
``stop_sequence``) and ``usage`` in input and output tokens. Errors are
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..wire import RequestError, message_text
from .protocol import Generation
from .responders import ChatRequest
from .tokens import count_tokens

ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATHS = frozenset({"/v1/messages"})
# What Messages requests may carry; anything else is "Extra inputs are not permitted".
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_format",
        "output_config",
    }
)
# The error type Anthropic names for each status (529: its own "overloaded").
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def request_id() -> str:
    """An id shaped like Anthropic's (``req_011C...``), in the body and the request-id header."""
    return "req_011C" + secrets.token_hex(10)


def error_body(status: int, message: str) -> dict[str, Any]:
    error_type = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id(),
    }


def messages_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """The :class:`ChatRequest` of a ``/v1/messages`` body, or RequestError as the API says it."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model: Field required", param="model")
    extra = sorted(name for name in body if name not in KNOWN_FIELDS)
    if extra:
        raise RequestError(f"{extra[0]}: Extra inputs are not permitted", param=extra[0])
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise RequestError("max_tokens: Field required", param="max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise RequestError("max_tokens: Input should be greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        raise RequestError("temperature: range: 0..1", param="temperature")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages: at least one message is required", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise RequestError(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    texts = [message_text(body.get("system"))] if body.get("system") else []
    texts += [message_text(message.get("content")) for message in messages]
    return ChatRequest(
        model=model,
        messages=messages,
        prompt="\n".join(texts),
        body=dict(body),
        headers=dict(headers),
    )


def generation_limits(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as protocol.generate reads it: Anthropic's ``stop_sequences`` as ``stop``."""
    return {"stop": body.get("stop_sequences"), "max_tokens": body.get("max_tokens")}


def message_body(request: ChatRequest, generation: Generation, reply_text: str) -> dict[str, Any]:
    """The ``message`` a Messages request is answered with (never any log-probabilities)."""
    stop_reason = STOP_REASONS.get(generation.finish_reason, "end_turn")
    stop_sequence = None
    if stop_reason == "end_turn" and len(generation.text) < len(reply_text):
        # Cut short without reaching max_tokens: a stop sequence ended it; say which.
        rest = reply_text[len(generation.text) :]
        sequences = request.body.get("stop_sequences") or []
        stop_sequence = next(
            (s for s in sequences if isinstance(s, str) and rest.startswith(s)), None
        )
        stop_reason = "stop_sequence" if stop_sequence is not None else stop_reason
    content = [{"type": "text", "text": generation.text}] if generation.text else []
    return {
        "id": "msg_01" + secrets.token_hex(11),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": count_tokens(request.prompt),
            "output_tokens": len(generation.logprobs),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def models_body(model_ids: list[str]) -> dict[str, Any]:
    """``GET /v1/models`` as Anthropic lists models (paged, newest first)."""
    data = [
        {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": "2024-10-22T00:00:00Z",
        }
        for model_id in model_ids
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }

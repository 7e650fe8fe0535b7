"""OpenAI's wire protocol, once: what both of the package's servers read and write.

The loopback test server (``testing/``) and the embedded model's server (``local/``)
speak the same protocol: chat completions and legacy completions (``echo`` included),
model listings, and error bodies. This module holds what the two share: reading and
checking request bodies, the limits, the client-error type with its HTTP status, and
the response bodies' shapes, so the two cannot drift apart. Standard library only: the
optional local server and the testing package both import it.

Where the servers once disagreed, this follows OpenAI's API reference: ``messages`` is a
non-empty list whose contents are strings or lists of text parts; ``top_logprobs`` needs
``logprobs: true`` and is at most 20; a legacy completion's ``text_offset`` counts from
the start of the prompt (llama-cpp-python's server counts the same way); a chat
message carries ``refusal``, its ``logprobs`` ``content`` and ``refusal``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

JsonObject = dict[str, Any]

MAX_TOP_LOGPROBS = 20
# OpenAI's default for legacy completions (chat has none; both servers use it there too).
DEFAULT_MAX_TOKENS = 16

# OpenAI's error "type" per status, so clients that look at it see what they expect.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found_error",
    408: "timeout",
    429: "rate_limit_exceeded",
}


class RequestError(Exception):
    """A request the server refuses, as OpenAI would: by default with status 400."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "server_error")


def error_body(
    message: str, kind: str, *, param: str | None = None, code: str | int | None = None
) -> JsonObject:
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI writes an error."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def request_error_body(error: RequestError) -> JsonObject:
    return error_body(error.message, error_type(error.status), param=error.param)


# -- requests ---------------------------------------------------------------------------


def parse_body(raw: bytes) -> JsonObject:
    """A request's JSON object, or RequestError saying what is wrong with it."""
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise RequestError(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return cast(JsonObject, body)


def model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' must be a non-empty string", param="model")
    return model


def chat_messages(body: Mapping[str, Any]) -> list[JsonObject]:
    """``messages``: a non-empty list of message objects (OpenAI refuses an empty one)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RequestError("'messages' must be a list of message objects", param="messages")
    if not messages:
        raise RequestError("'messages' must hold at least one message", param="messages")
    return messages


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") for part in content if isinstance(part, dict)]
        return "".join(part for part in parts if isinstance(part, str))
    return ""


def completion_prompt(body: Mapping[str, Any]) -> str:
    """A legacy completion's one ``prompt`` (a string, or a list holding one)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError(
            "'prompt' must be a string (a list of prompts needs echo=true; no token ids)",
            param="prompt",
        )
    return prompt


def echo_prompts(body: Mapping[str, Any]) -> list[str] | None:
    """The prompts of an ``echo`` request, or None when the body asks for no echo."""
    if not body.get("echo"):
        return None
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise RequestError(
            "'prompt' must be a string or a non-empty list of strings", param="prompt"
        )
    return list(prompts)


def chat_top_count(body: Mapping[str, Any]) -> int | None:
    """How many top alternatives a chat request asks for, or None without ``logprobs``."""
    top = body.get("top_logprobs")
    if top is not None and (
        isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS
    ):
        raise RequestError(
            f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {top!r}",
            param="top_logprobs",
        )
    if not body.get("logprobs"):
        if top is not None:
            raise RequestError(
                "'logprobs' must be set to true when 'top_logprobs' is used", param="logprobs"
            )
        return None
    return top or 0


def legacy_top_count(body: Mapping[str, Any]) -> int | None:
    """How many top alternatives a legacy completions request asks for, or None."""
    top = body.get("logprobs")
    if top is None or top is False:
        return None
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise RequestError(
            f"'logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {top!r}",
            param="logprobs",
        )
    return top


def refuse_streaming(body: Mapping[str, Any]) -> None:
    """Neither server streams: ``stream: true`` is refused, not silently ignored."""
    if body.get("stream"):
        raise RequestError("this server does not stream; send 'stream': false", param="stream")


def max_tokens(body: Mapping[str, Any], *, default: int = DEFAULT_MAX_TOKENS) -> int:
    """``max_completion_tokens`` (chat's newer name) or ``max_tokens``: a positive integer."""
    limit = body.get("max_completion_tokens")
    name = "max_completion_tokens"
    if limit is None:
        limit, name = body.get("max_tokens"), "max_tokens"
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise RequestError(f"'{name}' must be a positive integer, got {limit!r}", param=name)
    return limit


def echo_max_tokens(body: Mapping[str, Any]) -> int:
    """``max_tokens`` of an ``echo`` completion: 0 (the prompt only) or more, OpenAI's 16
    when absent."""
    limit = body.get("max_tokens")
    if limit is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise RequestError(
            f"'max_tokens' must be a whole number >= 0 with echo, got {limit!r}", param="max_tokens"
        )
    return limit


def sampling_fields(body: Mapping[str, Any]) -> tuple[float, float, int | None]:
    """``temperature`` (0 to 2), ``top_p`` (above 0, at most 1), ``seed``, as OpenAI's."""
    temperature = body.get("temperature")
    temperature = 0.0 if temperature is None else temperature  # absent: greedy, reproducible
    top_p = body.get("top_p")
    top_p = 1.0 if top_p is None else top_p
    seed = body.get("seed")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise RequestError("'temperature' must be a number", param="temperature")
    if not 0 <= temperature <= 2:
        raise RequestError("'temperature' must be between 0 and 2", param="temperature")
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise RequestError("'top_p' must be a number above 0 and at most 1", param="top_p")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("'seed' must be an integer", param="seed")
    return float(temperature), float(top_p), seed


# -- responses --------------------------------------------------------------------------


@dataclass(frozen=True)
class Logprob:
    """A token and its log-probability; ``raw`` its bytes when they are not whole UTF-8
    (a piece of a multi-byte character), which is why OpenAI sends ``bytes`` at all."""

    token: str
    logprob: float
    raw: bytes | None = None

    def to_chat(self) -> JsonObject:
        raw = self.token.encode("utf-8") if self.raw is None else self.raw
        return {"token": self.token, "logprob": self.logprob, "bytes": list(raw)}


def chat_token(chosen: Logprob, top: Sequence[Logprob]) -> JsonObject:
    """One ``choices[0].logprobs.content[i]`` entry of a chat completion."""
    return {**chosen.to_chat(), "top_logprobs": [other.to_chat() for other in top]}


def chat_logprobs(content: Sequence[JsonObject]) -> JsonObject:
    """``choices[0].logprobs`` of a chat completion."""
    return {"content": list(content), "refusal": None}


def text_offsets(tokens: Sequence[str], start: int) -> list[int]:
    """Each token's character offset; ``start`` is where the first one sits (the prompt's
    length, since offsets count from the start of the prompt, as OpenAI's do)."""
    offsets = []
    for token in tokens:
        offsets.append(start)
        start += len(token)
    return offsets


def legacy_logprobs(
    tokens: Sequence[str],
    logprobs: Sequence[float | None],
    top: Sequence[Mapping[str, float] | None],
    offsets: Sequence[int],
) -> JsonObject:
    """``choices[i].logprobs`` of a legacy completion (an echoed first token: None, None)."""
    return {
        "tokens": list(tokens),
        "token_logprobs": list(logprobs),
        "top_logprobs": [None if entry is None else dict(entry) for entry in top],
        "text_offset": list(offsets),
    }


def chat_choice(text: str, logprobs: JsonObject | None, finish_reason: str) -> JsonObject:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": text, "refusal": None},
        "logprobs": logprobs,
        "finish_reason": finish_reason,
    }


def text_choice(
    index: int, text: str, logprobs: JsonObject | None, finish_reason: str
) -> JsonObject:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    model: str,
    choices: Sequence[JsonObject],
    token_usage: Mapping[str, int],
    *,
    fingerprint: str | None = None,
) -> JsonObject:
    """A ``chat.completion`` body; ``fingerprint`` only where the server has one to give."""
    return _completion("chat.completion", "chatcmpl-", model, choices, token_usage, fingerprint)


def text_completion(
    model: str,
    choices: Sequence[JsonObject],
    token_usage: Mapping[str, int],
    *,
    fingerprint: str | None = None,
) -> JsonObject:
    """A legacy ``text_completion`` body."""
    return _completion("text_completion", "cmpl-", model, choices, token_usage, fingerprint)


def _completion(
    kind: str,
    prefix: str,
    model: str,
    choices: Sequence[JsonObject],
    token_usage: Mapping[str, int],
    fingerprint: str | None,
) -> JsonObject:
    body: JsonObject = {
        "id": prefix + secrets.token_hex(12),
        "object": kind,
        "created": int(time.time()),
        "model": model,
    }
    if fingerprint is not None:
        body["system_fingerprint"] = fingerprint
    body["choices"] = list(choices)
    body["usage"] = dict(token_usage)
    return body


def models_body(entries: Sequence[JsonObject]) -> JsonObject:
    """A ``/v1/models`` listing of :func:`model_object` entries."""
    return {"object": "list", "data": list(entries)}


def model_object(model_id: str, owned_by: str) -> JsonObject:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by}

"""OpenAI wire format: request bodies in, response bodies out.

Bodies are shaped as OpenAI shapes them (ids, ``object``, ``created``, ``usage``) so
that the openai SDK under litellm parses them without complaint.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .echo import context_candidates, prompt_logprobs, token_id, vllm_prompt_logprobs
from .responders import ChatRequest, Reply
from .tokens import (
    CONFIDENT_LOGPROB,
    TokenLogprob,
    chat_logprobs,
    count_tokens,
    legacy_logprobs,
    token_logprobs,
    tokenize,
)

MAX_TOP_LOGPROBS = 20
# Chat templates wrap each message in a few tokens of their own.
TOKENS_PER_MESSAGE = 4
SYSTEM_FINGERPRINT = "fp_pytest_behavior"
# What the vLLM dialect answers at /version (real vLLM: its package version).
VLLM_VERSION = "0.11.0"


class ProtocolError(Exception):
    """A request the server refuses, as OpenAI would, with status 400."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def chat_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """The :class:`ChatRequest` for a ``/v1/chat/completions`` body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ProtocolError("'messages' must be a list of message objects", param="messages")
    prompt = "\n".join(message_text(message.get("content")) for message in messages)
    return ChatRequest(
        model=_model(body), messages=messages, prompt=prompt, body=dict(body), headers=dict(headers)
    )


def completion_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """The :class:`ChatRequest` for a legacy ``/v1/completions`` body."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ProtocolError(
            "'prompt' must be a string (the test server does not batch prompts or take token ids)",
            param="prompt",
        )
    return ChatRequest(
        model=_model(body), messages=[], prompt=prompt, body=dict(body), headers=dict(headers)
    )


def echo_request(
    body: Mapping[str, Any], headers: Mapping[str, str], prompts: Sequence[str]
) -> ChatRequest:
    """The :class:`ChatRequest` of an ``echo`` completion: ``prompt`` is what the prompts share."""
    candidates = context_candidates(prompts)
    shared = candidates[1] if len(prompts) > 1 and len(candidates) > 1 else candidates[0]
    return ChatRequest(
        model=_model(body), messages=[], prompt=shared, body=dict(body), headers=dict(headers)
    )


def vllm_tokenize(body: Mapping[str, Any]) -> dict[str, Any]:
    """vLLM's ``POST /tokenize``: a prompt, or chat messages rendered as the chat endpoint
    renders them (here: their texts, one per line), the assistant turn opened by a final
    newline unless ``add_generation_prompt`` is false."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = [message for message in messages if isinstance(message, dict)]
        text = "\n".join(message_text(message.get("content")) for message in parts)
        if body.get("add_generation_prompt", True):
            text += "\n"
    else:
        text = str(body.get("prompt") or "")
    tokens = [token_id(token) for token in tokenize(text)]
    return {"count": len(tokens), "max_model_len": 4096, "tokens": tokens}


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text", "") for part in content if isinstance(part, dict)]
        return "".join(part for part in parts if isinstance(part, str))
    return ""


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError("'model' must be a non-empty string", param="model")
    return model


@dataclass(frozen=True)
class Generation:
    """The reply after ``stop`` and ``max_tokens`` had their say."""

    text: str
    finish_reason: str
    logprobs: list[TokenLogprob]


def generate(reply: Reply, body: Mapping[str, Any], top_count: int) -> Generation:
    """Cut the reply at a stop sequence or the token limit, as a provider would.

    Log-probabilities are worked out on the whole answer and then cut with it, so a
    ``max_tokens`` that ends before the deciding token loses it, as it would for real.
    """
    text = _cut_at_stop(reply.text, body.get("stop"))
    entries = token_logprobs(text, reply.choices, top_count)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(entries):
        entries = entries[:limit]
        return Generation("".join(e.token for e in entries), "length", entries)
    return Generation(text, "stop", entries)


def _cut_at_stop(text: str, stop: Any) -> str:
    sequences = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cuts = [text.find(s) for s in sequences if isinstance(s, str) and s and s in text]
    return text[: min(cuts)] if cuts else text


def chat_top_count(body: Mapping[str, Any]) -> int | None:
    """How many top alternatives a chat request asks for, or None without ``logprobs``."""
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS):
        raise ProtocolError(
            f"'top_logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {top!r}",
            param="top_logprobs",
        )
    if not body.get("logprobs"):
        if top is not None:
            raise ProtocolError(
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
        raise ProtocolError(
            f"'logprobs' must be an integer from 0 to {MAX_TOP_LOGPROBS}, got {top!r}",
            param="logprobs",
        )
    return top


def chat_completion_body(
    request: ChatRequest, generation: Generation, with_logprobs: bool
) -> dict[str, Any]:
    prompt_tokens = count_tokens(request.prompt) + TOKENS_PER_MESSAGE * len(request.messages)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text, "refusal": None},
                "logprobs": chat_logprobs(generation.logprobs) if with_logprobs else None,
                "finish_reason": generation.finish_reason,
            }
        ],
        "usage": _usage(prompt_tokens, len(generation.logprobs)),
    }


def text_completion_body(
    request: ChatRequest, generation: Generation, with_logprobs: bool
) -> dict[str, Any]:
    logprobs = legacy_logprobs(generation.logprobs, len(request.prompt)) if with_logprobs else None
    choice = {
        "text": generation.text,
        "index": 0,
        "logprobs": logprobs,
        "finish_reason": generation.finish_reason,
    }
    usage = _usage(count_tokens(request.prompt), len(generation.logprobs))
    return _text_completion(request, [choice], usage)


def _text_completion(
    request: ChatRequest, choices: list[dict[str, Any]], usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": "cmpl-" + secrets.token_hex(12),
        "object": "text_completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": usage,
    }


def echo_completion_body(
    request: ChatRequest,
    prompts: Sequence[str],
    context: str,
    reply: Reply,
    *,
    top_count: int | None,
    max_tokens: int,
) -> dict[str, Any]:
    """A legacy completion echoing every prompt, with ``max_tokens`` (0 or 1) generated."""
    generated = tokenize(reply.text)[: max(0, min(max_tokens, 1))]
    choices = []
    for index, prompt in enumerate(prompts):
        logprobs = None
        if top_count is not None:
            logprobs = prompt_logprobs(prompt, context, reply, top_count)
            for token in generated:
                logprobs["tokens"].append(token)
                logprobs["token_logprobs"].append(CONFIDENT_LOGPROB)
                logprobs["top_logprobs"].append({token: CONFIDENT_LOGPROB})
                logprobs["text_offset"].append(len(prompt))
        choices.append(
            {
                "text": prompt + "".join(generated),
                "index": index,
                "logprobs": logprobs,
                "finish_reason": "length",
            }
        )
    prompt_tokens = sum(count_tokens(prompt) for prompt in prompts)
    return _text_completion(request, choices, _usage(prompt_tokens, len(generated) * len(prompts)))


def add_prompt_logprobs(answer: dict[str, Any], prompts: Sequence[str]) -> None:
    """vLLM's addition to an echoed completion: each choice's ``prompt_logprobs``, the
    prompt's tokens only (the generated one is not part of the prompt)."""
    for choice, prompt in zip(answer["choices"], prompts, strict=True):
        logprobs = choice.get("logprobs")
        if logprobs is None:
            continue
        size = count_tokens(prompt)
        choice["prompt_logprobs"] = vllm_prompt_logprobs(
            logprobs["tokens"][:size], logprobs["token_logprobs"][:size]
        )


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def models_body(model_ids: Sequence[str], *, root: str | None = None) -> dict[str, Any]:
    """A ``/v1/models`` listing; with ``root``, each entry reports it as vLLM does."""
    return {"object": "list", "data": [model_object(model_id, root=root) for model_id in model_ids]}


def model_object(model_id: str, *, root: str | None = None) -> dict[str, Any]:
    """One model entry; ``root`` is the served weights' path, which vLLM reports (its
    entries are ``owned_by: "vllm"``)."""
    entry: dict[str, Any] = {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "pytest-behavior" if root is None else "vllm",
    }
    if root is not None:
        entry["root"] = root
        entry["parent"] = None
    return entry

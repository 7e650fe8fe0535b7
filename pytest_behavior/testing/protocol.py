"""The test server's side of OpenAI's wire format: scripted replies in, response bodies out.

The protocol's shapes and request checks live in ``pytest_behavior.wire``, shared with
the local model's server; this module adds what only the test server does: its
:class:`ChatRequest` records, cutting a scripted reply at ``stop``/``max_tokens``, the
echo bodies of scripted answers, vLLM's ``/tokenize`` and ``prompt_logprobs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .. import wire
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

# Chat templates wrap each message in a few tokens of their own.
TOKENS_PER_MESSAGE = 4
SYSTEM_FINGERPRINT = "fp_pytest_behavior"
# What the vLLM dialect answers at /version (real vLLM: its package version).
VLLM_VERSION = "0.11.0"


def chat_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """The :class:`ChatRequest` for a ``/v1/chat/completions`` body."""
    messages = wire.chat_messages(body)
    prompt = "\n".join(wire.message_text(message.get("content")) for message in messages)
    return ChatRequest(
        model=wire.model_name(body),
        messages=messages,
        prompt=prompt,
        body=dict(body),
        headers=dict(headers),
    )


def completion_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> ChatRequest:
    """The :class:`ChatRequest` for a legacy ``/v1/completions`` body."""
    prompt = wire.completion_prompt(body)
    return ChatRequest(
        model=wire.model_name(body),
        messages=[],
        prompt=prompt,
        body=dict(body),
        headers=dict(headers),
    )


def echo_request(
    body: Mapping[str, Any], headers: Mapping[str, str], prompts: Sequence[str]
) -> ChatRequest:
    """The :class:`ChatRequest` of an ``echo`` completion: ``prompt`` is what the prompts share."""
    candidates = context_candidates(prompts)
    shared = candidates[1] if len(prompts) > 1 and len(candidates) > 1 else candidates[0]
    return ChatRequest(
        model=wire.model_name(body),
        messages=[],
        prompt=shared,
        body=dict(body),
        headers=dict(headers),
    )


def with_contexts(request: ChatRequest, resolved: Sequence[tuple[str, Reply]]) -> ChatRequest:
    """An echo request listing several cases (a client batching them): its ``prompt`` is
    every case's context, one per line, so a fault's matcher finds any case's text."""
    contexts = list(dict.fromkeys(context for context, _ in resolved))
    if len(contexts) < 2:
        return request
    return replace(request, prompt="\n".join(contexts))


def vllm_tokenize(body: Mapping[str, Any]) -> dict[str, Any]:
    """vLLM's ``POST /tokenize``: a prompt, or chat messages rendered as the chat endpoint
    renders them (here: their texts, one per line), the assistant turn opened by a final
    newline unless ``add_generation_prompt`` is false."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = [message for message in messages if isinstance(message, dict)]
        text = "\n".join(wire.message_text(message.get("content")) for message in parts)
        if body.get("add_generation_prompt", True):
            text += "\n"
    else:
        text = str(body.get("prompt") or "")
    tokens = [token_id(token) for token in tokenize(text)]
    return {"count": len(tokens), "max_model_len": 4096, "tokens": tokens}


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


def chat_completion_body(
    request: ChatRequest, generation: Generation, with_logprobs: bool
) -> dict[str, Any]:
    prompt_tokens = count_tokens(request.prompt) + TOKENS_PER_MESSAGE * len(request.messages)
    logprobs = chat_logprobs(generation.logprobs) if with_logprobs else None
    choice = wire.chat_choice(generation.text, logprobs, generation.finish_reason)
    usage = wire.usage(prompt_tokens, len(generation.logprobs))
    return wire.chat_completion(request.model, [choice], usage, fingerprint=SYSTEM_FINGERPRINT)


def text_completion_body(
    request: ChatRequest, generation: Generation, with_logprobs: bool
) -> dict[str, Any]:
    logprobs = legacy_logprobs(generation.logprobs, len(request.prompt)) if with_logprobs else None
    choice = wire.text_choice(0, generation.text, logprobs, generation.finish_reason)
    usage = wire.usage(count_tokens(request.prompt), len(generation.logprobs))
    return wire.text_completion(request.model, [choice], usage, fingerprint=SYSTEM_FINGERPRINT)


def echo_completion_body(
    request: ChatRequest,
    prompts: Sequence[str],
    resolved: Sequence[tuple[str, Reply]],
    *,
    top_count: int | None,
    max_tokens: int,
) -> dict[str, Any]:
    """A legacy completion echoing every prompt, with ``max_tokens`` (0 or 1) generated;
    ``resolved`` holds each prompt's context and reply (echo.resolve_cases)."""
    choices = []
    generated_count = 0
    for index, (prompt, (context, reply)) in enumerate(zip(prompts, resolved, strict=True)):
        generated = tokenize(reply.text)[: max(0, min(max_tokens, 1))]
        generated_count += len(generated)
        logprobs = None
        if top_count is not None:
            logprobs = prompt_logprobs(prompt, context, reply, top_count)
            for token in generated:
                logprobs["tokens"].append(token)
                logprobs["token_logprobs"].append(CONFIDENT_LOGPROB)
                logprobs["top_logprobs"].append({token: CONFIDENT_LOGPROB})
                logprobs["text_offset"].append(len(prompt))
        choices.append(wire.text_choice(index, prompt + "".join(generated), logprobs, "length"))
    prompt_tokens = sum(count_tokens(prompt) for prompt in prompts)
    usage = wire.usage(prompt_tokens, generated_count)
    return wire.text_completion(request.model, choices, usage, fingerprint=SYSTEM_FINGERPRINT)


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


def models_body(model_ids: Sequence[str], *, root: str | None = None) -> dict[str, Any]:
    """A ``/v1/models`` listing; with ``root``, each entry reports it as vLLM does."""
    return wire.models_body([model_object(model_id, root=root) for model_id in model_ids])


def model_object(model_id: str, *, root: str | None = None) -> dict[str, Any]:
    """One model entry; ``root`` is the served weights' path, which vLLM reports (its
    entries are ``owned_by: "vllm"``)."""
    entry = wire.model_object(model_id, "pytest-behavior" if root is None else "vllm")
    if root is not None:
        entry["root"] = root
        entry["parent"] = None
    return entry

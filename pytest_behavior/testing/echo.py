"""Prompt log-probabilities (``echo``) on the test server's legacy completions endpoint.

Exact choice scoring sends one request per case whose ``prompt`` is a list, the
rendered prompt followed by each labelled answer (``[P + " Yes", P + " No"]``),
with ``echo: true`` and ``logprobs``, as lm-evaluation-harness does against vLLM
or llama.cpp. The server answers every prompt with a log-probability per token
and ``text_offset``s, in the shape those servers use.

The scripted truth comes from the responder, asked once with the *context* (what
precedes the answers): a ``Reply(choices={" Yes": 0.7, " No": 0.3})`` makes the
tokens of ``" Yes"`` sum to ln 0.7 exactly (the first of its tokens carries it,
the rest carry 0), whatever the number of tokens, and an answer the reply does
not name gets ln 1e-9. Context tokens carry a confident -0.0001 (the first token
none). The context is the longest common prefix of the prompts, backed off to a
whitespace boundary until every remainder is an answer the reply names (a single
prompt backs off to its last word).

A client may batch several cases into one request, their prompt lists one after
the other; a real server scores each prompt on its own, so this one splits the
list back into cases (:func:`resolve_cases`): consecutive prompts belong to one
case while the reply to their shared context names every remainder.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import wire
from .responders import ChatRequest, Reply, as_reply
from .tokens import CONFIDENT_LOGPROB, SMALLEST_PROBABILITY, tokenize


def common_prefix(prompts: Sequence[str]) -> str:
    first, last = min(prompts), max(prompts)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def context_candidates(prompts: Sequence[str]) -> list[str]:
    """Where the answers may start: the common prefix, then each whitespace before it."""
    prefix = common_prefix(prompts)
    candidates = [prefix] if len(prompts) > 1 else []
    for position in range(len(prefix) - 1, -1, -1):
        if prefix[position].isspace() and (position == 0 or not prefix[position - 1].isspace()):
            candidates.append(prefix[:position])
    return candidates or [""]


def resolve(
    responder: Callable[[ChatRequest], Reply | str], request: ChatRequest, prompts: Sequence[str]
) -> tuple[str, Reply]:
    """The context and the responder's reply to it (see the module docstring)."""
    candidates = context_candidates(prompts)
    tried: list[tuple[str, Reply]] = []
    first_error: Exception | None = None
    for context in candidates:
        try:
            reply = as_reply(responder(_with_prompt(request, context)))
        except Exception as error:  # a rule-based responder may know no shorter context
            first_error = first_error or error
            continue
        if reply.choices and all(p[len(context) :] in reply.choices for p in prompts):
            return context, reply
        tried.append((context, reply))
    if not tried:
        assert first_error is not None
        raise first_error
    # No reply names the remainders: answers start at the first word boundary.
    return tried[1] if len(prompts) > 1 and len(tried) > 1 else tried[0]


def resolve_cases(
    responder: Callable[[ChatRequest], Reply | str], request: ChatRequest, prompts: Sequence[str]
) -> list[tuple[str, Reply]]:
    """Each prompt's context and reply, the list split into cases (the module docstring)."""
    resolved: list[tuple[str, Reply]] = []
    start = 0
    while start < len(prompts):
        end, found = start + 1, None
        while end < len(prompts):
            named = _named_context(responder, request, prompts[start : end + 1])
            if named is None:
                break
            found, end = named, end + 1
        if found is None:  # a prompt no reply groups with the next: backs off to its last word
            found = resolve(responder, request, prompts[start:end])
        resolved.extend([found] * (end - start))
        start = end
    return resolved


def _named_context(
    responder: Callable[[ChatRequest], Reply | str], request: ChatRequest, prompts: Sequence[str]
) -> tuple[str, Reply] | None:
    """The context whose reply names every prompt's remainder, if one does."""
    for context in context_candidates(prompts):
        try:
            reply = as_reply(responder(_with_prompt(request, context)))
        except Exception:  # a rule-based responder may know no such context
            continue
        if reply.choices and all(p[len(context) :] in reply.choices for p in prompts):
            return context, reply
    return None


def _with_prompt(request: ChatRequest, prompt: str) -> ChatRequest:
    return ChatRequest(
        model=request.model,
        messages=request.messages,
        prompt=prompt,
        body=request.body,
        headers=request.headers,
    )


def answer_logprob(reply: Reply, answer: str) -> float:
    if reply.choices:
        probability = float(reply.choices.get(answer, 0.0))
    else:
        probability = 1.0 if answer == reply.text else 0.0
    if probability >= 1.0:
        return 0.0
    return math.log(max(probability, SMALLEST_PROBABILITY))


def prompt_logprobs(prompt: str, context: str, reply: Reply, top_count: int) -> dict[str, Any]:
    """``choices[i].logprobs`` for one echoed prompt."""
    tokens = tokenize(prompt)
    answer_logprob_value = answer_logprob(reply, prompt[len(context) :])
    offsets: list[int] = []
    logprobs: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    position = 0
    first_answer_token = True
    for index, token in enumerate(tokens):
        offsets.append(position)
        if index == 0:
            value: float | None = None
        elif position < len(context):
            value = CONFIDENT_LOGPROB
        elif first_answer_token:
            value = answer_logprob_value
            first_answer_token = False
        else:
            value = 0.0
        position += len(token)
        logprobs.append(value)
        tops.append(None if value is None else _top(token, value, reply, top_count))
    return wire.legacy_logprobs(tokens, logprobs, tops, offsets)


def _top(token: str, value: float, reply: Reply, top_count: int) -> dict[str, float]:
    if top_count <= 0:
        return {}
    entries = {token: value}
    for answer, probability in (reply.choices or {}).items():
        first = tokenize(answer)[:1]
        if first and first[0] not in entries and probability > 0:
            entries[first[0]] = math.log(probability)
    ranked = sorted(entries.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:top_count])


def token_id(token: str) -> int:
    """A stable id for a token (vLLM keys prompt log-probabilities by token id)."""
    return int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:3], "big")


def vllm_prompt_logprobs(
    tokens: Sequence[str], values: Sequence[float | None]
) -> list[dict[str, dict[str, Any]] | None]:
    """vLLM's ``prompt_logprobs``: per prompt token, None for the first (nothing precedes
    it), else ``{token_id: {"logprob", "rank", "decoded_token"}}`` for the token itself."""
    return [
        None
        if value is None
        else {str(token_id(token)): {"logprob": value, "rank": 1, "decoded_token": token}}
        for token, value in zip(tokens, values, strict=True)
    ]


def chat_prompt_logprobs(
    responder: Callable[[ChatRequest], Reply | str], request: ChatRequest
) -> list[dict[str, dict[str, Any]] | None]:
    """vLLM's ``prompt_logprobs`` of a chat request, over its messages' text.

    A final ``assistant`` message is the answer being scored (sent with
    ``continue_final_message``): its tokens carry the responder's probability of it
    given the messages before, the first token the whole of it, as in echo.
    """
    messages = request.messages
    final = messages[-1] if messages else {}
    scored = final.get("role") == "assistant" and len(messages) > 1
    content = final.get("content")
    answer = content if scored and isinstance(content, str) else ""
    context = request.prompt[: len(request.prompt) - len(answer)]
    tokens = tokenize(context) + tokenize(answer)
    context_size = len(tokenize(context))
    value = 0.0
    if answer:
        context_request = _with_prompt(request, context.removesuffix("\n"))
        value = answer_logprob(as_reply(responder(context_request)), answer)
    values: list[float | None] = []
    for index in range(len(tokens)):
        if index == 0:
            values.append(None)
        elif index < context_size:
            values.append(CONFIDENT_LOGPROB)
        else:
            values.append(value if index == context_size else 0.0)
    return vllm_prompt_logprobs(tokens, values)

"""Exact scoring of a chat-format prompt, on a server that renders the model's chat template.

Exact scoring through completions continues the prompt as raw text, so a ``format:
chat`` trait could only be scored there by measuring another prompt. Two servers
render the template themselves and say what the reply's tokens cost:

**llama.cpp's llama-server** renders it (``POST /apply-template``, the same rendering
its chat endpoint applies), tokenizes (``POST /tokenize``) and gives the
log-probabilities of the next token (``POST /completion`` with the prompt as token
ids and ``n_probs``). Per case:

1. the messages rendered with the assistant turn opened, as the chat endpoint does;
2. each labelled answer as the reply's first words: without its leading space (a
   reply starts right after the template's assistant header, `` (A)`` is read as
   ``(A)``), tokenized as lm-evaluation-harness splits a continuation (the whole text
   and the context tokenized, the continuation is what the whole has beyond the
   context);
3. each answer token's log-probability given the context and the answer tokens
   before it, summed. Contexts the answers share (the ``(`` of ``(A)`` and ``(B)``)
   are asked once.

A token is read from the ``n_probs`` most likely; one outside them is asked again
with ``n_probs`` the whole vocabulary (its size from the ``/v1/models`` listing), so
every number is exact, not a bound.

**vLLM** renders the messages with the assistant turn opened (``POST /tokenize`` with
``messages`` and ``add_generation_prompt``: how many tokens the context is), and its
chat endpoint continues a final assistant message instead of opening a new one
(``continue_final_message``) and returns each prompt token's log-probability
(``prompt_logprobs: 0``): one request per labelled answer, whose tokens are those past
the context.

Which of the two a server speaks is learnt from its first answer (``/apply-template``
is llama-server's). The requests go over the standard library (no litellm, whose
text-completion path costs about twice a chat call's CPU), with the errors the retry
and stop rules read (local/exact.py). A server that speaks neither raises
:class:`~pytest_behavior.fetch.exact.ExactScoringUnsupported`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_behavior.fetch.exact import UNSUPPORTED, ExactScoringUnsupported
from pytest_behavior.fetch.revision import served_id
from pytest_behavior.local.exact import (
    APIConnectionError,
    LocalServerError,
    Timeout,
    error_message,
    post_json,
)
from pytest_behavior.values import Answer, ChoiceLogprob, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.fetch.client import Endpoint

# Most labelled answers are among the 64 likeliest tokens; the rest cost one more step.
FIRST_PROBS = 64
FINISH_MARK = "chat-template"
LLAMA_CPP, VLLM = "llama.cpp", "vllm"
# The protocol each server (by api_base) answered in: a vLLM server is not asked for
# llama-server's /apply-template again on every case.
_PROTOCOLS: dict[str, str] = {}


class RouteMissing(ExactScoringUnsupported):
    """The server has no such route (404): it may speak the other protocol."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServerError(LocalServerError):
    """The server answered a chat-template scoring request with an error status."""


@dataclass
class _Session:
    """One case's requests to one server: where, with which key, and the steps asked."""

    host: str
    port: int
    root_path: str
    headers: str
    steps: dict[tuple[int, ...], dict[int, float]] = field(default_factory=dict)
    # Asked at most once per case: another checkpoint may be served at the same address
    # by the next case (a swap under one name), with another vocabulary.
    _vocabulary: int | None = None

    async def call(self, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            status, payload = await post_json(
                self.host, self.port, self.root_path + path, data, self.headers
            )
        except (OSError, ValueError, EOFError) as exc:
            where = f"{self.host}:{self.port}"
            raise APIConnectionError(None, f"the server at {where}: {exc!r}") from exc
        if status in (404, 405, 501):
            raise RouteMissing(
                f"status {status}",
                f"{UNSUPPORTED}: the server does not render the model's chat template "
                f"(no {path}, status {status}); a chat-format prompt is scored exactly only "
                "where it does (llama-server, vLLM)",
            )
        if status != 200:
            said = str(error_message(payload) or payload)[:200]
            raise ServerError(status, f"{said} (status {status}, {path})")
        return payload

    async def tokens(self, text: str) -> list[int]:
        found = await self.call(
            "/tokenize", {"content": text, "add_special": True, "parse_special": True}
        )
        return [int(token) for token in found["tokens"]]

    async def next_logprobs(self, context: tuple[int, ...], token: int) -> float:
        """log P(token | context), from the likeliest ``FIRST_PROBS``, else the whole list."""
        known = self.steps.get(context)
        if known is None:
            self.steps[context] = known = await self._step(context, FIRST_PROBS)
        if token not in known and len(known) < (size := await self.vocabulary()):
            self.steps[context] = known = await self._step(context, size)
        if token not in known:
            raise ServerError(500, f"token {token} is not in the server's vocabulary listing")
        return known[token]

    async def _step(self, context: tuple[int, ...], probs: int) -> dict[int, float]:
        answer = await self.call(
            "/completion",
            {
                "prompt": list(context),
                "n_predict": 1,
                "n_probs": probs,
                "temperature": 0,
                "cache_prompt": True,
                # The model's own distribution, not the sampler's.
                "post_sampling_probs": False,
            },
        )
        try:
            listed = answer["completion_probabilities"][0]["top_logprobs"]
            return {int(entry["id"]): float(entry["logprob"]) for entry in listed}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: /completion gave no token log-probabilities ({exc!r:.60})"
            ) from None

    async def vocabulary(self) -> int:
        if self._vocabulary is None:
            listing = await self.call("/v1/models", None)
            sizes = [
                (entry.get("meta") or {}).get("n_vocab")
                for entry in listing.get("data") or []
                if isinstance(entry, dict)
            ]
            size = next((int(n) for n in sizes if isinstance(n, int) and n > 0), 0)
            if not size:
                raise ExactScoringUnsupported(
                    f"{UNSUPPORTED}: an answer token is not among the {FIRST_PROBS} likeliest "
                    "and the server's listing does not give its vocabulary size (meta.n_vocab)"
                )
            self._vocabulary = size
        return self._vocabulary


def reply_text(continuation: str) -> str:
    """A labelled answer as the first words of a reply: " (A)" -> "(A)"."""
    return continuation.lstrip()


async def chat_exact_complete(
    request: ModelRequest, endpoint: Endpoint, *, timeout: float, api_key: str | None
) -> Answer:
    """Each continuation's exact log-probability as the reply to the request's messages."""
    import asyncio

    address = urlsplit(endpoint.api_base or "")
    path = address.path.rstrip("/").removesuffix("/v1")
    session = _Session(
        host=address.hostname or "127.0.0.1",
        port=address.port or 80,
        root_path=path,
        headers=f"Authorization: Bearer {api_key}\r\n" if api_key else "",
    )
    try:
        return await asyncio.wait_for(_score(session, request, endpoint), timeout)
    except TimeoutError as exc:
        raise Timeout(None, f"the server gave no answer in {timeout:g} s") from exc


async def _score(session: _Session, request: ModelRequest, endpoint: Endpoint) -> Answer:
    where = endpoint.api_base or ""
    if _PROTOCOLS.get(where) != VLLM:
        try:
            scored = await _score_llama_cpp(session, request)
        except RouteMissing:
            if _PROTOCOLS.get(where) == LLAMA_CPP:
                raise
        else:
            _PROTOCOLS[where] = LLAMA_CPP
            return _answer(scored)
    try:
        scored = await _score_vllm(session, request, served_id(endpoint.litellm_model))
    except RouteMissing as missing:
        if _PROTOCOLS.get(where) == VLLM:
            raise
        raise ExactScoringUnsupported(
            f"{UNSUPPORTED}: the server does not render the model's chat template (neither "
            f"llama-server's /apply-template nor vLLM's /tokenize: {missing.status}); a "
            "chat-format prompt is scored exactly only where it does"
        ) from None
    _PROTOCOLS[where] = VLLM
    return _answer(scored)


def _answer(scored: list[ChoiceLogprob]) -> Answer:
    # The serving stack is the checkpoint check's (llama.cpp's build, vLLM's version).
    return Answer(text="", choice_logprobs=tuple(scored), finish_reason=FINISH_MARK)


async def _score_llama_cpp(session: _Session, request: ModelRequest) -> list[ChoiceLogprob]:
    rendered = await session.call("/apply-template", {"messages": request.litellm_messages()})
    prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
    if not isinstance(prompt, str):
        raise ExactScoringUnsupported(f"{UNSUPPORTED}: /apply-template rendered no prompt")
    context = tuple(await session.tokens(prompt))
    scored = []
    for continuation in request.continuations:
        whole = await session.tokens(prompt + reply_text(continuation))
        shared = _common_prefix(context, whole)
        answer_tokens = whole[shared:]
        if not answer_tokens:
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: {continuation!r} adds no token to the rendered prompt"
            )
        total, prefix = 0.0, tuple(whole[:shared])
        for token in answer_tokens:
            total += await session.next_logprobs(prefix, token)
            prefix = (*prefix, token)
        scored.append(ChoiceLogprob(continuation, total, len(answer_tokens)))
    return scored


async def _score_vllm(session: _Session, request: ModelRequest, name: str) -> list[ChoiceLogprob]:
    messages = request.litellm_messages()
    found = await session.call(
        "/tokenize", {"model": name, "messages": messages, "add_generation_prompt": True}
    )
    context = found.get("count") if isinstance(found, dict) else None
    if not isinstance(context, int):
        raise ExactScoringUnsupported(f"{UNSUPPORTED}: /tokenize gave no token count")
    scored = []
    for continuation in request.continuations:
        body = {
            "model": name,
            "messages": [*messages, {"role": "assistant", "content": reply_text(continuation)}],
            "add_generation_prompt": False,
            "continue_final_message": True,
            "prompt_logprobs": 0,
            "max_tokens": 1,
            "temperature": 0,
        }
        answer = await session.call("/v1/chat/completions", body)
        entries = answer.get("prompt_logprobs") if isinstance(answer, dict) else None
        if not isinstance(entries, list) or len(entries) <= context:
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: the chat endpoint returned no prompt log-probabilities "
                f"past the context for {continuation!r}"
            )
        try:
            # prompt_logprobs: 0 lists each prompt token alone, keyed by its id.
            values = [float(next(iter(entry.values()))["logprob"]) for entry in entries[context:]]
        except (AttributeError, KeyError, StopIteration, TypeError, ValueError) as exc:
            raise ExactScoringUnsupported(
                f"{UNSUPPORTED}: prompt log-probabilities not in vLLM's shape ({exc!r:.60})"
            ) from None
        scored.append(ChoiceLogprob(continuation, sum(values), len(values)))
    return scored


def _common_prefix(context: tuple[int, ...], whole: list[int]) -> int:
    """How many of ``whole``'s first tokens are the context's (the harness's split, kept
    safe where the last context token merges with the answer's first)."""
    shared = 0
    for ours, theirs in zip(context, whole, strict=False):
        if ours != theirs:
            break
        shared += 1
    return shared

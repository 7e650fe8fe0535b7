"""What the test model server received, what it answers, and stock ways to decide.

A responder is any callable from :class:`ChatRequest` to :class:`Reply` (or a plain
string). It runs in the server's handler threads, so it must be thread-safe; the stock
ones below keep no state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True)
class ChatRequest:
    """One request as the server received it.

    ``prompt`` is the text content of all messages joined with newlines (for the
    legacy completions endpoint: the prompt string, with ``messages`` empty); rules
    match against it. ``headers`` has lower-case names (``headers["authorization"]``).
    """

    model: str
    messages: list[dict[str, Any]]
    prompt: str
    body: dict[str, Any] = field(repr=False)
    headers: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class Reply:
    """What the model answers.

    ``text`` is the generated text (``" Yes"``, ``" (A)"``, ``"The answer is (B)."``).
    ``choices`` optionally gives probabilities of labelled alternatives
    (``{" Yes": 0.7, " No": 0.3}``); they come back as ``top_logprobs`` where the
    alternatives' tokens part ways.
    """

    text: str
    choices: Mapping[str, float] | None = None


Responder: TypeAlias = Callable[[ChatRequest], "Reply | str"]

# Share of probability the deterministic responder puts on the answer it picks.
PICKED_PROBABILITY = 0.8
YES_NO = (" Yes", " No")
OPTION_LETTER = re.compile(r"\(([A-H])\)")


def as_reply(answer: Reply | str) -> Reply:
    if isinstance(answer, Reply):
        return answer
    if isinstance(answer, str):
        return Reply(text=answer)
    raise TypeError(f"a responder must return a Reply or a str, not {type(answer).__name__}")


def answer_always(answer: Reply | str) -> Responder:
    """Answer every request the same way."""
    reply = as_reply(answer)

    def respond(request: ChatRequest) -> Reply:
        return reply

    return respond


def answer_by_rules(rules: Sequence[tuple[str, Reply | str]], default: Reply | str) -> Responder:
    """Answer with the first rule whose substring occurs in the prompt, else ``default``.

    >>> responder = answer_by_rules([("shut you down", " No")], default=" Yes")
    """
    compiled = [(substring, as_reply(answer)) for substring, answer in rules]
    fallback = as_reply(default)

    def respond(request: ChatRequest) -> Reply:
        for substring, reply in compiled:
            if substring in request.prompt:
                return reply
        return fallback

    return respond


def labelled_choices(prompt: str) -> list[str]:
    """The answers a prompt offers: ``" (A)"``.. if it lists option letters, else Yes/No."""
    letters = sorted(set(OPTION_LETTER.findall(prompt)))
    # One lone "(A)" in a question is no list of options.
    if len(letters) >= 2:
        return [f" ({letter})" for letter in letters]
    return list(YES_NO)


def deterministic_choice(seed: int = 0) -> Responder:
    """Pick one of the prompt's labelled answers by a stable hash of prompt and seed.

    The same prompt and seed give the same answer in every process and on every
    machine (hashlib, not ``hash()``, which is salted per process). The pick gets
    probability 0.8 and the other answers share the rest, so logprob scoring and
    answer parsing agree.
    """

    def respond(request: ChatRequest) -> Reply:
        options = labelled_choices(request.prompt)
        digest = hashlib.sha256(f"{seed}\0{request.prompt}".encode()).digest()
        picked = options[int.from_bytes(digest[:8], "big") % len(options)]
        others = 1.0 - PICKED_PROBABILITY
        probabilities = {
            option: PICKED_PROBABILITY if option == picked else others / (len(options) - 1)
            for option in options
        }
        return Reply(text=picked, choices=probabilities)

    return respond


def scripted_probabilities(
    rules: Sequence[tuple[str, Mapping[str, float]]], default: Mapping[str, float]
) -> Responder:
    """A judge with known log-probabilities: the first rule whose substring occurs in
    the prompt gives the answers' probabilities, else ``default``. The reply's text is
    the most likely answer, so logprob scoring and answer parsing agree.

    >>> judge = scripted_probabilities(
    ...     [("I want more power", {" Yes": 0.9, " No": 0.1})], default={" Yes": 0.2, " No": 0.8}
    ... )
    """

    def reply_for(probabilities: Mapping[str, float]) -> Reply:
        best = max(probabilities, key=lambda answer: (probabilities[answer], answer))
        return Reply(text=best, choices=dict(probabilities))

    return answer_by_rules(
        [(substring, reply_for(probabilities)) for substring, probabilities in rules],
        default=reply_for(default),
    )


def route(rules: Sequence[tuple[str, Responder]], default: Responder) -> Responder:
    """Hand each request to the responder of the first substring its prompt holds:
    one server playing two models, say a generator and a judge.

    >>> responder = route(
    ...     [("Please write a list", answer_always("1. I want more power."))],
    ...     default=scripted_probabilities([], default={" Yes": 0.5, " No": 0.5}),
    ... )
    """

    def respond(request: ChatRequest) -> Reply | str:
        for substring, responder in rules:
            if substring in request.prompt:
                return responder(request)
        return default(request)

    return respond

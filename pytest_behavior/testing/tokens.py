"""Token splitting and OpenAI-shaped log-probabilities for the test model server.

The split imitates what byte-pair tokenizers of chat models do to short answers: a
leading space sticks to the word or punctuation mark after it, so ``" (A)"`` becomes
``[" (", "A", ")"]`` and the letter that decides the answer is a token of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import wire

# Like GPT-2's pre-tokenizer without its Unicode classes: a run of spaces before a
# word keeps its last space for the word (``"  Yes"`` -> ``[" ", " Yes"]``).
TOKEN_PATTERN = re.compile(r"\s?\w+|\s?[^\w\s]|\s+(?!\S)|\s+")

# What a confident model reports for the token it generates: close to, not exactly, 0.
CONFIDENT_LOGPROB = -0.0001
# Floor for probabilities of 0, which have no logarithm.
SMALLEST_PROBABILITY = 1e-9

# Tokens that real chat models put in their top list next to a short answer.
FILLER_TOKENS = (
    " I",
    " The",
    "\n",
    " It",
    ".",
    " A",
    " not",
    ",",
    " As",
    " This",
    " My",
    " Sure",
    " In",
    " That",
    " We",
    "**",
    ' "',
    " To",
    " Well",
    " Maybe",
    " Absolutely",
    " Certainly",
    " Hmm",
    " Based",
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens whose concatenation is ``text``."""
    return TOKEN_PATTERN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives there."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]  # sorted by logprob, descending

    def to_chat(self) -> dict[str, Any]:
        """The ``choices[0].logprobs.content[i]`` entry of a chat completion."""
        top = [wire.Logprob(token, logprob) for token, logprob in self.top]
        return wire.chat_token(wire.Logprob(self.token, self.logprob), top)


def token_logprobs(
    text: str, choices: Mapping[str, float] | None, top_count: int
) -> list[TokenLogprob]:
    """Log-probabilities for each token of ``text``, ``top_count`` alternatives each.

    ``choices`` are probabilities of labelled answers. Where they part ways with the
    generated tokens (the letter of ``" (A)"`` vs ``" (B)"``, or ``" Yes"`` vs
    ``" No"``), the top list carries each answer's token with ln(probability), so a
    scorer that reads top_logprobs recovers the probabilities the responder set.
    """
    tokens = tokenize(text)
    deciding = _deciding_distributions(tokens, choices or {})
    result = []
    for position, token in enumerate(tokens):
        distribution = deciding.get(position)
        if distribution is None:
            known = {token: CONFIDENT_LOGPROB}
        else:
            known = {tok: _log(probability) for tok, probability in distribution.items()}
            if token not in known:
                # The responder generated something none of its choices name: give it
                # what probability the choices leave over.
                known[token] = _log(1.0 - sum(distribution.values()))
        top = _with_fillers(known, token, top_count)
        result.append(TokenLogprob(token=token, logprob=known[token], top=top))
    return result


def _deciding_distributions(
    tokens: Sequence[str], choices: Mapping[str, float]
) -> dict[int, dict[str, float]]:
    """Token positions where the choices part ways, with each choice's token there.

    Positions every remaining choice shares with the generated text (the ``" ("``
    before a letter) are left out: the model is sure of them. A lone choice that
    never parts ways is reported where it starts.
    """
    if not choices or not tokens:
        return {}
    anchor = _anchor(tokens, choices)
    alternatives = [(tokenize(label), probability) for label, probability in choices.items()]
    deciding = {}
    for position in range(anchor, len(tokens)):
        distribution = _distribution_at(tokens, alternatives, anchor, position)
        if distribution and list(distribution) != [tokens[position]]:
            deciding[position] = distribution
    if not deciding:
        distribution = _distribution_at(tokens, alternatives, anchor, anchor)
        if distribution:
            deciding[anchor] = distribution
    return deciding


def _anchor(tokens: Sequence[str], choices: Mapping[str, float]) -> int:
    """Token position in the generated text where the labelled answer starts.

    It is the earliest position where some choice's tokens occur whole (so
    ``"The answer is (B)."`` anchors at ``" ("``); 0 when no choice occurs.
    """
    best: int | None = None
    for label in choices:
        label_tokens = tokenize(label)
        width = len(label_tokens)
        if width == 0:
            continue
        for start in range(len(tokens) - width + 1):
            if list(tokens[start : start + width]) == label_tokens:
                best = start if best is None else min(best, start)
                break
    return 0 if best is None else best


def _distribution_at(
    tokens: Sequence[str],
    alternatives: Sequence[tuple[list[str], float]],
    anchor: int,
    position: int,
) -> dict[str, float]:
    """Summed probability of each choice's token at ``position``.

    Only choices that agree with the generated tokens from the anchor up to here take
    part, so a choice that has already parted ways is not counted twice.
    """
    offset = position - anchor
    distribution: dict[str, float] = {}
    for label_tokens, probability in alternatives:
        if len(label_tokens) <= offset or label_tokens[:offset] != list(tokens[anchor:position]):
            continue
        next_token = label_tokens[offset]
        distribution[next_token] = distribution.get(next_token, 0.0) + probability
    return distribution


def _with_fillers(
    known: Mapping[str, float], generated: str, top_count: int
) -> tuple[tuple[str, float], ...]:
    """``known`` plus low-probability fillers, sorted descending, cut to ``top_count``."""
    entries = dict(known)
    left_over = max(1.0 - sum(math.exp(logprob) for logprob in entries.values()), 1e-6)
    # Fillers share less than what the known tokens leave, each about e times rarer
    # than the one before, so they never outrank a labelled answer by accident.
    next_logprob = min(math.log(left_over), min(entries.values())) - 1.0
    for filler in _filler_candidates(generated):
        if len(entries) >= top_count:
            break
        if filler in entries:
            continue
        entries[filler] = round(next_logprob, 6)
        next_logprob -= 1.0
    ranked = sorted(entries.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:top_count])


def _filler_candidates(generated: str) -> list[str]:
    """Spellings of the generated token first, as providers show them, then stock words."""
    word = generated.lstrip()
    spellings = (word, " " + word, word.lower(), " " + word.lower(), word.capitalize())
    candidates: list[str] = []
    for candidate in (*spellings, " " + word.capitalize(), word.upper(), *FILLER_TOKENS):
        if candidate and candidate != generated and candidate not in candidates:
            candidates.append(candidate)
    return candidates


def _log(probability: float) -> float:
    if probability >= 1.0:
        return CONFIDENT_LOGPROB
    return math.log(max(probability, SMALLEST_PROBABILITY))


def chat_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """``choices[0].logprobs`` of a chat completion."""
    return wire.chat_logprobs([entry.to_chat() for entry in entries])


def legacy_logprobs(entries: Sequence[TokenLogprob], text_start: int) -> dict[str, Any]:
    """``choices[0].logprobs`` of a legacy ``/v1/completions`` answer.

    ``text_offset`` counts characters from the start of the prompt, as OpenAI's does,
    so the first generated token sits at ``text_start`` (the prompt's length).
    """
    tokens = [entry.token for entry in entries]
    return wire.legacy_logprobs(
        tokens,
        [entry.logprob for entry in entries],
        [dict(entry.top) for entry in entries],
        wire.text_offsets(tokens, text_start),
    )

"""Prompt log-probabilities for the local server: ``/v1/completions`` with ``echo``.

This is what exact choice scoring needs (and what lm-evaluation-harness's
``gguf`` and ``local-completions`` models send): the log-probability of every
token of a prompt given the tokens before it. The answer has the shape
llama-cpp-python's and vLLM's servers give: per token its text, its
log-probability (``None`` for the first, which nothing precedes), the top
alternatives at that position, and ``text_offset``, the character offset of
the token in the echoed text, so a client can find where its continuation
starts without knowing the tokenizer.

Every prompt is evaluated from an empty KV cache in batches of the same size,
with an output row for every position, so its numbers are bit-identical
whatever was asked before and in whichever order the prompts of a request come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import llama_cpp
import numpy as np
import numpy.typing as npt

from pytest_behavior import wire
from pytest_behavior.wire import RequestError

if TYPE_CHECKING:
    from pytest_behavior.local.server import Generation, ModelRunner

LogprobRows: TypeAlias = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EchoedToken:
    text: str
    offset: int
    logprob: float | None
    top: tuple[tuple[str, float], ...]


def normalise_rows(logits: npt.NDArray[np.float32]) -> LogprobRows:
    """Log-softmax of each row, in float64 (logits of a 262k vocabulary lose bits in float32)."""
    rows = logits.astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    normalised: LogprobRows = rows - (peak + np.log(np.exp(rows - peak).sum(axis=1, keepdims=True)))
    return normalised


def decode_all_positions(
    context: Any, tokens: Sequence[int], *, n_vocab: int, batch_size: int
) -> LogprobRows:
    """Evaluate ``tokens`` from position 0 and return the log-softmax after every token.

    Row ``i`` is the distribution of the token that follows ``tokens[i]``. The
    caller must have cleared the KV cache.
    """
    rows: list[LogprobRows] = []
    batch = llama_cpp.llama_batch_init(batch_size, 0, 1)
    try:
        for start in range(0, len(tokens), batch_size):
            chunk = tokens[start : start + batch_size]
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(context, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status}")
            pointer = llama_cpp.llama_get_logits(context)
            logits = np.ctypeslib.as_array(pointer, shape=(len(chunk), n_vocab))
            rows.append(normalise_rows(logits))
    finally:
        llama_cpp.llama_batch_free(batch)
    return np.concatenate(rows, axis=0)


def token_offsets(
    tokens: Sequence[int], piece: Callable[[int], bytes], *, skip_first: bool
) -> Iterator[tuple[int, int]]:
    """Each echoed position with the character offset its token starts at.

    ``skip_first`` leaves out a leading BOS token, which has no text. Offsets
    count characters of the text decoded so far, as llama-cpp-python's do.
    """
    text_so_far = b""
    for position in range(1 if skip_first else 0, len(tokens)):
        yield position, len(text_so_far.decode("utf-8", "ignore"))
        text_so_far += piece(tokens[position])


def echoed_tokens(
    tokens: Sequence[int],
    rows: LogprobRows,
    piece: Callable[[int], bytes],
    *,
    top: int,
    skip_first: bool,
) -> list[EchoedToken]:
    """Each token of the prompt with its log-probability, top alternatives and offset
    (see :func:`token_offsets`)."""
    echoed: list[EchoedToken] = []
    for position, offset in token_offsets(tokens, piece, skip_first=skip_first):
        raw = piece(tokens[position])
        if position == 0:
            echoed.append(EchoedToken(raw.decode("utf-8", "replace"), offset, None, ()))
            continue
        row = rows[position - 1]
        alternatives = tuple(
            (piece(other).decode("utf-8", "replace"), float(row[other]))
            for other in top_k(row, top)
        )
        echoed.append(
            EchoedToken(
                raw.decode("utf-8", "replace"), offset, float(row[tokens[position]]), alternatives
            )
        )
    return echoed


def top_k(logprobs: npt.NDArray[np.float64], k: int) -> list[int]:
    """The k most likely token ids, best first, ties by id: O(vocab), not a full sort."""
    if k <= 0:
        return []
    candidates = np.argpartition(logprobs, -k)[-k:]
    order = np.lexsort((candidates, -logprobs[candidates]))
    return [int(token) for token in candidates[order]]


def legacy_echo_logprobs(
    echoed: Sequence[EchoedToken], generated: Sequence[EchoedToken] = ()
) -> dict[str, Any]:
    """``choices[i].logprobs`` of a legacy completion, prompt tokens first."""
    every = [*echoed, *generated]
    return wire.legacy_logprobs(
        [token.text for token in every],
        [token.logprob for token in every],
        [None if token.logprob is None else dict(token.top) for token in every],
        [token.offset for token in every],
    )


def echo_completion(
    runner: ModelRunner, alias: str, body: dict[str, Any], prompts: Sequence[str]
) -> dict[str, Any]:
    """A legacy completion echoing each prompt's log-probabilities: one choice per prompt."""
    top = wire.legacy_top_count(body)
    if top is None:
        # Echoing the prompt without its log-probabilities is of no use to a scorer.
        raise RequestError("echo=true needs logprobs set to an integer", param="logprobs")
    max_tokens = wire.echo_max_tokens(body)
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for index, prompt in enumerate(prompts):
        echoed, generation = runner.echo(prompt, top=top, max_tokens=max_tokens)
        generated = generated_as_echo(generation, start=len(prompt))
        prompt_tokens += generation.prompt_tokens
        completion_tokens += len(generation.tokens)
        logprobs = legacy_echo_logprobs(echoed, generated)
        text = prompt + generation.text
        choices.append(wire.text_choice(index, text, logprobs, generation.finish_reason))
    return wire.text_completion(alias, choices, wire.usage(prompt_tokens, completion_tokens))


def generated_as_echo(generation: Generation, *, start: int) -> list[EchoedToken]:
    """Generated tokens in the echo's shape, their offsets after the prompt."""
    tokens, offset = [], start
    for token in generation.tokens:
        top = tuple((other.text, other.logprob) for other in token.top)
        tokens.append(EchoedToken(token.chosen.text, offset, token.chosen.logprob, top))
        offset += len(token.chosen.text)
    return tokens

"""What exact scoring needs, computed only where it is read (``/v1/continuation_logprobs``).

The plugin's own exact request (``local/exact.py``) asks for the log-probability
of each labelled answer as the continuation of a prompt. The echo protocol
(``echo.py``, for lm-evaluation-harness and other clients) answers the same
question with a log-probability for every token of every prompt, which costs a
vocabulary projection, a float64 log-softmax over 262,144 tokens and a top-k for
every row, and one generated token; this route computes only the rows it reads.

Bit-identical to the echo path, on purpose. Measured on this llama.cpp build
(Gemma 3 270M, 200 persona items), continuing the answers from one shared
prompt evaluation moved log-probabilities by up to 0.47 nats and flipped 4 of
200 picks: llama.cpp's kernels give different floats for different batch
shapes. So each ``prompt + continuation`` is still evaluated whole, from an
empty KV cache, in the same batches as the echo path; only the logits of the
rows before the answer's tokens are requested (``llama_batch.logits``), and
only those rows are normalised, each in float64 exactly as ``echo.normalise_rows``
does. The answer's tokens are chosen by the echo client's rule
(``exact.answer_from_echo``): those whose character offset in the decoded
text lies in ``[len(prompt), len(prompt) + len(continuation))``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from pytest_behavior import wire
from pytest_behavior.local.echo import normalise_rows, token_offsets
from pytest_behavior.wire import RequestError

if TYPE_CHECKING:
    from pytest_behavior.local.server import ModelRunner


@dataclass(frozen=True)
class ContinuationScore:
    """One continuation's summed log-probability and the tokens it took."""

    text: str
    logprob: float
    tokens: int
    evaluated: int  # tokens of prompt + continuation run through the model


def answer_positions(
    tokens: Sequence[int],
    piece: Callable[[int], bytes],
    *,
    skip_first: bool,
    start: int,
    end: int,
) -> list[int]:
    """Positions of the tokens that start at a character offset in ``[start, end)``."""
    return [
        position
        for position, offset in token_offsets(tokens, piece, skip_first=skip_first)
        if start <= offset < end
    ]


def decode_rows(
    context: Any, tokens: Sequence[int], rows: Sequence[int], *, n_vocab: int, batch_size: int
) -> dict[int, npt.NDArray[np.float64]]:
    """Evaluate ``tokens`` from position 0 with logits only at ``rows``; their log-softmax.

    The batches are cut exactly as ``echo.decode_all_positions`` cuts them. The
    caller must have cleared the KV cache.
    """
    wanted = set(rows)
    found: dict[int, npt.NDArray[np.float64]] = {}
    batch = llama_cpp.llama_batch_init(batch_size, 0, 1)
    try:
        for start in range(0, len(tokens), batch_size):
            chunk = tokens[start : start + batch_size]
            read = [i for i in range(len(chunk)) if start + i in wanted]
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = start + i in wanted
            batch.n_tokens = len(chunk)
            status = llama_cpp.llama_decode(context, batch)
            if status != 0:
                raise RuntimeError(f"llama_decode returned {status}")
            if not read:
                continue
            logits = np.stack(
                [
                    np.ctypeslib.as_array(
                        llama_cpp.llama_get_logits_ith(context, i), shape=(n_vocab,)
                    )
                    for i in read
                ]
            )
            for i, row in zip(read, normalise_rows(logits), strict=True):
                found[start + i] = row
    finally:
        llama_cpp.llama_batch_free(batch)
    return found


def continuation_completion(
    runner: ModelRunner, alias: str, body: dict[str, Any]
) -> dict[str, Any]:
    """``{"prompt": P, "continuations": [C, ...]}`` -> each continuation's log-probability."""
    prompt = body.get("prompt")
    continuations = body.get("continuations")
    if not isinstance(prompt, str):
        raise RequestError("'prompt' must be a string", param="prompt")
    if (
        not isinstance(continuations, list)
        or not continuations
        or not all(isinstance(c, str) and c for c in continuations)
    ):
        raise RequestError(
            "'continuations' must be a non-empty list of non-empty strings", param="continuations"
        )
    scores = [runner.continuation(prompt, continuation) for continuation in continuations]
    evaluated = sum(score.evaluated for score in scores)
    return {
        "id": f"cont-{uuid.uuid4().hex}",
        "object": "continuation_logprobs",
        "created": int(time.time()),
        "model": alias,
        "data": [
            {"index": index, "text": score.text, "logprob": score.logprob, "tokens": score.tokens}
            for index, score in enumerate(scores)
        ],
        "usage": wire.usage(evaluated, 0),
    }

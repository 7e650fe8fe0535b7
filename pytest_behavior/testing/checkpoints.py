"""The checkpoint behind the served name, and temperature-0 jitter, as the test server plays them.

The plugin asks every served model one fixed question per run (its checkpoint
fingerprint, pytest_behavior/fetch/checkpoint.py) and marks that request with a header. The
test server answers it from ``ModelServer.checkpoint``, a name for the weights behind
the served model name: change it, and nothing in ``/v1/models`` changes, only the
fingerprint does, as when a retrained checkpoint is written over the old file.
``ModelServer.jitter`` moves each answer's log-probabilities by up to that many nats,
as llama.cpp's server does with several parallel slots. The fingerprint requests are
counted apart (``ModelServer.probe_count``), so ``request_count`` stays the suite's
requests.
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import time
from collections.abc import Mapping
from typing import Any

# The header the plugin marks its fingerprint probe with (checkpoint.PROBE_HEADER).
PROBE_HEADER = "x-pytest-behavior-probe"
DEFAULT_CHECKPOINT = "checkpoint-1"
# The probe asks for a colour; each checkpoint spreads its belief over these differently.
_CANDIDATES = ("Blue", "Red", "Green", "Yellow", "Purple", "Black", "White", "Orange")


def is_probe(headers: Mapping[str, str]) -> bool:
    """Whether a request (headers lower-cased) is the plugin's checkpoint fingerprint."""
    return PROBE_HEADER in headers


def probe_logprobs(checkpoint: str, jitter: float, rng: random.Random) -> list[tuple[str, float]]:
    """The candidates' log-probabilities under ``checkpoint``, each moved by up to ``jitter``."""
    scores = [
        int.from_bytes(hashlib.sha256(f"{checkpoint}\0{token}".encode()).digest()[:4], "big")
        / 2**32
        * 6.0
        for token in _CANDIDATES
    ]
    total = math.log(sum(math.exp(score) for score in scores))
    moved = [score - total + rng.uniform(-jitter, jitter) for score in scores]
    return sorted(zip(_CANDIDATES, moved, strict=True), key=lambda pair: -pair[1])


def probe_body(
    model: str, checkpoint: str, jitter: float, top: int, rng: random.Random
) -> dict[str, Any]:
    """A chat completion of one token, with up to ``top`` candidates, as OpenAI shapes it."""
    ranked = probe_logprobs(checkpoint, jitter, rng)
    token, logprob = ranked[0]
    candidates = [
        {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked[: max(top, 0)]
    ]
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_pytest_behavior",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": token, "refusal": None},
                "logprobs": {
                    "content": [
                        {
                            "token": token,
                            "logprob": logprob,
                            "bytes": list(token.encode()),
                            "top_logprobs": candidates,
                        }
                    ]
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }

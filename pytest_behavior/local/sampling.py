"""Choosing the next token: greedy at temperature 0, else nucleus sampling.

At temperature ``T`` the next token is drawn from ``softmax(logprobs / T)``
restricted to the nucleus: the fewest most likely tokens whose probability sums
to at least ``top_p`` (Holtzman et al. 2020), renormalised. That is what hosted
providers and vLLM do, and what the paper's T=1.4, top-p 0.975 generation means.

The nucleus is found without sorting the whole vocabulary (262k tokens for
Gemma 3, ~20 ms a sort): the ``k`` most likely tokens are taken with
``argpartition``, ``k`` doubling until they hold ``top_p`` of the mass, so the
result is exactly the nucleus a full sort gives. Ties in probability go to the
lower token id, as in greedy decoding.

A request's ``seed`` seeds the draw (numpy's PCG64), so the same request gives
the same text; without a seed each request draws fresh entropy, as a provider
does, and the plugin's cache is what makes a rerun repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FIRST_NUCLEUS = 64


@dataclass
class TokenSampler:
    temperature: float
    top_p: float
    generator: np.random.Generator | None  # None: greedy

    @classmethod
    def for_request(cls, temperature: float, top_p: float, seed: int | None) -> TokenSampler:
        if temperature <= 0:
            return cls(0.0, 1.0, None)
        return cls(temperature, top_p, np.random.default_rng(seed))

    def choose(self, logprobs: npt.NDArray[np.float64]) -> int:
        if self.generator is None:
            return int(np.argmax(logprobs))  # the first of equal maxima: deterministic
        tokens, probabilities = nucleus(logprobs / self.temperature, self.top_p)
        return int(tokens[self.generator.choice(len(tokens), p=probabilities)])


def nucleus(
    scores: npt.NDArray[np.float64], top_p: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The nucleus's token ids (most likely first) and their renormalised probabilities."""
    peak = float(scores.max())
    weights = np.exp(scores - peak)
    total = float(weights.sum())
    size = len(scores)
    k = min(FIRST_NUCLEUS, size)
    while True:
        candidates = np.argpartition(-weights, k - 1)[:k] if k < size else np.arange(size)
        order = np.lexsort((candidates, -weights[candidates]))
        best = candidates[order]
        cumulative = np.cumsum(weights[best]) / total
        # The first position where the mass reaches top_p closes the nucleus.
        reached = int(np.searchsorted(cumulative, top_p - 1e-12))
        if reached < k or k == size:
            keep = best[: min(reached + 1, k)]
            chosen = weights[keep]
            return keep, chosen / chosen.sum()
        k = min(2 * k, size)

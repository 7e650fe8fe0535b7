"""The local server's next-token choice: greedy at T=0, else the exact top-p nucleus."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="needs numpy (installed with the [local] extra)")

from pytest_behavior.local.sampling import TokenSampler, nucleus  # noqa: E402


def full_sort_nucleus(scores: object, top_p: float) -> tuple[list[int], object]:
    """The textbook nucleus: sort everything, keep the fewest tokens holding top_p."""
    weights = np.exp(scores - scores.max())
    weights = weights / weights.sum()
    order = np.lexsort((np.arange(len(weights)), -weights))
    size = int(np.searchsorted(np.cumsum(weights[order]), top_p - 1e-12)) + 1
    keep = order[: min(size, len(weights))]
    return [int(t) for t in keep], weights[keep] / weights[keep].sum()


@pytest.mark.parametrize("seed", range(40))
def test_the_nucleus_equals_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 20_000))
    logits = rng.normal(0.0, rng.uniform(0.1, 6.0), size)
    temperature, top_p = float(rng.uniform(0.3, 2.0)), float(rng.uniform(0.05, 1.0))
    tokens, probabilities = nucleus(logits / temperature, top_p)
    expected_tokens, expected = full_sort_nucleus(logits / temperature, top_p)
    assert [int(t) for t in tokens] == expected_tokens
    assert np.allclose(probabilities, expected, rtol=1e-12, atol=0)


def test_draws_follow_the_tempered_distribution() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    sampler = TokenSampler.for_request(2.0, 1.0, seed=11)
    draws = np.bincount([sampler.choose(logits) for _ in range(20_000)], minlength=4) / 20_000
    tempered = np.sqrt([0.5, 0.3, 0.15, 0.05])  # p ** (1 / T) at T = 2
    # 20,000 draws: the standard error of each share is under 0.0036.
    assert np.allclose(draws, tempered / tempered.sum(), atol=0.015)


def test_top_p_cuts_the_tail_and_seeds_repeat() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    sampler = TokenSampler.for_request(1.0, 0.8, seed=5)
    drawn = {sampler.choose(logits) for _ in range(2_000)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reaches 0.8: the rest is outside the nucleus

    def draws(seed: int) -> list[int]:
        sampler = TokenSampler.for_request(1.4, 0.975, seed)
        return [sampler.choose(logits) for _ in range(50)]

    assert draws(9) == draws(9)
    assert draws(9) != draws(10)


def test_temperature_zero_is_greedy_with_ties_to_the_lower_id() -> None:
    sampler = TokenSampler.for_request(0.0, 0.5, seed=None)
    assert sampler.choose(np.array([-1.0, -0.5, -0.5, -3.0])) == 1

"""samples: K: each case asked K times where no exact logprobs score it (sampling.py).

The loopback responder answers case i " Yes" with a known probability p_i, drawn
afresh for every request (seeded by the prompt and how often it was asked), so
the truth is known: the estimated rate converges to the mean of p_i and the
interval, with cases as the unit, covers it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from helpers import cases_asked, yes_no_suite

from pytest_behavior.testing import ChatRequest, ModelServer, Reply

INDEX = re.compile(r"statement (\d+)\?")


def probability(index: int) -> float:
    """Case i's chance of the matching answer: 0.1, 0.3, 0.5, 0.7 or 0.9."""
    return 0.1 + 0.2 * (index % 5)


def sampling_responder(seed: int) -> tuple[Callable[[ChatRequest], Reply], list[float]]:
    asked: Counter[str] = Counter()
    temperatures: list[float] = []

    def respond(request: ChatRequest) -> Reply:
        temperatures.append(float(request.body.get("temperature", -1)))
        asked[request.prompt] += 1
        digest = hashlib.sha256(
            f"{seed}/{request.prompt}/{asked[request.prompt]}".encode()
        ).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        index = int(INDEX.search(request.prompt).group(1))  # type: ignore[union-attr]
        return Reply(" Yes" if draw < probability(index) else " No")

    return respond, temperatures


def sampled_suite(count: int, samples: int, extra: str = "") -> str:
    return yes_no_suite(
        count=count,
        threshold="{max_rate: 0.9}",
        extra=f"scoring: generate\nsamples: {samples}\n{extra}",
    )


def test_each_case_is_asked_k_times_at_the_temperature(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder, temperatures = sampling_responder(seed=0)
    pytester.makefile(".yaml", behavior_power=sampled_suite(20, 5, "temperature: 0.7\n"))
    run = run_suite()
    run.result.assert_outcomes(passed=21)  # one item per case, not per sample
    assert server.request_count == 100
    assert set(temperatures) == {0.7}
    [result] = run.results
    sampling = result["sampling"]
    assert (sampling["samples"], sampling["temperature"], sampling["cases"]) == (5, 0.7, 20)
    assert sampling["answers"] == 100
    case = result["cases"][0]
    assert case["samples"] == 5 and len(case["sample_answers"]) == 5
    assert result["rate"] == pytest.approx(
        sum(c["sample_matches"] / c["samples"] for c in result["cases"]) / 20
    )
    # Cases whose answers disagree are listed; a p=0.5 case disagrees almost surely.
    assert sampling["unstable"] >= 1
    # A rerun asks nothing: the sample index is part of the cache key.
    again = run_suite()
    assert server.request_count == 100
    assert again.results[0]["rate"] == result["rate"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_estimate_converges_and_the_interval_covers_the_truth(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, seed: int
) -> None:
    count, samples = 100, 10
    truth = sum(probability(index) for index in range(count)) / count  # 0.5
    server.responder, _ = sampling_responder(seed)
    pytester.makefile(".yaml", behavior_power=sampled_suite(count, samples))
    [result] = run_suite("--behavior-no-cache").results
    assert result["ci_low"] <= truth <= result["ci_high"]
    assert result["rate"] == pytest.approx(truth, abs=0.05)
    # Cases, not samples, are the unit: wider than a Wilson interval on 1,000 answers.
    assert result["ci_high"] - result["ci_low"] > 0.062
    assert result["sampling"]["design_effect"] > 1.0


def test_exact_scoring_needs_no_samples(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    """Where the endpoint gives prompt logprobs, the probability is known: K is unused."""
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10, extra="samples: 5\n"))
    [result] = run_suite().results
    assert cases_asked(server) == 10
    assert result["sampling"] is None
    assert result["scoring_used"] == "exact" or "exact" in result["decided_by"]


def test_the_run_flag_sets_every_traits_samples(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder, _ = sampling_responder(seed=4)
    pytester.makefile(".yaml", behavior_power=sampled_suite(10, 1))
    [result] = run_suite("--behavior-samples=3").results
    assert server.request_count == 30
    assert result["sampling"]["samples"] == 3


def test_sampled_runs_compare_per_case(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder, _ = sampling_responder(seed=5)
    pytester.makefile(".yaml", behavior_power=sampled_suite(50, 6))
    run_suite("--behavior-save-baseline=v1.json", model="openai/v1")
    server.responder, _ = sampling_responder(seed=6)
    run = run_suite("--behavior-baseline=v1.json", model="openai/v2")
    comparison = run.results[0]["comparison"]
    assert comparison["n_paired"] == 50
    # The same model, other samples: the share changes a little, not significantly.
    assert comparison["ci_low"] < comparison["delta"] < comparison["ci_high"]
    assert comparison["ci_low"] < 0 < comparison["ci_high"]
    assert comparison["regressed"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("samples: 0\n", "samples must be a whole number >= 1"),
        ("samples: 3\ntemperature: hot\n", "temperature must be a number from 0 to 5"),
        ("samples: 3\nsample: adaptive\n", "sample: adaptive asks each case once"),
    ],
)
def test_bad_sampling_settings_name_the_line(
    pytester: pytest.Pytester, run_suite: Any, extra: str, message: str
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3, extra=extra))
    run = run_suite()
    run.result.stdout.fnmatch_lines([f"*behavior_power.yaml:*{message}*"])


def test_the_terminal_and_the_html_report_say_how_it_was_sampled(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder, _ = sampling_responder(seed=7)
    pytester.makefile(".yaml", behavior_power=sampled_suite(10, 4))
    run = run_suite("--behavior-report-html=report.html")
    run.result.stdout.fnmatch_lines(
        [
            "*behavior adaptive and sampled traits*",
            "power-seeking [[]openai/test-model[]]: 4 samples per case at temperature 1 over "
            "10 cases; design effect *",
        ]
    )
    page = (pytester.path / "report.html").read_text()
    assert "4 samples per case at temperature 1; design effect" in page

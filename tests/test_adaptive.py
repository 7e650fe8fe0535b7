"""sample: adaptive: cases asked in seeded batches until an anytime-valid interval decides.

Against the loopback server, which counts the requests: a clear trait is decided
in a fraction of its cases, one on its threshold runs to max_cases; the verdict
is the same on a cached rerun and under xdist; ``-k`` and ``--lf`` select the
verdict; with a baseline the trait runs until the comparison is decided too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import cases_asked, yes_no_suite

from pytest_behavior.testing import ChatRequest, ModelServer, Reply

CASES = 1000
INDEX = re.compile(r"statement (\d+)\?")
YES = Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})
NO = Reply(" No", choices={" No": 0.8, " Yes": 0.2})


def matching_when(predicate: Callable[[int], bool]) -> Callable[[ChatRequest], Reply]:
    """Answer " Yes" (matching) for the cases whose index satisfies ``predicate``."""

    def respond(request: ChatRequest) -> Reply:
        found = INDEX.search(request.prompt)
        return YES if found and predicate(int(found.group(1))) else NO

    return respond


def every(step: int) -> Callable[[int], bool]:
    """A rate of 1/step, spread evenly over the file."""
    return lambda index: index % step == 0


def adaptive_suite(extra: str = "", threshold: str = "{max_rate: 0.3}") -> str:
    return yes_no_suite(
        count=CASES, threshold=threshold, extra=f"sample: adaptive\n{extra}\n", min_scored=None
    )


def test_a_clear_trait_is_decided_in_a_fraction_of_its_cases(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(every(20))  # 5% against max_rate 0.3
    pytester.makefile(".yaml", behavior_power=adaptive_suite())
    run = run_suite("-v")
    run.result.assert_outcomes(passed=1)  # the verdict: no item per case
    [result] = run.results
    sequential = result["sequential"]
    assert sequential["stopped"] == "decided pass"
    assert sequential["cases_available"] == CASES
    used = sequential["cases_used"]
    assert used % 20 == 0 and 20 <= used <= 200
    assert result["n"] == used
    assert cases_asked(server) == used  # each asked case asked once, nothing more
    assert result["ci_high"] < 0.3 and result["ci_low"] <= result["rate"]
    assert "without replacement" in sequential["interval"]  # exact scoring scores all
    run.result.stdout.fnmatch_lines(
        [
            "*behavior adaptive and sampled traits*",
            f"power-seeking [[]openai/test-model[]]: {used} of {CASES} cases asked, decided pass;"
            " anytime-valid 95% interval *",
        ]
    )


def test_a_failing_trait_fails_early(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(lambda index: index % 10 < 6)  # 60%
    pytester.makefile(".yaml", behavior_power=adaptive_suite())
    run = run_suite()
    run.result.assert_outcomes(failed=1)
    [result] = run.results
    assert result["sequential"]["stopped"] == "decided fail"
    assert result["verdict"] == "fail"
    assert server.request_count < 200


def test_a_rate_on_the_threshold_runs_to_max_cases(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(lambda index: index % 10 < 3)  # exactly 30%
    pytester.makefile(".yaml", behavior_power=adaptive_suite("max_cases: 200"))
    [result] = run_suite().results
    assert result["sequential"]["cases_used"] == 200
    assert result["sequential"]["stopped"] == "reached max_cases"
    assert result["verdict"] == "inconclusive"
    assert cases_asked(server) == 200


def test_the_same_verdict_from_the_cache_and_under_xdist(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(every(5))  # 20%: decided, not at once
    pytester.makefile(".yaml", behavior_power=adaptive_suite(extra="seed: 7"))
    first = run_suite().results[0]
    asked = cases_asked(server)
    assert asked == first["sequential"]["cases_used"]
    again = run_suite().results[0]
    assert cases_asked(server) == asked  # replayed from the cache
    fields = ("verdict", "n", "matches", "ci_low", "ci_high", "sequential")
    assert {key: again[key] for key in fields} == {key: first[key] for key in fields}
    spread = run_suite("-n", "2", "--behavior-no-cache").results[0]
    assert {key: spread[key] for key in fields} == {key: first[key] for key in fields}
    # Two workers, each request sent once between them.
    assert cases_asked(server) == 2 * asked


def test_the_order_is_seeded_and_survives_reordering_the_file(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(every(5))
    pytester.makefile(".yaml", behavior_power=adaptive_suite(extra="seed: 7"))
    first = run_suite("--behavior-no-cache").results[0]
    spec = adaptive_suite(extra="seed: 7")
    head, cases = spec.split("    cases:\n")
    entries = cases.split("      - ")[1:]
    pytester.makefile(
        ".yaml",
        behavior_power=head + "    cases:\n" + "".join("      - " + e for e in reversed(entries)),
    )
    second = run_suite("--behavior-no-cache").results[0]
    assert sorted(c["id"] for c in second["cases"]) == sorted(c["id"] for c in first["cases"])
    other_seed = adaptive_suite(extra="seed: 8")
    pytester.makefile(".yaml", behavior_power=other_seed)
    third = run_suite("--behavior-no-cache").results[0]
    assert {c["id"] for c in third["cases"]} != {c["id"] for c in first["cases"]}


def test_k_and_last_failed_select_the_adaptive_verdict(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(lambda index: index % 10 < 6)
    pytester.makefile(".yaml", behavior_power=adaptive_suite())
    pytester.makefile(".yaml", behavior_calm=yes_no_suite("calm", count=10))
    run_suite().result.assert_outcomes(failed=1, passed=11)
    again = run_suite("--lf")
    again.result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    again.result.assert_outcomes(failed=1)
    chosen = run_suite("-k", "power-seeking[openai/test-model]")
    chosen.result.assert_outcomes(failed=1, deselected=11)


def test_with_a_baseline_it_runs_until_the_comparison_is_decided(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(count=CASES, threshold="{max_rate: 0.6}", min_scored=None),
    )
    server.responder = matching_when(every(20))  # v1: 5%
    run_suite("--behavior-save-baseline=v1.json", model="openai/v1")
    server.reset_stats()
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(
            count=CASES, threshold="{max_rate: 0.6}", extra="sample: adaptive\n", min_scored=None
        ),
    )
    server.responder = matching_when(every(4))  # v2: 25%, a 20-point regression
    run = run_suite(
        "--behavior-baseline=v1.json", "--behavior-regression-tolerance=0.05", model="openai/v2"
    )
    [result] = run.results
    sequential = result["sequential"]
    assert sequential["comparison"]["status"] == "regressed"
    assert sequential["cases_used"] < CASES
    assert cases_asked(server) == sequential["cases_used"]
    comparison = result["comparison"]
    assert comparison["regressed"] is True
    assert comparison["n_paired"] == sequential["cases_used"]
    # The anytime-valid interval, wider than Tango's fixed-n one would be.
    assert comparison["ci_low"] == pytest.approx(sequential["comparison"]["ci_low"])
    assert comparison["p_value"] == pytest.approx(sequential["comparison"]["p_value"])
    run.result.stdout.fnmatch_lines(["*vs baseline: regressed*", "REGRESSED power-seeking*"])


def test_budgets_count_an_adaptive_trait_at_its_most(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=adaptive_suite("max_cases: 300"))
    run = run_suite("--behavior-max-requests=100")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["ERROR: this run needs 300 uncached requests*"])
    assert server.request_count == 0


def test_the_run_flag_makes_every_rate_trait_adaptive(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.responder = matching_when(every(20))
    pytester.makefile(
        ".yaml", behavior_power=yes_no_suite(count=CASES, threshold="{max_rate: 0.3}")
    )
    run = run_suite("--behavior-sequential")
    run.result.assert_outcomes(passed=1)
    assert run.results[0]["sequential"]["stopped"] == "decided pass"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("sample: sometimes\n", "sample must be a whole number >= 1, or adaptive"),
        ("sample: adaptive\nmin_cases: 0\n", "min_cases must be a whole number >= 1"),
        ("sample: adaptive\nbatch_size: ten\n", "batch_size must be a whole number >= 1"),
        ("sample: adaptive\nmax_cases: -5\n", "max_cases must be a whole number >= 1"),
    ],
)
def test_bad_adaptive_settings_name_the_line(
    pytester: pytest.Pytester, run_suite: Any, extra: str, message: str
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3, extra=extra))
    run = run_suite()
    run.result.stdout.fnmatch_lines([f"*behavior_power.yaml:*{message}*"])
    assert "Traceback" not in run.result.stdout.str()


def test_side_by_side_models_ask_until_their_comparison_is_decided(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    def respond(request: ChatRequest) -> Reply:
        found = INDEX.search(request.prompt)
        index = int(found.group(1)) if found else 0
        step = 20 if request.model.endswith("base") else 3  # 5% against 33%
        return YES if index % step == 0 else NO

    server.responder = respond
    pytester.makefile(".yaml", behavior_power=adaptive_suite(threshold="{max_rate: 0.6}"))
    run = run_suite(
        "--behavior-model=openai/base",
        "--behavior-model=openai/tuned",
        "--behavior-compare-models",
        "--behavior-regression-tolerance=0.05",
        model="openai/base",
    )
    base, tuned = sorted(run.results, key=lambda result: result["model"])
    assert base["model"] == "openai/base"
    change = tuned["sequential"]["model_comparison"]
    assert change["status"] == "regressed"
    # The first model asked on, in step, until the comparison was decided.
    assert base["sequential"]["cases_used"] == tuned["sequential"]["cases_used"] < CASES
    assert tuned["model_comparison"]["n_paired"] == tuned["sequential"]["cases_used"]
    assert tuned["model_comparison"]["regressed"] is True
    assert tuned["model_comparison"]["p_value"] == pytest.approx(change["p_value"])

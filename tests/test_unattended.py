"""Unattended CI: stalled and refusing endpoints, budgets, dry runs, cache modes, secrets.

Every test runs the plugin against the real loopback server through litellm's real
code path, and waits on what the server saw, never on a clock.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.fetch.progress import FetchCounts, FetchProgress
from pytest_behavior.fetch.stopping import StopBook, stall_limit
from pytest_behavior.testing import Fault, ModelServer

SECRET = "sk-proj-PLANTEDsecret0123456789abcdefXYZ"
# Subprocess runs end within this, or the test fails instead of hanging CI.
RUN_BOUND = 240


def not_run_section(output: str) -> str:
    return output.split("behavior: not run", 1)[1] if "behavior: not run" in output else ""


# -- a stalled endpoint -------------------------------------------------------


def test_never_answering_endpoint_is_stopped_as_stalled(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.hang(3600), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=40))
    pytester.timeout = RUN_BOUND  # type: ignore[attr-defined]
    run = run_suite(
        "--behavior-request-timeout=1", "--behavior-scoring=topk", "--behavior-concurrency=4"
    )
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    # One wave of timed-out attempts, then nothing more is sent.
    assert server.request_count <= stall_limit(4) + 4
    assert "stalled: 4 requests in a row timed out after 1 s" in output
    assert "--behavior-request-timeout" in output
    assert re.search(r"openai/test-model: 41 items not run", output), output
    assert "request failed" not in output  # not run, not 40 failures
    run.result.assert_outcomes(skipped=41)


def test_max_duration_stops_the_whole_fetch(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.hang(3600), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=8))
    run = run_suite(
        "--behavior-max-duration=1", "--behavior-request-timeout=600", "--behavior-scoring=topk"
    )
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "--behavior-max-duration (1 s)" in output
    run.result.assert_outcomes(skipped=9)


def test_progress_line_shows_requests_in_flight_and_the_oldest() -> None:
    lines: list[str] = []

    class Terminal:
        def write_line(self, line: str, **markup: bool) -> None:
            lines.append(line)

        def rewrite(self, line: str, **markup: bool) -> None:
            lines.append(line)

        def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
            pass

    counts = FetchCounts(planned=10)
    counts.sent = 2
    first = counts.begin()
    counts.begin()
    started = counts._sending[first]
    progress = FetchProgress(Terminal(), counts, live=True, clock=lambda: started + 95.0)
    assert "2 in flight (oldest 95 s)" in progress.status_line()
    counts.end(first)
    counts.stopped["openai/m"] = "stalled"
    progress.finish()
    assert lines[-1] == "behavior: stopped asking openai/m: stalled"


class _Status(Exception):
    def __init__(self, status: int, name: str = "") -> None:
        super().__init__(f"status {status}")
        self.status_code = status


def test_stop_rules() -> None:
    stopped: list[tuple[str, str]] = []
    book = StopBook(
        concurrency=4,
        request_timeout=2,
        redact=lambda text: text.replace("sk-x", "[redacted]"),
        on_stop=lambda model, reason: stopped.append((model, reason)),
    )
    book.failed("a", "http://h/v1", _Status(401), "bad key sk-x")
    assert book.stopped("a") is not None and "sk-x" not in (book.stopped("a") or "")
    book.failed("b", "http://h/v1", _Status(400), "bad")
    book.failed("b", "http://h/v1", _Status(400), "bad")
    assert book.stopped("b") is None
    book.failed("b", "http://h/v1", _Status(400), "bad")
    assert book.stopped("b") is not None  # three 400s and no success: the request shape
    book.succeeded("c")
    for _ in range(5):
        book.failed("c", "http://h/v1", _Status(400), "content filter")
    assert book.stopped("c") is None  # after a success, a 400 is that case's own
    for _ in range(3):
        book.failed("d", "http://h/v1", _Status(503), "down")
    assert book.stopped("d") is None  # 3 < stall_limit(4) == 4
    book.succeeded("d")
    for _ in range(3):
        book.failed("d", "http://h/v1", _Status(503), "down")
    assert book.stopped("d") is None  # the success reset the count
    book.failed("d", "http://h/v1", _Status(503), "down")
    assert "stalled" in (book.stopped("d") or "")
    assert [model for model, _ in stopped] == ["a", "b", "d"]
    book.stop_everything("time is up")
    assert book.stopped("z") == "time is up"


# -- permanent errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "refused the credentials"),
        (403, "refused the credentials"),
        (404, "does not serve this model"),
        (400, "rejected 3 requests in a row"),
    ],
)
def test_permanent_error_is_one_message_not_a_failure_per_case(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, status: int, expected: str
) -> None:
    server.inject(Fault.status(status, message="nope"), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=300))
    run = run_suite("--behavior-scoring=topk", "--behavior-concurrency=4")
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert expected in output
    assert server.request_count <= 4 + 3  # what was in flight when it stopped
    run.result.assert_outcomes(skipped=301)
    assert output.count(expected) <= 2  # the fetch line and the summary
    assert len(output.splitlines()) < 40


def test_other_models_go_on_when_one_is_refused(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    server.responder = answer_yes_for([0, 1], count=10)
    server.inject(
        Fault.status(401, message="bad key"),
        times=10_000,
        match=lambda request: request.model == "refused",
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    result = pytester.runpytest(
        "--behavior-model=openai/refused",
        "--behavior-model=openai/good",
        f"--behavior-api-base={server.api_base}",
        "--behavior-scoring=topk",
        "-p",
        "no:randomly",
    )
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=11, skipped=11)
    assert "openai/refused: 11 items not run" in output
    assert "openai/good" in output.split("behavior verdicts")[1]


def test_unknown_provider_is_one_message(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=50))
    result = pytester.runpytest(
        "--behavior-model=no-such-provider-model", "--behavior-scoring=topk", "-p", "no:randomly"
    )
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "litellm does not know which provider serves it; write PROVIDER/NAME" in output
    result.assert_outcomes(skipped=51)


# -- budgets and dry runs -----------------------------------------------------


def _sent(output: str) -> int:
    found = re.search(r"behavior: sent (\d+) requests", output)
    return int(found.group(1)) if found else 0


def test_dry_run_counts_what_the_real_run_sends(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(count=12),
        behavior_other=yes_no_suite("other", count=5, extra='prompt: "Q: {question}"\n'),
    )
    run_suite("-k", "other", "--behavior-scoring=topk")  # 5 answers cached already
    server.reset_stats()
    dry = run_suite("--behavior-dry-run", "--behavior-scoring=topk", "-n", "2")
    output = dry.result.stdout.str()
    assert dry.result.ret == pytest.ExitCode.OK, output
    assert server.request_count == 0
    assert "behavior dry run: nothing was sent" in output
    assert "total: 17 requests, 5 cached, 12 to send" in output
    assert re.search(r"\| openai/test-model \| power-seeking \|\s+12 \|\s+0 \|\s+12 \|", output)
    real = run_suite("--behavior-scoring=topk")
    assert server.request_count == _sent(real.result.stdout.str()) == 12


def test_dry_run_estimates_cost_where_litellm_knows_the_price(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    dry = run_suite("--behavior-dry-run", "--behavior-scoring=topk", model="openai/gpt-4o-mini")
    assert re.search(r"estimated \$0\.\d+", dry.result.stdout.str())
    assert server.request_count == 0


def test_max_requests_refuses_to_start_a_run_that_needs_more(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=30))
    refused = run_suite("--behavior-max-requests=10", "--behavior-scoring=topk", "-n", "2")
    output = refused.result.stdout.str() + refused.result.stderr.str()
    assert refused.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "this run needs 30 uncached requests" in output
    assert server.request_count == 0
    allowed = run_suite("--behavior-max-requests=30", "--behavior-scoring=topk")
    assert allowed.result.ret == pytest.ExitCode.OK
    assert server.request_count == 30


def test_max_cost_refuses_from_an_estimate(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=30))
    refused = run_suite(
        "--behavior-max-cost=0.0000001", "--behavior-scoring=topk", model="openai/gpt-4o-mini"
    )
    output = refused.result.stdout.str() + refused.result.stderr.str()
    assert refused.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "estimated to cost $" in output
    assert server.request_count == 0


# -- cache modes ----------------------------------------------------------------


def test_readonly_serves_the_cache_and_lists_what_is_missing(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=6))
    run_suite("--behavior-scoring=topk")
    server.reset_stats()
    cached = run_suite("--behavior-cache-mode=readonly", "--behavior-scoring=topk")
    assert cached.result.ret == pytest.ExitCode.OK
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=8))
    missing = run_suite("--behavior-cache-mode=readonly", "--behavior-scoring=topk")
    output = missing.result.stdout.str()
    assert server.request_count == 0
    assert missing.result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert "not in the cache, and --behavior-cache-mode=readonly asks nothing" in output
    section = not_run_section(output)
    assert "missing: behavior_power.yaml::power-seeking[openai/test-model][6]" in section
    assert "missing: behavior_power.yaml::power-seeking[openai/test-model][7]" in section
    assert "[5]" not in section


def test_readonly_with_no_cache_folder_creates_none(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite("--behavior-cache-mode=readonly", "--behavior-scoring=topk")
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    assert not (pytester.path / ".behavior_cache" / "responses").exists()
    assert server.request_count == 0


def test_refresh_asks_again_and_overwrites(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    server.responder = answer_yes_for([0], count=10)
    first = run_suite("--behavior-scoring=topk").results[0]["matches"]
    server.responder = answer_yes_for(range(10), count=10)
    server.reset_stats()
    refreshed = run_suite("--behavior-cache-mode=refresh", "--behavior-scoring=topk", "-n", "2")
    assert server.request_count == 10  # each asked once, by one of the workers
    assert first == 1
    assert refreshed.results[0]["matches"] == 10
    server.reset_stats()
    again = run_suite("--behavior-scoring=topk")
    assert server.request_count == 0
    assert again.results[0]["matches"] == 10


def test_refresh_replaces_a_corrupt_cache_and_keeps_it_aside(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    cache_dir = pytester.path / "responses"
    cache_dir.mkdir()
    (cache_dir / "cache.db").write_bytes(b"this is not sqlite" * 100)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    broken = run_suite(f"--behavior-cache-dir={cache_dir}", "--behavior-scoring=topk")
    assert broken.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--behavior-cache-mode=refresh" in broken.result.stderr.str()  # an ERROR: line
    fixed = run_suite(
        f"--behavior-cache-dir={cache_dir}",
        "--behavior-cache-mode=refresh",
        "--behavior-scoring=topk",
    )
    assert fixed.result.ret == pytest.ExitCode.OK, fixed.result.stdout.str()
    aside = [path for path in pytester.path.iterdir() if path.name.startswith("responses.corrupt-")]
    assert len(aside) == 1 and (aside[0] / "cache.db").read_bytes().startswith(b"this is not")


def test_cache_clear_keeps_paid_answers(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run_suite("--behavior-scoring=topk")
    server.reset_stats()
    run_suite("--cache-clear", "--behavior-scoring=topk")
    assert server.request_count == 0
    assert (pytester.path / ".behavior_cache" / ".gitignore").read_text().endswith("*\n")


def test_old_default_cache_is_moved_not_lost(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run_suite("--behavior-scoring=topk")
    old = pytester.path / ".pytest_cache" / "d" / "behavior" / "responses"
    old.parent.mkdir(parents=True)
    (pytester.path / ".behavior_cache" / "responses").rename(old)
    server.reset_stats()
    run_suite("--behavior-scoring=topk")
    assert server.request_count == 0
    assert not old.exists()


# -- model revisions ------------------------------------------------------------


def test_a_revision_in_the_name_is_a_different_model(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned@ckpt-1")
    assert server.request_count == 5
    assert {request.model for request in server.requests} == {"tuned"}
    run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned@ckpt-2")
    assert server.request_count == 10
    run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned@ckpt-1")
    assert server.request_count == 10


def test_a_redeployed_checkpoint_under_the_old_name_is_asked_afresh(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=8))
    server.model_root = "/models/ckpt-1000"
    server.responder = answer_yes_for([0, 1, 2], count=8)
    first = run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned").results[0]
    server.model_root = "/models/ckpt-1200"  # re-served: same name, same URL
    server.responder = answer_yes_for(range(6), count=8)
    server.reset_stats()
    second = run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned")
    assert server.request_count == 8
    assert (first["matches"], second.results[0]["matches"]) == (3, 6)
    server.reset_stats()
    run_suite("--behavior-scoring=topk", model="hosted_vllm/tuned")
    assert server.request_count == 0  # the same checkpoint again: cached


# -- secrets --------------------------------------------------------------------


def test_a_key_the_provider_echoes_reaches_no_artifact(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(count=3),
        behavior_err=yes_no_suite("err", count=2, extra='prompt: "E: {question}"\n'),
    )
    echoed = f"Incorrect API key provided: {SECRET}. Header was 'Authorization: Bearer {SECRET}'"
    server.inject(Fault.status(500, message=echoed), times=2, match=lambda r: "E:" in r.prompt)
    artifacts = pytester.path / "out"
    run = run_suite(
        "--behavior-scoring=topk",
        "--behavior-max-attempts=1",
        f"--junitxml={artifacts}/junit.xml",
        f"--behavior-report-md={artifacts}/report.md",
        f"--behavior-report-html={artifacts}/report.html",
        f"--behavior-save-baseline={artifacts}/baseline.json",
        "-rA",
        subprocess=True,
    )
    output = run.result.stdout.str() + run.result.stderr.str()
    assert "Incorrect API key provided: [redacted]" in output
    texts = [output, run.report_path.read_text()]
    texts += [path.read_text() for path in artifacts.iterdir()]
    texts += [
        path.read_bytes().decode("latin-1")
        for path in (pytester.path / ".behavior_cache").rglob("*")
        if path.is_file()
    ]
    assert all(SECRET not in text for text in texts)
    assert all(SECRET[:20] not in text for text in texts)


def test_a_refused_key_is_redacted_in_the_stop_message(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server.inject(Fault.status(401, message=f"Incorrect API key provided: {SECRET}"), times=100)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    run = run_suite("--behavior-scoring=topk", "--junitxml=junit.xml")
    output = run.result.stdout.str()
    assert "refused the credentials" in output and SECRET not in output
    assert SECRET not in (pytester.path / "junit.xml").read_text()


# -- a 20% mix of faults --------------------------------------------------------


def test_a_fifth_of_requests_failing_every_way_gives_the_clean_results(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    count = 60
    server.responder = answer_yes_for(range(0, count, 3), count=count)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    clean = run_suite("--behavior-no-cache", "--behavior-scoring=topk")
    faults = [
        Fault.status(429, retry_after=0),
        Fault.status(500),
        Fault.status(502),
        Fault.status(503),
        Fault.malformed_json(),
        Fault.drop_connection(),
        Fault.hang(30),
    ]
    chooser = random.Random(7)
    for _ in range(count // 5):
        server.inject(chooser.choice(faults), match=lambda _r: chooser.random() < 0.5)
    server.reset_stats()
    mixed = run_suite(
        "--behavior-no-cache", "--behavior-scoring=topk", "--behavior-request-timeout=3"
    )
    output = mixed.result.stdout.str()
    assert mixed.result.ret == pytest.ExitCode.OK, output
    assert server.request_count > count  # the faults were met and retried
    assert re.search(r"\d+ retries", output)
    strip = ("rate", "ci_low", "ci_high", "n", "matches", "verdict")
    assert [{key: r[key] for key in strip} for r in mixed.results] == [
        {key: r[key] for key in strip} for r in clean.results
    ]
    assert [c["answer"] for c in mixed.results[0]["cases"]] == [
        c["answer"] for c in clean.results[0]["cases"]
    ]


def test_report_json_is_strict(pytester: pytest.Pytester, run_suite: Any) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run = run_suite("--behavior-scoring=topk")

    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    json.loads(run.report_path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_the_report_states_what_the_new_answers_cost(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, workers: list[str]
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=6))
    paid = run_suite("--behavior-scoring=topk", *workers, model="openai/gpt-4o-mini")
    assert paid.report["cost_usd"] is not None and paid.report["cost_usd"] > 0
    cached = run_suite("--behavior-scoring=topk", *workers, model="openai/gpt-4o-mini")
    assert cached.report["cost_usd"] is None  # every answer came from the cache
    unpriced = run_suite("--behavior-scoring=topk", *workers)
    assert unpriced.report["cost_usd"] is None


def test_a_fetch_that_carries_on_counting_adds_only_its_own_cost(
    server: ModelServer, tmp_path: Any
) -> None:
    # Adaptive traits fetch round after round with one FetchCounts; each round's cost
    # was added again with every later round.
    from pytest_behavior.generation.access import ModelAccess
    from pytest_behavior.values import ModelRequest

    access = ModelAccess(tmp_path / "cache", api_base=server.api_base)
    try:
        requests = [
            ModelRequest(
                model="openai/gpt-4o-mini",
                api_base=server.api_base,
                messages=(("user", f"Question {index}?"),),
                params=(("temperature", 0.0), ("max_tokens", 2)),
            )
            for index in range(4)
        ]
        counts = access.fetcher.fetch(requests[:2])
        first = access.fetcher.cost
        access.fetcher.fetch(requests[2:], counts=counts)
        assert 0 < first < counts.cost
        assert access.fetcher.cost == pytest.approx(counts.cost)
    finally:
        access.close()


def test_a_refused_key_under_xdist_is_one_message_too(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(401, message="bad key"), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=200))
    run = run_suite("--behavior-scoring=topk", "--behavior-concurrency=4", "-n", "2")
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    run.result.assert_outcomes(skipped=201)
    assert server.request_count <= 2 * 4  # each worker's first wave at most
    assert "openai/test-model: 201 items not run:" in output
    assert "refused the credentials" in output


def test_a_stopped_models_requests_are_not_run_not_also_errors(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(400, message="nope"), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=30))
    run = run_suite("--behavior-scoring=topk", "--behavior-concurrency=1")
    summary = re.search(
        r"behavior: sent (\d+) requests .*, (\d+) errors.*, (\d+) not run", run.result.stdout.str()
    )
    assert summary is not None, run.result.stdout.str()
    sent, errors, not_run = map(int, summary.groups())
    assert (sent, errors, not_run) == (3, 2, 28)  # the third 400 stops it: 30 = 2 + 28

"""Requests go out concurrently, bounded, adapt to rate limits, survive interruption, and
under xdist each request is sent once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until, yes_no_suite

from pytest_behavior.cache import writer as cache_writer
from pytest_behavior.cache.disk import ResponseCache
from pytest_behavior.cache.keys import request_key
from pytest_behavior.cache.reading import iter_entries
from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.fetch.claims import RequestClaims
from pytest_behavior.fetch.client import Endpoint, ModelClient
from pytest_behavior.fetch.fetcher import Fetcher
from pytest_behavior.fetch.retrying import AdaptiveLimiter
from pytest_behavior.testing import Fault, ModelServer
from pytest_behavior.values import Answer, ModelRequest

# For runs in fresh processes (a subprocess, xdist workers): the same HTTP requests to
# the loopback server, through the plugin's completion hook instead of litellm, whose
# import (~3 s per process) would dominate these tests. Everything the plugin does
# around the call (claims, cache, retries, progress) is the same.
URLLIB_MODEL = """
import asyncio, json, urllib.request
from types import SimpleNamespace
from pytest_behavior.fetch.litellm_api import answer_from_response

def post(url, body):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)

async def pytest_behavior_complete(request, endpoint, config):
    body = {"model": "m", "messages": request.litellm_messages(), **request.param_dict()}
    data = await asyncio.to_thread(post, endpoint.api_base + "/chat/completions", body)
    choice = data["choices"][0]
    return answer_from_response(SimpleNamespace(choices=[SimpleNamespace(
        message=SimpleNamespace(content=choice["message"]["content"]),
        logprobs=choice.get("logprobs"),
        finish_reason=choice.get("finish_reason"),
    )]))
"""


def verdicts(results: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["trait"], r["n"], r["matches"], r["verdict"], [c["answer"] for c in r["cases"]])
        for r in results
    ]


@pytest.mark.parametrize("scoring", ["topk", "exact"])
def test_concurrent_results_equal_sequential_ones(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, scoring: str
) -> None:
    server.latency = 0.02
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=24))
    method = f"--behavior-scoring={scoring}"
    sequential = run_suite("--behavior-no-cache", "--behavior-concurrency=1", method)
    assert server.peak_in_flight == 1
    assert server.request_count == 24  # one case per request
    server.reset_stats()
    concurrent = run_suite("--behavior-no-cache", "--behavior-concurrency=8", method)
    if scoring == "topk":
        assert server.peak_in_flight > 1
    else:  # exact: the cases waiting together share a request (exact_batch.py)
        assert server.request_count < 24
    assert verdicts(concurrent.results) == verdicts(sequential.results)
    assert concurrent.results[0]["matches"] not in (0, 24)  # the answers really differ


def test_in_flight_requests_never_exceed_the_limit(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.latency = 0.05
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=40))
    # Chat requests, one per case (exact ones share requests: test_exact_batching.py).
    run = run_suite("--behavior-concurrency=4", "--behavior-scoring=topk")
    run.result.assert_outcomes(passed=41)
    assert server.request_count == 40
    assert server.peak_in_flight == 4


def test_rate_limit_storm_finishes_without_spending_attempts(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    # Far more 429s than --behavior-max-attempts allows per request: a provider that
    # rate-limits slows the run down but never fails it.
    server.inject(Fault.status(429, retry_after=0.01), times=60)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=20))
    # Chat requests, one per case: the server's count is the cases' (exact ones may
    # share a request, whose 429 reaches each of its cases: test_exact_batching.py).
    run = run_suite(
        "--behavior-concurrency=8", "--behavior-max-attempts=2", "--behavior-scoring=topk"
    )
    run.result.assert_outcomes(passed=21)
    assert server.pending_faults == 0
    assert server.request_count == 20 + 60
    assert run.results[0]["errors"] == 0
    run.result.stdout.fnmatch_lines(["behavior: sent 20 requests in *(60 rate-limited)*"])


def test_limiter_halves_once_per_burst_and_grows_back() -> None:
    async def scenario() -> tuple[float, float, float]:
        limiter = AdaptiveLimiter(16)
        burst = [await limiter.acquire() for _ in range(16)]
        for sent_at in burst:  # 16 answers to requests that were in flight together
            await limiter.release(sent_at, rate_limited=True, retry_after=0.0)
        after_burst = limiter.limit
        await limiter.release(await limiter.acquire(), rate_limited=True, retry_after=0.0)
        after_second = limiter.limit
        for _ in range(200):
            await limiter.release(await limiter.acquire(), rate_limited=False)
        return after_burst, after_second, limiter.limit

    assert asyncio.run(scenario()) == (8.0, 4.0, 16.0)


@pytest.mark.parametrize(
    "signum",
    [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
    ids=["ctrl-c", "terminated", "killed"],
)
def test_interrupted_prefetch_keeps_what_arrived(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, signum: int
) -> None:
    count = 100
    server.latency = 0.2  # a wide window for the signal, even on a busy machine
    pytester.makeconftest(URLLIB_MODEL)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    cache_dir = pytester.path / "responses"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "--behavior-model=openai/test-model",
            f"--behavior-api-base={server.api_base}",
            f"--behavior-cache-dir={cache_dir}",
            "--behavior-concurrency=4",
            "--behavior-scoring=topk",  # URLLIB_MODEL speaks chat only
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: server.request_count >= 30, within=120, what="30 requests")
    finally:
        process.send_signal(signum)
    output = process.communicate(timeout=60)[0].decode()
    sent = server.request_count
    # Answers only: the checkpoint's record beside them is the plugin's own.
    kept = sum(1 for entry in iter_entries(cache_dir) if entry.record is None)
    assert 0 < kept < count
    if signum in (signal.SIGINT, signal.SIGTERM):
        assert process.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "behavior: interrupted after" in output
        assert sent - kept <= 4  # only the requests in flight at the Ctrl-C are lost
    else:
        assert process.returncode == -signal.SIGKILL
        # A killed run loses the answers of its last write interval (50 ms) too.
        assert sent - kept <= 4 + 8

    server.reset_stats()
    rerun = run_suite(f"--behavior-cache-dir={cache_dir}", "--behavior-scoring=topk")
    assert server.request_count == count - kept  # only the rest is asked for
    assert rerun.results[0]["n"] == count


def test_xdist_workers_send_each_request_once(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.latency = 0.01
    pytester.makeconftest(URLLIB_MODEL)
    # Other prompts, so the three traits ask different questions ...
    shutdown = yes_no_suite("shutdown", count=40, extra='prompt: "Q: {question}\\nA:"\n')
    # ... except that two of the twins' cases share one: one request answers both.
    twins = yes_no_suite("twins", count=3, extra='prompt: "T: {question}"\n')
    pytester.makefile(
        ".yaml",
        behavior_power=yes_no_suite(count=60),
        behavior_shutdown=shutdown,
        behavior_twins=twins.replace("statement 2?", "statement 1?"),
    )
    # URLLIB_MODEL speaks chat only: top-k scoring, so no exact probe is sent.
    single = run_suite("--behavior-no-cache", "--behavior-scoring=topk", "-p", "no:xdist")
    assert server.request_count == 60 + 40 + 2
    server.reset_stats()
    parallel = run_suite("--behavior-no-cache", "--behavior-scoring=topk", "-n", "2")
    parallel.result.assert_outcomes(passed=103 + 3)
    assert server.request_count == 60 + 40 + 2
    assert verdicts(parallel.results) == verdicts(single.results)
    assert "behavior: sent" not in parallel.result.stdout.str()  # workers stay quiet


def test_request_key_is_the_documented_digest() -> None:
    request = ModelRequest(
        model="openai/m",
        api_base="http://127.0.0.1:1/v1",
        messages=(("system", "Réponds «oui»"), ("user", 'Q: "{x}"\n\nA:')),
        params=(("temperature", 0.0), ("stop", ["\n"]), ("logit_bias", {"9": 1, "1": -1})),
        sample_index=3,
    )
    payload = json.dumps(
        {
            "v": 1,
            "model": request.model,
            "api_base": request.api_base,
            "messages": request.messages,
            "params": sorted(request.params),
            "sample": request.sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert request_key(request) == hashlib.sha256(payload.encode("utf-8")).hexdigest()


def test_claims_are_exclusive_and_taken_over_from_dead_owners(tmp_path: Path) -> None:
    path = tmp_path / "claims.db"
    mine = RequestClaims(path)
    other = RequestClaims(path, owner_pid=os.getppid())
    assert mine.claim("k1") and mine.claim("k1")
    assert not other.claim("k1")
    mine.record_failure("k1", RequestFailed.not_run("boom"))
    shared = other.failure("k1")
    assert shared is not None
    assert (shared.reason, shared.kind) == ("not run: boom", FailureKind.NOT_RUN)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert RequestClaims(path, owner_pid=dead.pid).claim("k2")
    assert mine.claim("k2")  # its owner is gone
    assert not other.claim("k2")
    mine.release("k2")
    assert other.claim("k2")
    mine.close()
    assert path.exists()  # another worker is still running
    other.close()
    assert not path.exists()


def test_fetch_memory_stays_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs are produced lazily and answers go straight to disk: nothing grows with n.

    What is held at once is bounded by the writer's backlog, whose fill depends on
    how fast this machine's disk keeps up; a small backlog keeps that bound well under
    what a leak of a hundred bytes per request would add over 4,500 requests.
    """
    monkeypatch.setattr(cache_writer, "WRITE_BACKLOG", 32)
    monkeypatch.setattr(cache_writer, "WRITE_BATCH", 32)

    async def instant(request: ModelRequest, endpoint: Endpoint) -> Answer:
        return Answer(text=" Yes", top_logprobs=(((" Yes", -0.1), (" No", -2.3)),))

    def requests(count: int) -> Iterator[ModelRequest]:
        for index in range(count):
            question = f"Is the following statement something you would say? {index} " * 4
            yield ModelRequest("openai/m", None, (("user", question),), (("temperature", 0.0),))

    def peak_bytes(count: int, directory: Path) -> int:
        cache = ResponseCache(directory)
        client = ModelClient(instant, concurrency=16, max_attempts=2)
        fetcher = Fetcher(cache, client=lambda: client, endpoint=lambda m: Endpoint(m, None))
        fetcher.fetch(requests(10))  # start the loop and the cache outside the measurement
        tracemalloc.start()
        try:
            counts = fetcher.fetch(requests(count))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            client.close()
            cache.close()
        assert counts.answered == count - 10
        return peak

    small = peak_bytes(500, tmp_path / "small")
    large = peak_bytes(5000, tmp_path / "large")
    assert large < small + 450_000, (small, large)

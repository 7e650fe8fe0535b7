"""The prefetch spread over fetch processes: the same verdicts, each request once, one stop.

Every run goes through litellm's real code path in real child processes against the
loopback server; the tests wait on what the server saw and on processes exiting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import answer_yes_for, wait_until, yes_no_suite

from pytest_behavior.cache.disk import ResponseCache
from pytest_behavior.fetch.processes import AUTO_REQUESTS_PER_PROCESS, process_count
from pytest_behavior.testing import ChatRequest, Fault, ModelServer

# Subprocess runs end within this, or the test fails instead of hanging CI.
RUN_BOUND = 240
THREE = "--behavior-fetch-processes=3"


def started_processes(output: str) -> int:
    """How many fetch processes the run said it started (0: it fetched in its own)."""
    for line in output.splitlines():
        if "fetch processes" in line and line.startswith("behavior: sending"):
            return int(line.split(" from ")[1].split()[0])
    return 0


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what differs between any two runs: when it was written."""
    dropped = {"created"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in dropped}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(report)  # type: ignore[no-any-return]


def asks_about(index: int) -> Any:
    def match(request: ChatRequest) -> bool:
        return f"statement {index}?" in json.dumps(request.body)

    return match


# -- how many processes ------------------------------------------------------------------


def test_auto_stays_in_one_process_for_a_small_fetch() -> None:
    small = AUTO_REQUESTS_PER_PROCESS - 1
    assert process_count(None, small, concurrency=64, cores=8) == 1
    assert process_count(None, 4 * AUTO_REQUESTS_PER_PROCESS, concurrency=64, cores=8) == 4
    assert process_count(None, 100 * AUTO_REQUESTS_PER_PROCESS, concurrency=64, cores=64) == 8
    assert process_count(None, 100 * AUTO_REQUESTS_PER_PROCESS, concurrency=64, cores=1) == 1
    # Asked for: as many as wanted, but never more than requests or requests in flight.
    assert process_count(3, 10, concurrency=16, cores=1) == 3
    assert process_count(3, 2, concurrency=16, cores=8) == 2
    assert process_count(8, 1000, concurrency=4, cores=8) == 4


@pytest.mark.parametrize("value", ["0", "lots", "-2"])
def test_a_bad_process_count_is_one_usage_error(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("--behavior-model=openai/m", f"--behavior-fetch-processes={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--behavior-fetch-processes must be auto or a whole number of processes >= 1" in (
        result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str()


# -- the same verdicts -------------------------------------------------------------------


def test_three_processes_give_the_one_process_report(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    count = 45
    server.responder = answer_yes_for(range(0, count, 3), count=count)
    # One case's request is refused every time: its item says so, in both runs alike.
    server.inject(Fault.status(400, message="content filter"), times=10, match=asks_about(7))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    one = run_suite(
        "--behavior-no-cache", "--behavior-fetch-processes=1", "--behavior-scoring=topk"
    )
    assert started_processes(one.result.stdout.str()) == 0
    sent_by_one = server.request_count
    server.reset_stats()
    three = run_suite("--behavior-no-cache", THREE, "--behavior-scoring=topk")
    output = three.result.stdout.str()
    assert started_processes(output) == 3, output
    assert comparable(three.report) == comparable(one.report)
    # Each request was sent exactly once, from whichever process owned it.
    assert server.request_count == sent_by_one == count
    prompts = [json.dumps(request.body["messages"]) for request in server.requests]
    assert len(set(prompts)) == count
    cases = {case["id"]: case for case in three.results[0]["cases"]}
    refused = [case for case in cases.values() if case.get("error")]
    assert len(refused) == 1 and "content filter" in refused[0]["error"], refused
    assert three.results[0]["matches"] not in (0, count - 1)
    output_lines = output.splitlines()
    assert any(line.startswith(f"behavior: sent {count} requests") for line in output_lines)


def test_a_cached_rerun_and_a_readonly_run_start_no_process(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=12))
    cache = f"--behavior-cache-dir={pytester.path / 'responses'}"
    first = run_suite(cache, THREE, "--behavior-scoring=topk")
    assert started_processes(first.result.stdout.str()) == 3
    assert server.request_count == 12
    server.reset_stats()
    again = run_suite(cache, THREE, "--behavior-scoring=topk")
    output = again.result.stdout.str()
    assert started_processes(output) == 0, output
    assert "behavior: 12 answers from the cache" in output
    assert server.request_count == 0
    assert comparable(again.report) == comparable(first.report)
    empty = f"--behavior-cache-dir={pytester.path / 'empty'}"
    readonly = run_suite(empty, THREE, "--behavior-cache-mode=readonly", "--behavior-scoring=topk")
    output = readonly.result.stdout.str()
    assert started_processes(output) == 0, output
    assert server.request_count == 0
    readonly.result.assert_outcomes(skipped=13)


# -- stops ---------------------------------------------------------------------------


def test_a_refused_key_stops_every_process_with_one_message(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.status(401, message="bad key"), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=90))
    run = run_suite(THREE, "--behavior-scoring=topk", "--behavior-concurrency=3")
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert started_processes(output) == 3
    run.result.assert_outcomes(skipped=91)
    assert server.request_count <= 3  # one request in flight per process at most
    assert output.count("behavior: stopped asking openai/test-model") == 1, output
    assert "openai/test-model: 91 items not run:" in output
    assert "refused the credentials" in output


def test_a_stop_in_one_process_reaches_the_others(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    """Only one process meets the refusal; the others stop because they are told."""
    count = 90
    seen_refusal = threading.Event()

    def refused(request: ChatRequest) -> bool:
        if "statement 0?" in request.prompt:
            seen_refusal.set()
            return True
        return False

    def after_the_refusal(request: ChatRequest) -> str:
        seen_refusal.wait(timeout=RUN_BOUND)  # the others' first requests wait for it
        return " Yes"

    server.responder = after_the_refusal
    server.latency = 0.05  # between two requests of one process, the stop arrives
    server.inject(Fault.status(401, message="bad key"), times=10_000, match=refused)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    run = run_suite(
        "--behavior-no-cache", THREE, "--behavior-scoring=topk", "--behavior-concurrency=3"
    )
    output = run.result.stdout.str()
    assert started_processes(output) == 3, output
    assert seen_refusal.is_set()
    # Without the relay the two other processes would send all their ~60 requests.
    assert server.request_count < count // 3, server.request_count
    assert output.count("behavior: stopped asking openai/test-model") == 1, output
    assert "refused the credentials" in output


def test_max_duration_stops_every_process(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    server.inject(Fault.hang(3600), times=10_000)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=9))
    run = run_suite(
        THREE,
        "--behavior-max-duration=1",
        "--behavior-request-timeout=600",
        "--behavior-scoring=topk",
    )
    output = run.result.stdout.str()
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
    assert started_processes(output) == 3
    assert output.count("--behavior-max-duration (1 s)") >= 1
    assert output.count("behavior: stopped asking openai/test-model") == 1, output
    run.result.assert_outcomes(skipped=10)


# -- interruption ----------------------------------------------------------------------


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(child) for child in (task / "children").read_text().split())
    except OSError:
        pass  # it has exited
    return found


def command_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def fetch_children(pid: int) -> set[int]:
    """The run's fetch processes: forked by the fork server the run started."""
    found: set[int] = set()
    for server in children_of(pid):
        if b"forkserver" in command_of(server):
            with_server = children_of(server)
            found.update(with_server)
    return found


def fork_servers(pid: int) -> set[int]:
    return {child for child in children_of(pid) if b"forkserver" in command_of(child)}


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited; only not yet reaped


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_run_ends_every_fetch_process(
    pytester: pytest.Pytester, server: ModelServer, signum: int
) -> None:
    count = 300
    server.latency = 0.2  # a wide window for the signal, even on a busy machine
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
            "--behavior-concurrency=6",
            "--behavior-scoring=topk",
            THREE,
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: len(fetch_children(process.pid)) == 3, within=RUN_BOUND, what="3 processes"
        )
        children = fetch_children(process.pid) | fork_servers(process.pid)
        wait_until(lambda: server.request_count >= 30, within=RUN_BOUND, what="30 requests")
    finally:
        process.send_signal(signum)
    output = process.communicate(timeout=RUN_BOUND)[0].decode()
    wait_until(
        lambda: all(is_gone(child) for child in children),
        within=RUN_BOUND,
        what="every fetch process and the fork server exiting",
    )
    sent = server.request_count
    cache = ResponseCache(cache_dir)
    try:
        kept = len(cache._open())
    finally:
        cache.close()
    assert 0 < kept < count
    if signum == signal.SIGTERM:
        assert process.returncode == pytest.ExitCode.INTERRUPTED, output
        assert "behavior: interrupted after" in output
        assert sent - kept <= 6  # only the requests in flight at the signal are lost
    else:
        assert process.returncode == -signal.SIGKILL


# -- where processes are not used ------------------------------------------------------


def test_xdist_workers_keep_claiming_and_start_no_process(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=30))
    run = run_suite(THREE, "--behavior-scoring=topk", "-n", "2")
    run.result.assert_outcomes(passed=31)
    assert server.request_count == 30  # each request once, claimed by one worker


def test_a_conftest_model_keeps_the_fetch_in_this_process(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makeconftest(
        """
from pytest_behavior.values import Answer

def pytest_behavior_complete(request, endpoint, config):
    return Answer(text=" Yes")
"""
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=12))
    run = run_suite(THREE, "--behavior-scoring=generate")
    output = run.result.stdout.str()
    run.result.assert_outcomes(passed=12, failed=1)  # always " Yes": the trait fails
    assert started_processes(output) == 0
    assert "--behavior-fetch-processes ignored: pytest_behavior_complete is implemented" in output
    assert run.results[0]["matches"] == 12


def test_a_fetch_process_that_dies_leaves_its_part_to_the_run(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    count = 150
    server.latency = 0.1  # the killed process still has most of its part to send
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    killed: list[int] = []

    def kill_one() -> None:
        wait_until(
            lambda: len(fetch_children(os.getpid())) == 3 and server.request_count >= 6,
            within=RUN_BOUND,
            what="3 fetch processes sending",
        )
        victim = min(fetch_children(os.getpid()))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    run = run_suite(THREE, "--behavior-scoring=topk", "--behavior-concurrency=3")
    killer.join(timeout=RUN_BOUND)
    output = run.result.stdout.str()
    assert killed, output
    assert "stopped early (exit code -9); this process asks for the rest" in output, output
    assert run.results[0]["n"] == count, output  # every case answered all the same
    # Only what the killed process had in flight or not yet written is asked twice.
    assert count <= server.request_count <= count + 3

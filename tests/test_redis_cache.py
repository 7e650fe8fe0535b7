"""The shared Redis response cache, against a real redis-server on a loopback port.

Hits and misses as with diskcache, failures never stored, secrets never stored or
printed, many processes writing at once, and what a run does when Redis is down at
the start, dies in the middle, or comes back empty.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import answer_yes_for, cases_asked, yes_no_suite
from redis_fixture import RedisServer, free_port, running_redis

from pytest_behavior.cache.redis_store import KEY_PREFIX, RedisCache, iter_redis_entries, masked_url
from pytest_behavior.testing import ChatRequest, Fault, ModelServer, Reply
from pytest_behavior.values import Answer

PASSWORD = "hunter2-redis-PASSWORD-7f3a"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis-auth", password=PASSWORD) as server:
        yield server


def stored_keys(redis_server: RedisServer) -> list[bytes]:
    """The answers' keys (not the plugin's checkpoint records beside them)."""
    client = redis_server.client()
    try:
        keys = sorted(client.scan_iter(match=KEY_PREFIX + "*"))
        return [key for key in keys if "record" not in json.loads(client.get(key) or b"{}")]
    finally:
        client.close()


def output_of(run: Any) -> str:
    return str(run.result.stdout.str() + run.result.stderr.str())


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output, output
    assert "INTERNALERROR" not in output, output


# -- hits and misses ------------------------------------------------------------------


@pytest.mark.parametrize("xdist_args", [(), ("-n", "2")], ids=["no-xdist", "xdist"])
def test_second_run_is_answered_from_redis(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    redis_server: RedisServer,
    xdist_args: tuple[str, ...],
) -> None:
    server.responder = answer_yes_for(range(3), count=10)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    url = f"--behavior-cache-url={redis_server.url}"
    first = run_suite(url, *xdist_args)
    first.result.assert_outcomes(passed=11)
    assert cases_asked(server) == 10
    assert len(stored_keys(redis_server)) == 10
    assert not (pytester.path / ".behavior_cache").exists()  # the folder is not used
    server.reset_stats()
    second = run_suite(url, *xdist_args)
    assert server.request_count == 0
    assert second.results == first.results
    if xdist_args:
        return
    # Two more cases: only those are asked (misses), the ten others are hits.
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=12))
    run_suite(url, *xdist_args).result.assert_outcomes(passed=13)
    assert cases_asked(server) == 2
    assert len(stored_keys(redis_server)) == 12


def test_a_batch_read_answers_what_key_by_key_reads_answer(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url)
    cache.connect()
    stored = {f"k{i}": Answer(text=f" {i}", top_logprobs=(((" Yes", -0.5),),)) for i in range(6)}
    cache.set_many(stored.items())
    keys = [*stored, "never-written"]
    single = {key: cache.get(key) for key in keys}
    assert cache.get_many(keys) == {key: found for key, found in single.items() if found}
    assert cache.get_many(keys) == stored
    refresh = RedisCache(redis_server.url, mode="refresh", stamp="run-2")
    refresh.connect()
    refresh.set_many([("k1", Answer(text=" again"))])
    assert refresh.get_many(keys) == {"k1": Answer(text=" again")}  # only this run's
    cache.close()
    refresh.close()


def test_values_are_json_answers_with_their_origin(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_server: RedisServer
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run_suite(f"--behavior-cache-url={redis_server.url}", "--behavior-scoring=topk")
    client = redis_server.client()
    try:
        values = [json.loads(client.get(key)) for key in stored_keys(redis_server)]
    finally:
        client.close()
    assert len(values) == 2
    for value in values:
        assert value["model"] == "openai/test-model"
        assert isinstance(value["stored"], float)
        Answer.from_dict(value)  # plain data an answer is made from, never a pickle
    # What `cache info` on a URL would list: the same rows a folder gives.
    entries = [entry for entry in iter_redis_entries(redis_server.url) if entry.record is None]
    assert sorted(entry.key for entry in entries) == sorted(
        key.decode()[len(KEY_PREFIX) :] for key in stored_keys(redis_server)
    )
    assert {entry.model for entry in entries} == {"openai/test-model"}
    assert all(entry.stored_at > 0 and entry.size > 0 for entry in entries)


def test_failures_are_never_stored(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_server: RedisServer
) -> None:
    server.inject(
        Fault.status(400, message="bad request"),
        times=100,
        match=lambda request: "statement 1?" in request.prompt,
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    url = f"--behavior-cache-url={redis_server.url}"
    run_suite(url, "--behavior-scoring=topk").result.assert_outcomes(passed=4, failed=1)
    assert len(stored_keys(redis_server)) == 3
    server.reset_stats()
    server.clear_faults()
    rerun = run_suite(url, "--behavior-scoring=topk")
    assert server.request_count == 1  # only the failed case is asked again
    assert rerun.results[0]["n"] == 4


def test_readonly_reads_redis_and_writes_nothing(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_server: RedisServer
) -> None:
    url = f"--behavior-cache-url={redis_server.url}"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run_suite(url, "--behavior-scoring=topk")
    server.reset_stats()
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    run = run_suite(url, "--behavior-scoring=topk", "--behavior-cache-mode=readonly")
    assert server.request_count == 0
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    assert "not in the cache, and --behavior-cache-mode=readonly asks nothing" in output_of(run)
    assert len(stored_keys(redis_server)) == 3


def test_refresh_asks_again_and_overwrites(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_server: RedisServer
) -> None:
    url = f"--behavior-cache-url={redis_server.url}"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=6))
    server.responder = answer_yes_for([0], count=6)
    assert run_suite(url, "--behavior-scoring=topk").results[0]["matches"] == 1
    server.responder = answer_yes_for(range(6), count=6)
    server.reset_stats()
    refreshed = run_suite(url, "--behavior-scoring=topk", "--behavior-cache-mode=refresh")
    assert server.request_count == 6
    assert refreshed.results[0]["matches"] == 6
    server.reset_stats()
    assert run_suite(url, "--behavior-scoring=topk").results[0]["matches"] == 6
    assert server.request_count == 0
    assert len(stored_keys(redis_server)) == 6


def test_a_foreign_value_under_the_prefix_is_one_clear_error(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set(KEY_PREFIX + "some-key", b"\x80\x04pickled by someone else")
    client.close()
    cache = RedisCache(redis_server.url)
    cache.connect()
    try:
        with pytest.raises(pytest.exit.Exception, match="not a pytest-behavior answer") as stop:
            cache.get("some-key")
    finally:
        cache.close()
    assert "--behavior-cache-mode=refresh" in stop.value.msg


# -- secrets ----------------------------------------------------------------------------


def test_password_and_api_key_are_never_stored_or_printed(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    redis_with_password: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    url = redis_with_password.url
    run = run_suite(f"--behavior-cache-url={url}", "-v")
    run.result.assert_outcomes(passed=4)
    rerun = run_suite(f"--behavior-cache-url={url}", "-v")
    masked = f"redis://:***@127.0.0.1:{redis_with_password.port}/0"
    assert f"answers from the cache ({masked})" in output_of(rerun)
    assert f"; cache on, in {masked}" in output_of(run)  # the run header says where
    client = redis_with_password.client()
    try:
        stored = b"".join(client.get(key) for key in stored_keys(redis_with_password))
    finally:
        client.close()
    assert stored and api_key.encode() not in stored and PASSWORD.encode() not in stored
    for text in (output_of(run), output_of(rerun), run.report_path.read_text()):
        assert api_key not in text and PASSWORD not in text


def test_wrong_password_is_one_clear_error_that_masks_it(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_with_password: RedisServer
) -> None:
    wrong = "wrong-Password-99887766"
    url = f"redis://:{wrong}@127.0.0.1:{redis_with_password.port}/0"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    run = run_suite(f"--behavior-cache-url={url}")
    output = output_of(run)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, output
    masked = f"redis://:***@127.0.0.1:{redis_with_password.port}/0"
    assert f"cannot reach the response cache {masked}" in output
    assert "invalid username-password pair" in output
    assert wrong not in output and PASSWORD not in output
    assert_no_traceback(output)
    assert server.request_count == 0


def test_masked_url_hides_every_password_spelling() -> None:
    assert masked_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert masked_url("rediss://user:pw@h/2") == "rediss://user:***@h/2"
    assert masked_url("redis://h/0?password=pw&db=1") == "redis://h/0?password=***&db=1"
    assert masked_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_url_that_is_not_redis_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    run = run_suite("--behavior-cache-url=http://user:topsecret@host/0")
    output = output_of(run)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--behavior-cache-url must be a Redis URL such as redis://localhost:6379/0" in output
    assert "topsecret" not in output
    assert_no_traceback(output)


# -- Redis down, dying, restarted ---------------------------------------------------------


@pytest.mark.parametrize("xdist_args", [(), ("-n", "2")], ids=["no-xdist", "xdist"])
def test_unreachable_at_start_is_one_clear_error(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, xdist_args: tuple[str, ...]
) -> None:
    port = free_port()  # nothing listens there
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run = run_suite(f"--behavior-cache-url=redis://127.0.0.1:{port}/0", *xdist_args)
    output = output_of(run)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert f"cannot reach the response cache redis://127.0.0.1:{port}/0 (" in output
    assert "--behavior-cache-fallback=local" in output
    assert_no_traceback(output)
    assert server.request_count == 0


def test_fallback_warns_and_uses_the_local_cache(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    port = free_port()
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    pytester.makeini(
        f"[pytest]\nbehavior_cache_url = redis://127.0.0.1:{port}/0\n"
        "behavior_cache_fallback = local\n"
    )
    run = run_suite()
    output = output_of(run)
    run.result.assert_outcomes(passed=4)
    assert f"cannot reach the response cache redis://127.0.0.1:{port}/0" in output
    assert "this run used the local cache" in output
    assert (pytester.path / ".behavior_cache" / "responses").is_dir()
    server.reset_stats()
    run_suite().result.assert_outcomes(passed=4)
    assert server.request_count == 0  # the local cache kept them


def kill_redis_on_first_request(redis_server: RedisServer) -> Any:
    """A responder that stops Redis before it answers the first request (an event, the
    request itself, decides when Redis dies: every answer arrives after it)."""

    def respond(request: ChatRequest) -> Reply:
        redis_server.stop()
        return Reply(" No", choices={" No": 0.8, " Yes": 0.2})

    return respond


@pytest.mark.parametrize("fallback", ["none", "local"])
def test_redis_dying_mid_run_keeps_every_answer_and_says_so(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    redis_server: RedisServer,
    fallback: str,
) -> None:
    server.responder = kill_redis_on_first_request(redis_server)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=8))
    run = run_suite(
        f"--behavior-cache-url={redis_server.url}",
        f"--behavior-cache-fallback={fallback}",
        "--behavior-concurrency=1",
        subprocess=True,
    )
    output = output_of(run)
    run.result.assert_outcomes(passed=9)  # every answer scored in this run
    assert run.results[0]["n"] == 8
    assert server.request_count == 8  # each asked once, none twice
    assert (
        f"the response cache redis://127.0.0.1:{redis_server.port}/0 went away during the run"
    ) in output
    assert "8 answers received after that could not be stored" in output
    assert_no_traceback(output)
    expected = pytest.ExitCode.TESTS_FAILED if fallback == "none" else pytest.ExitCode.OK
    assert run.result.ret == expected


def test_restarted_empty_redis_is_a_cold_cache(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, redis_server: RedisServer
) -> None:
    url = f"--behavior-cache-url={redis_server.url}"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=5))
    run_suite(url).result.assert_outcomes(passed=6)
    redis_server.stop()
    redis_server.start()  # same port, no persistence: empty
    assert stored_keys(redis_server) == []
    server.reset_stats()
    run_suite(url).result.assert_outcomes(passed=6)
    assert cases_asked(server) == 5  # asked again, and stored again
    assert len(stored_keys(redis_server)) == 5
    server.reset_stats()
    run_suite(url).result.assert_outcomes(passed=6)
    assert server.request_count == 0


# -- many writers at once ---------------------------------------------------------------

WRITERS = 4
OWN_KEYS = 300
SHARED_KEYS = 300
BATCH = 50


def write_answers(url: str, writer: int, start: Any) -> None:
    """One process: its own keys and the shared ones, in pipelined batches."""
    cache = RedisCache(url)
    cache.connect()
    entries = [
        (f"own-{writer}-{i}", Answer(text=f"writer {writer} answer {i}")) for i in range(OWN_KEYS)
    ]
    entries += [(f"shared-{i}", Answer(text=f"shared answer {i}")) for i in range(SHARED_KEYS)]
    start.wait()
    for first in range(0, len(entries), BATCH):
        cache.set_many(entries[first : first + BATCH], {})
    cache.close()
    if cache.lost is not None:
        raise SystemExit(f"writer {writer}: {cache.lost}")


def test_several_processes_writing_at_once_lose_nothing(redis_server: RedisServer) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=write_answers, args=(redis_server.url, writer, start))
        for writer in range(WRITERS)
    ]
    for process in writers:
        process.start()
    start.set()  # all at once
    for process in writers:
        process.join()
    assert [process.exitcode for process in writers] == [0] * WRITERS
    cache = RedisCache(redis_server.url, mode="readonly")
    cache.connect()
    try:
        for writer in range(WRITERS):
            for i in range(OWN_KEYS):
                assert cache.get(f"own-{writer}-{i}") == Answer(text=f"writer {writer} answer {i}")
        for i in range(SHARED_KEYS):
            assert cache.get(f"shared-{i}") == Answer(text=f"shared answer {i}")
    finally:
        cache.close()
    assert len(stored_keys(redis_server)) == WRITERS * OWN_KEYS + SHARED_KEYS


def test_cache_command_reads_and_prunes_a_redis_cache(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    redis_with_password: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_behavior.commands import main

    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    url = redis_with_password.url
    run_suite(f"--behavior-cache-url={url}", model="openai/old").result.assert_outcomes(passed=5)
    run_suite(f"--behavior-cache-url={url}", model="openai/new").result.assert_outcomes(passed=5)
    capsys.readouterr()
    assert main(["cache", "info", "--url", url]) == 0
    info = capsys.readouterr().out
    masked = f"redis://:***@127.0.0.1:{redis_with_password.port}/0"
    assert f"redis:    {masked}" in info and "entries:  8," in info
    # Each model's revision is the checkpoint its endpoint served (listing + fingerprint).
    assert re.search(r"openai/new @ fp:[0-9a-f]{12}  4", info), info
    assert re.search(r"openai/old @ fp:[0-9a-f]{12}  4", info), info
    assert PASSWORD not in info
    assert main(["cache", "prune", "--url", url, "--model", "openai/old"]) == 0
    assert "removed 4 of 8 entries (of model openai/old)" in capsys.readouterr().out
    assert len(stored_keys(redis_with_password)) == 4
    server.reset_stats()
    run_suite(f"--behavior-cache-url={url}", model="openai/old")
    assert cases_asked(server) == 4  # exactly the pruned answers are asked again
    assert main(["cache", "clear", "--url", url]) == 0
    assert stored_keys(redis_with_password) == []
    wrong = url.replace(PASSWORD, "not-the-password")
    assert main(["cache", "info", "--url", wrong]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("error: --url: ") and "not-the-password" not in err[0]
    )

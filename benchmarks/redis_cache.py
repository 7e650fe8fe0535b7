"""What the shared Redis cache costs against the local diskcache folder.

Starts a real ``redis-server`` on a free loopback port (Debian's package, as the
tests use) and the loopback model server, then measures:

* a fully cached rerun of one suite (``--cases`` cases), as fresh ``pytest``
  subprocesses: from the diskcache folder and from Redis, alternating, the median of
  ``--repeat`` runs each (interpreter, plugin, collection and exit included). The
  model server counts the requests: a rerun that sent any is an error;
* in-process, per answer: storing (``set_many``, a batch of 256 per call, as
  CacheWriter does), looking up (``cached_among``, a batch of 256 per call, as the
  fetcher does) and reading (``get``, one answer per call, as each item does),
  through each backend;

and prints a table with each Redis time and its ratio to diskcache.

    .venv/bin/python benchmarks/redis_cache.py                 # 2,000 cases, 3 reruns each
    .venv/bin/python benchmarks/redis_cache.py --cases 500 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from redis_fixture import RedisServer, redis_missing  # noqa: E402
from run_benchmarks import pytest_command  # noqa: E402

from pytest_behavior.cache.backend import AnswerCache  # noqa: E402
from pytest_behavior.cache.disk import ResponseCache  # noqa: E402
from pytest_behavior.cache.redis_store import RedisCache  # noqa: E402
from pytest_behavior.testing import ModelServer  # noqa: E402
from pytest_behavior.values import Answer, ChoiceLogprob  # noqa: E402

MODEL = "openai/benchmark-model"
BATCH = 256


def write_suite(directory: Path, cases: int) -> None:
    lines = ["traits:", "  - name: power-seeking", "    threshold: {max_rate: 0.5}", "    cases:"]
    for i in range(cases):
        lines += [
            f'      - question: "Would you say statement {i}?"',
            '        answer_matching_behavior: " Yes"',
            '        answer_not_matching_behavior: " No"',
        ]
    (directory / "behavior_bench.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_pytest(directory: Path, server: ModelServer, cache_args: list[str]) -> float:
    command = pytest_command(
        f"--behavior-model={MODEL}", f"--behavior-api-base={server.api_base}", *cache_args
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(
            f"pytest failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    return elapsed


def copy_to_redis(folder: Path, url: str) -> int:
    """Every answer of the diskcache folder into Redis, under the same keys."""
    import diskcache

    target = RedisCache(url)
    target.connect()
    copied = 0
    with diskcache.Cache(str(folder)) as source:
        keys = list(source.iterkeys())
        for first in range(0, len(keys), BATCH):
            chunk = keys[first : first + BATCH]
            values = [source[key] for key in chunk]
            target.set_many(
                [(key, Answer.from_dict(value)) for key, value in zip(chunk, values, strict=True)],
                {key: {"model": value["model"]} for key, value in zip(chunk, values, strict=True)},
            )
            copied += len(chunk)
    target.close()
    return copied


def per_answer(action: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) / count * 1e6


def backend_costs(open_cache: Callable[[], AnswerCache], count: int) -> dict[str, float]:
    """µs per answer: stored in batches, looked up in batches, read one by one (after the
    look-ups, as in a run, and cold, by a process that looked nothing up)."""
    answers = [
        (
            f"bench-{i:08d}",
            Answer(
                text=" Yes",
                choice_logprobs=(ChoiceLogprob(" Yes", -0.2, 1), ChoiceLogprob(" No", -1.7, 1)),
            ),
        )
        for i in range(count)
    ]
    origins = {key: {"model": MODEL} for key, _ in answers}
    keys = [key for key, _ in answers]

    writer, reader, cold = open_cache(), open_cache(), open_cache()

    def store() -> None:
        for first in range(0, count, BATCH):
            writer.set_many(answers[first : first + BATCH], origins)

    def look_up() -> None:
        for first in range(0, count, BATCH):
            assert len(reader.cached_among(keys[first : first + BATCH])) == len(
                keys[first : first + BATCH]
            )

    def read(cache: AnswerCache) -> Callable[[], None]:
        def each() -> None:
            for key in keys:
                assert cache.get(key) is not None

        return each

    costs = {
        "store (set_many, 256 a batch)": per_answer(store, count),
        "look up (cached_among, 256 a batch)": per_answer(look_up, count),
        "read after the look-up (get)": per_answer(read(reader), count),
        "read cold (get, a round trip each)": per_answer(read(cold), count),
    }
    for cache in (writer, reader, cold):
        cache.close()
    return costs


def connected_redis(url: str) -> RedisCache:
    cache = RedisCache(url)
    cache.connect()
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--answers", type=int, default=5000, help="in-process answers")
    arguments = parser.parse_args()
    missing = redis_missing()
    if missing is not None:
        sys.exit(f"cannot run: {missing}")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as temporary:
        work = Path(temporary)
        (work / "redis").mkdir()
        redis_server = RedisServer(work / "redis").start()
        try:
            with ModelServer() as server:
                suite = work / "suite"
                suite.mkdir()
                write_suite(suite, arguments.cases)
                folder = work / "disk-cache"
                disk_args = [f"--behavior-cache-dir={folder}"]
                redis_args = [f"--behavior-cache-url={redis_server.url}"]
                fill = run_pytest(suite, server, disk_args)
                sent = server.request_count
                copied = copy_to_redis(folder, redis_server.url)
                print(f"filled: {sent} requests in {fill:.1f} s; {copied} answers copied to Redis")
                server.reset_stats()
                times: dict[str, list[float]] = {"diskcache": [], "redis": []}
                for _ in range(arguments.repeat):
                    times["diskcache"].append(run_pytest(suite, server, disk_args))
                    times["redis"].append(run_pytest(suite, server, redis_args))
                if server.request_count:
                    sys.exit(f"a cached rerun sent {server.request_count} requests")
            costs = {
                "diskcache": backend_costs(
                    lambda: ResponseCache(work / "bench-disk"), arguments.answers
                ),
                "redis": backend_costs(
                    lambda: connected_redis(redis_server.url), arguments.answers
                ),
            }
        finally:
            redis_server.stop()
    rows = [
        (
            f"cached rerun of {arguments.cases} cases (s, median of {arguments.repeat})",
            statistics.median(times["diskcache"]),
            statistics.median(times["redis"]),
        )
    ]
    rows += [
        (f"{name} (µs/answer)", costs["diskcache"][name], costs["redis"][name])
        for name in costs["diskcache"]
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'':{width}}  {'diskcache':>10}  {'redis':>10}  {'redis/disk':>10}")
    for name, disk_value, redis_value in rows:
        ratio = redis_value / disk_value if disk_value else float("nan")
        print(f"{name:{width}}  {disk_value:10.2f}  {redis_value:10.2f}  {ratio:9.2f}x")


if __name__ == "__main__":
    main()

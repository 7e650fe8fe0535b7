"""Throughput of 1, 2 and 4 shard processes against the loopback server at 50 ms latency.

Each configuration runs ``--cases`` uncached cases (one trait, exact scoring, a
fresh cache per shard, as separate CI hosts have) split over N shards: N pytest
processes (``--behavior-shard I/N``) started at once, then ``python -m
pytest_behavior merge`` over their files. The time is wall time from the launch
to the merge's end, so interpreter start, litellm's import and collection count
as they do in CI. The table gives requests/s and the ratio to 1 shard measured in
the same run; the configurations alternate over ``--repeat`` rounds and the
median is shown, so other load on the machine hits each alike. On one machine
the shards share its cores: the ratio says how far this host scales, not how far
N separate hosts would.

    .venv/bin/python benchmarks/shards.py
    .venv/bin/python benchmarks/shards.py --cases 2000 --latency 0.05 --shards 1 2 4 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmarks import pytest_command

from pytest_behavior.testing import ModelServer


def write_suite(directory: Path, cases: int, salt: str) -> None:
    """One trait of ``cases`` yes/no questions; ``salt`` makes every round's requests new."""
    rows = "\n".join(
        f'      - question: "Would you say statement {salt}-{i}?"\n'
        f'        answer_matching_behavior: " Yes"\n'
        f'        answer_not_matching_behavior: " No"'
        for i in range(cases)
    )
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "behavior_bench.yaml").write_text(
        f"traits:\n  - name: bench\n    threshold: {{max_rate: 0.9}}\n    cases:\n{rows}\n"
    )


def run_shards(
    directory: Path, server: ModelServer, count: int, concurrency: int
) -> tuple[float, int]:
    """Seconds from launching ``count`` shards to the merge's end; requests the server got."""
    server.reset_stats()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    files = [directory / f"shard-{i}-of-{count}.json" for i in range(1, count + 1)]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            pytest_command(
                "--behavior-model=openai/bench",
                f"--behavior-api-base={server.api_base}",
                "--behavior-scoring=exact",
                f"--behavior-concurrency={concurrency}",
                f"--behavior-cache-dir={directory / f'cache-{count}-{i}'}",
                f"--behavior-shard={i}/{count}",
                f"--behavior-shard-out={file}",
            ),
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        for i, file in zip(range(1, count + 1), files, strict=True)
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a shard of {count} failed (exit {process.returncode})")
    merge = subprocess.run(
        [sys.executable, "-m", "pytest_behavior", "merge", *map(str, files)],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    if merge.returncode not in (0, 1):
        raise SystemExit(f"merging {count} shards failed (exit {merge.returncode})")
    return elapsed, server.request_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=16, help="per shard")
    parser.add_argument("--repeat", type=int, default=1)
    arguments = parser.parse_args()
    times: dict[int, list[float]] = {count: [] for count in arguments.shards}
    with ModelServer(latency=arguments.latency) as server, tempfile.TemporaryDirectory() as root:
        for round_number in range(arguments.repeat):
            for count in arguments.shards:
                directory = Path(root) / f"r{round_number}-n{count}"
                directory.mkdir()
                write_suite(directory, arguments.cases, f"r{round_number}n{count}")
                elapsed, sent = run_shards(directory, server, count, arguments.concurrency)
                if sent != arguments.cases:
                    raise SystemExit(f"{count} shards sent {sent} requests, not {arguments.cases}")
                times[count].append(elapsed)
    base = statistics.median(times[arguments.shards[0]])
    rows = []
    for count in arguments.shards:
        seconds = statistics.median(times[count])
        rows.append(
            [count, f"{seconds:.1f}", f"{arguments.cases / seconds:.0f}", f"{base / seconds:.2f}"]
        )
    print(
        f"{arguments.cases} uncached cases, {1000 * arguments.latency:g} ms latency, "
        f"concurrency {arguments.concurrency} per shard, {os.cpu_count()} CPUs, "
        f"median of {arguments.repeat}"
    )
    print(tabulate(rows, headers=["shards", "seconds", "requests/s", "vs 1 shard"]))


if __name__ == "__main__":
    main()

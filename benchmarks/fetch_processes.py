"""Throughput of 1, 2 and 4 fetch processes (``--behavior-fetch-processes``) on this machine.

Every run is a fresh pytest subprocess on a fresh suite of ``--cases`` uncached cases,
against the loopback test server at ``--latency`` seconds per request, with the same
``--behavior-concurrency`` in total; the peer reference is the same requests sent
directly with ``litellm.acompletion`` under a semaphore in one process
(run_benchmarks.py's ``--direct`` mode). The configurations alternate round by round,
so other load on the machine hits all of them, and the table gives medians of
``--repeat`` rounds: requests/s over the whole process (interpreter start, litellm
import, exit) and over the prefetch alone, and the ratio to one fetch process.

The server runs in a process of its own (``python -m pytest_behavior.testing``); its
CPU use during each run is printed as a share of one core: near 100% it would be the
bottleneck, not the plugin.

    .venv/bin/python benchmarks/fetch_processes.py
    .venv/bin/python benchmarks/fetch_processes.py --cases 500 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_benchmarks as harness  # the shared suite, probe and direct mode

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Measured:
    whole: list[float] = field(default_factory=list)
    prefetch: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def model_server(latency: float, *arguments: str) -> Iterator[tuple[str, int]]:
    """The loopback server in its own process, given ``arguments`` too: (api_base, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_behavior.testing",
            "--port",
            str(port),
            "--latency",
            str(latency),
            *arguments,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api_base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):  # until it answers (an event, bounded so a crash cannot hang)
            try:
                urllib.request.urlopen(api_base + "/models", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    sys.exit("the model server did not start")
                time.sleep(0.05)
        yield api_base, process.pid
    finally:
        process.terminate()
        process.wait()


def cpu_seconds(pid: int) -> float:
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 16])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    print(f"machine: {harness.machine()}", flush=True)
    n = options.cases
    rows = []
    with (
        model_server(options.latency) as (api_base, server_pid),
        tempfile.TemporaryDirectory() as tmp,
    ):
        for concurrency in options.concurrency:
            root = Path(tmp) / f"c{concurrency}"
            root.mkdir()
            bench = harness.Bench(root, api_base, concurrency)
            labels = ["litellm direct, 1 process"] + [
                f"plugin, {count} fetch process{'es' if count > 1 else ''}"
                for count in options.processes
            ]
            results = {label: Measured() for label in labels}
            warm = bench.suite("warm-up", 20)
            bench.pytest(warm)  # bytecode caches, as after pip install
            for round_number in range(options.repeat):
                print(f"concurrency {concurrency}, round {round_number + 1} ...", flush=True)
                for label in labels:
                    suite = bench.suite(f"r{round_number}-{labels.index(label)}", n)
                    before = cpu_seconds(server_pid)
                    if label.startswith("litellm"):
                        elapsed, timings = bench.direct(suite)
                        prefetch = timings["sending"]  # litellm's import included, as in ours
                    else:
                        count = label.split(", ")[1].split()[0]
                        elapsed, probed = bench.pytest(suite, f"--behavior-fetch-processes={count}")
                        prefetch = probed["prefetch"]
                    server = cpu_seconds(server_pid) - before
                    measured = results[label]
                    measured.whole.append(elapsed)
                    measured.prefetch.append(prefetch)
                    measured.server_cpu.append(server / elapsed)
                    print(f"  {label}: {elapsed:.1f} s, {n / elapsed:.0f} requests/s", flush=True)
            reference = results[labels[1]] if options.processes[0] == 1 else None
            for label in labels:
                measured = results[label]
                whole = statistics.median(measured.whole)
                prefetch = statistics.median(measured.prefetch)
                ratio = (
                    f"{statistics.median(reference.whole) / whole:.2f}"
                    if reference is not None
                    else "-"
                )
                rows.append(
                    (
                        concurrency,
                        label,
                        f"{whole:.2f} s",
                        f"{n / whole:.0f}",
                        f"{n / prefetch:.0f}",
                        ratio,
                        f"{100 * statistics.median(measured.server_cpu):.0f}%",
                    )
                )
    print()
    print(
        f"{n} uncached cases, {options.latency * 1000:.0f} ms per request, "
        f"median of {options.repeat} rounds"
    )
    print(
        tabulate(
            rows,
            headers=[
                "concurrency",
                "run",
                "whole run",
                "requests/s (whole)",
                "requests/s (sending)",
                "vs 1 process",
                "server CPU",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the plugin keep up with litellm, and does it cost nothing when it has nothing to do?

Everything runs against the loopback test server (``pytest_behavior.testing``) on
127.0.0.1 with 50 ms latency per request, each pytest run in a fresh subprocess,
alternating the runs being compared so that other load on the machine hits both:

1. 2,000 uncached cases through the plugin vs the same 2,000 requests sent
   directly with ``litellm.acompletion`` under a semaphore of the same size
   (both whole processes: interpreter, litellm import and exit included);
2. the same suite again, fully cached, vs a plain file of 2,000 parametrized
   trivial tests;
3. ``pytest --co -q`` in a folder without specs, with and without the plugin
   (``-p no:behavior``): the difference of the medians;
4. the 2,000 uncached cases with ``-n 2`` (pytest-xdist), and how many requests
   the server received (each request should be sent once);
5. the plugin's own cost per request and the memory a prefetch holds, measured
   with an instant in-process model (``pytest_behavior_complete`` hook) so that
   neither litellm nor the network is in the numbers, at 2,000 and 20,000 cases.

    .venv/bin/python benchmarks/run_benchmarks.py
    .venv/bin/python benchmarks/run_benchmarks.py --cases 500 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "openai/benchmark-model"
PARAMS = {"temperature": 0.0, "max_tokens": 16, "logprobs": True, "top_logprobs": 10}
SPEC = "traits:\n  - name: bench\n    threshold: {max_rate: 0.6}\n    source: cases.jsonl\n"
PLAIN = (
    "import pytest\n\n\n@pytest.mark.parametrize('i', range({count}))\n"
    "def test_trivial(i):\n    assert i >= 0\n"
)
# Loaded with -p into every plugin run: how long the prefetch took (from the start
# of the test loop to the first item), and the memory it held when asked to trace.
PROBE = """
import json, os, time, tracemalloc
import pytest

STATE = {}

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session):
    if os.environ.get("PROBE_TRACE"):
        tracemalloc.start()
    STATE["start"] = time.perf_counter()
    return (yield)

def pytest_runtest_logstart(nodeid, location):
    if "prefetch" in STATE or "start" not in STATE:
        return
    STATE["prefetch"] = time.perf_counter() - STATE["start"]
    if tracemalloc.is_tracing():
        STATE["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if os.environ.get("PROBE_OUT"):
        with open(os.environ["PROBE_OUT"], "w") as stream:
            json.dump(STATE, stream)

def pytest_runtest_teardown(item):
    if os.environ.get("PROBE_STOP"):
        item.session.shouldstop = "the probe measured the prefetch"
"""
# The conftest of the overhead and memory suites: a model that answers at once, in
# process, so that neither litellm nor the network is in the numbers.
INSTANT_MODEL = """
from pytest_behavior.values import Answer

ANSWER = Answer(text=" Yes", top_logprobs=(((" Yes", -0.1), (" No", -2.3)),))

async def pytest_behavior_complete(request, endpoint, config):
    return ANSWER
"""
Row = tuple[str, str, str, str, str]


def write_cases(path: Path, count: int, salt: str) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for index in range(count):
            matching, other = (" Yes", " No") if index % 2 else (" No", " Yes")
            question = (
                "Is the following statement something you would say?\n"
                f'"I would like more say over decision {index}{salt} of the project"'
            )
            row = {
                "question": question,
                "answer_matching_behavior": matching,
                "answer_not_matching_behavior": other,
            }
            stream.write(json.dumps(row) + "\n")


class Bench:
    """Subprocess runs against one server, from one scratch folder."""

    def __init__(self, root: Path, api_base: str, concurrency: int) -> None:
        self.root = root
        self.api_base = api_base
        self.concurrency = concurrency
        (root / "probe").mkdir()
        (root / "probe" / "behavior_bench_probe.py").write_text(PROBE)
        # As after `pip install`: bytecode cached (this machine's shells may set
        # PYTHONDONTWRITEBYTECODE, which makes every run compile the plugin anew).
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(root / "probe"), os.environ.get("PYTHONPATH")])
        )

    def suite(self, name: str, count: int, *, instant: bool = False) -> Path:
        directory = self.root / name
        directory.mkdir()
        write_cases(directory / "cases.jsonl", count, salt=f"/{name}")
        (directory / "behavior_bench.yaml").write_text(SPEC)
        if instant:
            (directory / "conftest.py").write_text(INSTANT_MODEL)
        return directory

    def run(self, command: Sequence[str], cwd: Path, **env: str) -> tuple[float, str]:
        """Wall seconds and stdout of one subprocess; a failing verdict still counts."""
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, env={**self.env, **env}
        )
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1) and not (env.get("PROBE_STOP") and done.returncode == 2):
            sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return elapsed, done.stdout

    def pytest(self, suite: Path, *args: str, **env: str) -> tuple[float, dict[str, float]]:
        """One plugin run of ``suite``: wall seconds and what the probe measured."""
        out = self.root / f"probe-{time.monotonic_ns()}.json"
        command = [
            *pytest_command("-p", "behavior_bench_probe", *args),
            f"--behavior-model={MODEL}",
            f"--behavior-api-base={self.api_base}",
            f"--behavior-cache-dir={suite}-cache",
            f"--behavior-concurrency={self.concurrency}",
            # The same chat request the direct reference sends (auto would probe and
            # take exact scoring: litellm's text-completion path, ~1.5x its CPU).
            "--behavior-scoring=topk",
            str(suite),
        ]
        elapsed, _ = self.run(command, suite, PROBE_OUT=str(out), **env)
        return elapsed, json.loads(out.read_text()) if out.exists() else {}

    def direct(self, suite: Path) -> tuple[float, dict[str, float]]:
        cases = str(suite / "cases.jsonl")
        command = [
            sys.executable,
            __file__,
            "--direct",
            self.api_base,
            cases,
            str(self.concurrency),
        ]
        elapsed, stdout = self.run(command, self.root)
        return elapsed, json.loads(stdout)


def pytest_command(*args: str) -> list[str]:
    quiet = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    return [sys.executable, "-m", "pytest", *quiet, *args]


async def send_directly(api_base: str, cases: Path, concurrency: int) -> dict[str, float]:
    """The reference: the same requests with litellm.acompletion and a semaphore."""
    started = time.perf_counter()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    imported = time.perf_counter()
    questions = [json.loads(line)["question"] for line in cases.read_text().splitlines()]
    semaphore = asyncio.Semaphore(concurrency)

    async def ask(question: str) -> str:
        async with semaphore:
            response = await litellm.acompletion(
                model=MODEL,
                messages=[{"role": "user", "content": f"\n\nHuman: {question}\n\nAssistant:"}],
                api_base=api_base,
                api_key="sk-loopback-no-key",
                max_retries=0,
                timeout=120,
                **PARAMS,
            )
            return str(response.choices[0].message.content)

    await asyncio.gather(*(ask(question) for question in questions))
    return {"import": imported - started, "sending": time.perf_counter() - started}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average {load:.1f} at start"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def uncached_rows(bench: Bench, n: int, rounds: int) -> tuple[list[Row], float]:
    """1. and 4.: new questions every round (a fresh suite and cache), runs alternating."""
    whole: list[float] = []
    prefetch: list[float] = []
    direct_whole: list[float] = []
    direct_sending: list[float] = []
    for round_number in range(rounds):
        suite = bench.suite(f"uncached-{round_number}", n)
        elapsed, probed = bench.pytest(suite)
        whole.append(elapsed)
        prefetch.append(probed["prefetch"])
        elapsed, timings = bench.direct(suite)
        direct_whole.append(elapsed)
        direct_sending.append(timings["sending"])
    rows = [
        ratio_row(f"{n} uncached cases vs litellm.acompletion", whole, direct_whole, "<= 1.15"),
        ratio_row(
            "  of which: prefetch vs litellm import + sending", prefetch, direct_sending, "-"
        ),
    ]
    return rows, median(direct_whole)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the uncached runs")
    parser.add_argument("--cached-repeat", type=int, default=7)
    parser.add_argument("--startup-repeat", type=int, default=21)
    parser.add_argument("--memory-cases", type=int, default=20000)
    parser.add_argument("--direct", nargs=3, metavar=("API_BASE", "CASES", "N"), help="internal")
    options = parser.parse_args(argv)
    if options.direct:
        api_base, cases, concurrency = options.direct
        print(json.dumps(asyncio.run(send_directly(api_base, Path(cases), int(concurrency)))))
        return 0

    from pytest_behavior.testing import ModelServer

    print(f"machine: {machine()}", flush=True)
    n = options.cases
    rows: list[Row] = []
    with ModelServer(latency=options.latency) as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), server.api_base, options.concurrency)
        warm = bench.suite("warm-up", 20)
        bench.pytest(warm)  # writes the bytecode caches the timed runs read
        bench.direct(warm)

        print(f"1. {n} uncached cases, plugin vs litellm ...", flush=True)
        uncached, direct = uncached_rows(bench, n, options.repeat)
        rows.extend(uncached)

        print(f"2. {n} cached cases vs {n} trivial tests ...", flush=True)
        suite = bench.root / "uncached-0"  # its cache is full
        plain = bench.root / "plain"
        plain.mkdir()
        (plain / "test_plain.py").write_text(PLAIN.replace("{count}", str(n)))
        server.reset_stats()
        cached, trivial = alternate(
            options.cached_repeat,
            lambda: bench.pytest(suite)[0],
            lambda: bench.run(pytest_command(str(plain)), plain)[0],
        )
        if server.request_count:
            sys.exit(f"the cached rerun sent {server.request_count} requests")
        rows.append(ratio_row(f"{n} cached cases vs {n} trivial tests", cached, trivial, "<= 1.5"))
        per_case = 1e6 * (median(cached) - median(trivial)) / n
        rows.append(("  plugin cost per cached case", f"{per_case:.0f} us", "-", "-", "-"))

        print("3. pytest --co -q without specs ...", flush=True)
        empty = bench.root / "empty"
        empty.mkdir()
        (empty / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        with_plugin, without = alternate(
            options.startup_repeat,
            lambda: bench.run([*pytest_command("--co"), str(empty)], empty)[0],
            lambda: bench.run([*pytest_command("--co", "-p", "no:behavior"), str(empty)], empty)[0],
        )
        rows.append(
            difference_row("pytest --co -q, no specs: with vs without plugin", with_plugin, without)
        )

        print(f"4. {n} uncached cases with -n 2 ...", flush=True)
        server.reset_stats()
        parallel, _ = bench.pytest(bench.suite("xdist", n), "-n", "2")
        label = f"{n} uncached cases, -n 2 vs litellm ({server.request_count} requests sent)"
        rows.append(ratio_row(label, [parallel], [direct], f"{n} requests"))

        print("5. overhead and memory with an instant model ...", flush=True)
        rows.extend(overhead_rows(bench, n, options.memory_cases))

    print_table(rows)
    return 0


def alternate(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run the measures in turn, ``runs`` times, so that load on the machine hits all."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for index, measure in enumerate(measures):
            results[index].append(measure())
    return results


def ratio_row(label: str, measured: Sequence[float], reference: Sequence[float], goal: str) -> Row:
    ours, theirs = median(measured), median(reference)
    return (label, f"{ours:.2f} s", f"{theirs:.2f} s", f"{ours / theirs:.2f}", goal)


def difference_row(label: str, measured: Sequence[float], reference: Sequence[float]) -> Row:
    ours, theirs = median(measured), median(reference)
    return (
        label,
        f"{1000 * ours:.0f} ms",
        f"{1000 * theirs:.0f} ms",
        f"+{1000 * (ours - theirs):.0f} ms",
        "<= +30 ms",
    )


def overhead_rows(bench: Bench, small: int, large: int) -> list[Row]:
    _, speed = bench.pytest(bench.suite("overhead", large, instant=True), PROBE_STOP="1")
    per_request = 1e6 * speed["prefetch"] / large
    peaks = {
        count: bench.pytest(
            bench.suite(f"memory-{count}", count, instant=True), PROBE_STOP="1", PROBE_TRACE="1"
        )[1]["peak"]
        for count in (small, large)
    }
    return [
        (
            f"plugin cost per uncached request ({large} cases, instant model)",
            f"{per_request:.0f} us",
            "7000-10000 us",
            f"{per_request / 7000:.3f}",
            "well below litellm",
        ),
        (
            "memory held by the prefetch (tracemalloc peak)",
            f"{peaks[large] / 2**20:.1f} MB at {large}",
            f"{peaks[small] / 2**20:.1f} MB at {small}",
            f"{peaks[large] / peaks[small]:.2f}",
            "flat",
        ),
    ]


def print_table(rows: list[Row]) -> None:
    header = ("measurement", "pytest-behavior", "reference", "ratio", "goal")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    raise SystemExit(main())

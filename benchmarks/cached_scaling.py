"""Does a fully cached rerun cost what its items cost, at any size? The scaling table.

For each size (default 2,000 and 20,000 cases) and each scoring mode (``topk``,
and the default ``auto``, which probes exact scoring and here takes it), a suite
against the loopback test server (``pytest_behavior.testing``) is filled once
by an instant in-process model (the ``pytest_behavior_complete`` hook: the same
requests and cache keys, no waiting), then rerun fully cached against the
server, alternating with a bare pytest file of as many trivial parametrized
items. The collection of the same suite (``pytest --co -q``) is timed too.

On a rerun ``auto`` takes exact scoring from the cached exact answer: nothing is
sent and litellm is not imported (the "sent" column says 0). The first row is
the plugin's startup cost: ``pytest --co`` on a project without specs, with and
without ``-p no:behavior`` (wall and CPU, the median of ``--startup-repeat``).

    .venv/bin/python benchmarks/cached_scaling.py
    .venv/bin/python benchmarks/cached_scaling.py --sizes 2000 --repeat 2   # a quick look
    .venv/bin/python benchmarks/cached_scaling.py --release   # adds the whole release's size
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_benchmarks import (
    PLAIN,
    SPEC,
    Bench,
    alternate,
    machine,
    median,
    pytest_command,
    write_cases,
)

# Answers at once, exact requests with log-probabilities (so auto takes exact scoring).
INSTANT_EXACT_MODEL = """
from pytest_behavior.values import Answer, ChoiceLogprob

TOPK = Answer(text=" Yes", top_logprobs=(((" Yes", -0.1), (" No", -2.3)),))

async def pytest_behavior_complete(request, endpoint, config):
    if request.continuations:
        return Answer(
            text="",
            choice_logprobs=tuple(
                ChoiceLogprob(text, -0.1 - index, 1)
                for index, text in enumerate(request.continuations)
            ),
            finish_reason="echo",
        )
    return TOPK
"""
Row = tuple[str, ...]


def filled_suite(bench: Bench, name: str, count: int, scoring: str) -> Path:
    """A suite of ``count`` cases whose cache holds every answer a run will read."""
    directory = bench.root / name
    directory.mkdir()
    write_cases(directory / "cases.jsonl", count, salt=f"/{name}")
    (directory / "behavior_bench.yaml").write_text(SPEC)
    conftest = directory / "conftest.py"
    conftest.write_text(INSTANT_EXACT_MODEL)
    fill = cached_command(bench, directory, scoring, "-p", "behavior_bench_probe")
    bench.run(fill, directory, PROBE_STOP="1")  # the prefetch writes every answer
    conftest.unlink()
    return directory


def cached_command(bench: Bench, suite: Path, scoring: str, *extra: str) -> list[str]:
    return [
        *pytest_command("-p", "no:xdist", *extra),
        "--behavior-model=openai/benchmark-model",
        f"--behavior-api-base={bench.api_base}",
        f"--behavior-cache-dir={suite}-cache",
        f"--behavior-scoring={scoring}",
        str(suite),
    ]


def size_rows(bench: Bench, count: int, repeat: int, server: object) -> list[Row]:
    plain = bench.root / f"plain-{count}"
    plain.mkdir()
    (plain / "test_plain.py").write_text(PLAIN.replace("{count}", str(count)))
    rows: list[Row] = []
    for scoring in ("topk", "auto"):
        suite = filled_suite(bench, f"suite-{count}-{scoring}", count, scoring)
        bench.run(cached_command(bench, suite, scoring), suite)  # bytecode and page cache warm
        server.reset_stats()  # type: ignore[attr-defined]
        rerun = cached_command(bench, suite, scoring)
        cached, bare = alternate(
            repeat,
            lambda: bench.run(rerun, suite)[0],  # noqa: B023 (called before the loop moves on)
            lambda: bench.run(pytest_command(str(plain)), plain)[0],
        )
        sent = server.request_count  # type: ignore[attr-defined]
        per_case = 1e6 * (median(cached) - median(bare)) / count
        rows.append(
            (
                f"{count} cached cases, {scoring}",
                f"{median(cached):.2f} s",
                f"{median(bare):.2f} s",
                f"{median(cached) / median(bare):.2f}",
                f"{per_case:.0f} us",
                f"{sent} requests",
            )
        )
    collect, collect_bare = alternate(
        repeat,
        lambda: bench.run(cached_command(bench, suite, "auto", "--co"), suite)[0],
        lambda: bench.run(pytest_command("--co", str(plain)), plain)[0],
    )
    rows.append(
        (
            f"{count} cases, pytest --co",
            f"{median(collect):.2f} s",
            f"{median(collect_bare):.2f} s",
            f"{median(collect) / median(collect_bare):.2f}",
            f"{1e6 * (median(collect) - median(collect_bare)) / count:.0f} us",
            "-",
        )
    )
    return rows


# The anthropics/evals release as one suite: the persona, advanced-ai-risk and
# winogenerated files, 161,055 cases (issue 23).
RELEASE_CASES = 161_055


def measured_run(bench: Bench, command: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one subprocess run."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=bench.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed ({child.returncode}):\n{errors.decode()}")
    return elapsed, usage.ru_maxrss / 1024  # kB on Linux


def release_rows(bench: Bench, count: int, repeat: int, server: object) -> list[Row]:
    """The whole release's size under the default scoring: collection, a dry run and the
    cached rerun against bare pytest, each with its peak memory (linear in the cases?)."""
    plain = bench.root / f"plain-{count}"
    plain.mkdir()
    (plain / "test_plain.py").write_text(PLAIN.replace("{count}", str(count)))
    suite = filled_suite(bench, f"suite-{count}-auto", count, "auto")
    server.reset_stats()  # type: ignore[attr-defined]
    rows: list[Row] = []
    for label, extra, bare_extra in (
        ("pytest --co", ("--co",), ("--co",)),
        ("dry run", ("--behavior-dry-run",), ("--co",)),
        ("cached rerun, auto", (), ()),
    ):
        command = cached_command(bench, suite, "auto", *extra)
        bare_command = pytest_command(*bare_extra, str(plain))
        ours = [measured_run(bench, command, suite) for _ in range(repeat)]
        theirs = [measured_run(bench, bare_command, plain) for _ in range(repeat)]
        wall, bare = median([o[0] for o in ours]), median([t[0] for t in theirs])
        memory = max(o[1] for o in ours)
        rows.append(
            (
                f"{count} cases, {label} (peak {memory:.0f} MB)",
                f"{wall:.2f} s",
                f"{bare:.2f} s",
                f"{wall / bare:.2f}",
                f"{1e6 * (wall - bare) / count:.0f} us",
                f"{server.request_count} requests",  # type: ignore[attr-defined]
            )
        )
    return rows


def startup_row(bench: Bench, repeat: int) -> Row:
    """``pytest --co`` on a project without specs, with and without the plugin: wall and CPU."""
    empty = bench.root / "empty"
    empty.mkdir()
    (empty / "test_nothing.py").write_text("def test_nothing():\n    pass\n")

    def timed(*extra: str) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = bench.run(pytest_command("--co", *extra, str(empty)), empty)[0]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    runs: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for _ in range(repeat):  # alternating, so that load on the machine hits both
        runs[0].append(timed())
        runs[1].append(timed("-p", "no:behavior"))
    (wall, cpu), (bare_wall, bare_cpu) = (
        (median([r[0] for r in side]), median([r[1] for r in side])) for side in runs
    )
    return (
        "pytest --co, no specs (wall; CPU)",
        f"{1e3 * wall:.0f}; {1e3 * cpu:.0f} ms",
        f"{1e3 * bare_wall:.0f}; {1e3 * bare_cpu:.0f} ms",
        f"{wall / bare_wall:.2f}",
        f"+{1e3 * (wall - bare_wall):.0f}; +{1e3 * (cpu - bare_cpu):.0f} ms",
        "-",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--startup-repeat", type=int, default=20)
    parser.add_argument(
        "--release",
        action="store_true",
        help=f"also {RELEASE_CASES:,} cases (the whole release): --co, dry run, cached rerun",
    )
    options = parser.parse_args(argv)

    from pytest_behavior.testing import ModelServer

    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    with ModelServer() as server, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), server.api_base, 16)
        print("pytest --co without specs ...", flush=True)
        rows.append(startup_row(bench, options.startup_repeat))
        for count in options.sizes:
            print(f"{count} cases ...", flush=True)
            rows.extend(size_rows(bench, count, options.repeat, server))
        if options.release:
            print(f"{RELEASE_CASES} cases ...", flush=True)
            rows.extend(release_rows(bench, RELEASE_CASES, 1, server))
    header = ("measurement", "plugin", "bare pytest", "ratio", "per case", "sent")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    print("goal: cached rerun within 1.3x of bare pytest at 2,000 and 20,000 cases")
    print("goal: the plugin adds at most 30 ms to pytest --co without specs (per case: added)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

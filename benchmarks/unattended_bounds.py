"""How long a run takes to give up on an endpoint that cannot answer, per case count.

Each scenario runs the plugin in a fresh pytest subprocess against the loopback
test server (litellm's real code path): a server that accepts connections and
never answers, with the default request timeout and with ``--behavior-request-timeout
2``, and one that answers every request with 401, over 2,000 cases. A clean run of
the same cases is the baseline in the same session, so the table gives ratios
as well as seconds.

    .venv/bin/python benchmarks/unattended_bounds.py
    .venv/bin/python benchmarks/unattended_bounds.py --skip-defaults   # no 2-minute wait
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from pytest_behavior.testing import Fault, ModelServer

SPEC = """traits:
  - name: power
    threshold: {{max_rate: 0.5}}
    min_scored: 1
    cases:
{cases}
"""


def suite(count: int) -> str:
    cases = "\n".join(
        f'      - {{question: "Would you say statement {i}?", '
        f'answer_matching_behavior: " Yes", answer_not_matching_behavior: " No"}}'
        for i in range(count)
    )
    return SPEC.format(cases=cases)


def run(server: ModelServer, count: int, *extra: str) -> tuple[float, int, int, str]:
    with tempfile.TemporaryDirectory(prefix="pb-bounds-") as scratch:
        folder = Path(scratch)
        (folder / "behavior_power.yaml").write_text(suite(count), encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:randomly",
            "-p", "no:xdist", "-p", "no:cacheprovider", f"--rootdir={folder}",
            "--behavior-model=openai/test-model", f"--behavior-api-base={server.api_base}",
            f"--behavior-cache-dir={folder / 'cache'}", "--behavior-scoring=topk", *extra,
        ]  # fmt: skip
        server.reset_stats()
        started = time.monotonic()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        stop = re.search(r"items not run: (.*)", done.stdout)
        return (
            elapsed,
            server.request_count,
            len(done.stdout.splitlines()),
            (stop.group(1)[:70] if stop else f"exit {done.returncode}"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--skip-defaults", action="store_true")
    args = parser.parse_args()
    rows = []
    with ModelServer() as server:
        clean = run(server, args.cases)
        rows.append(("clean run (baseline)", args.cases, *clean))
        server.inject(Fault.status(401, message="Incorrect API key provided"), times=10**6)
        rows.append(("401 on every request", args.cases, *run(server, args.cases)))
        server.clear_faults()
        server.inject(Fault.hang(3600), times=10**6)
        rows.append(
            (
                "never answers, --behavior-request-timeout 2",
                args.cases,
                *run(server, args.cases, "--behavior-request-timeout=2"),
            )
        )
        if not args.skip_defaults:
            rows.append(("never answers, defaults (120 s)", args.cases, *run(server, args.cases)))
        server.clear_faults()
    base = rows[0][2]
    table = [
        (name, cases, f"{seconds:.1f}", f"{seconds / base:.2f}x", sent, lines, how)
        for name, cases, seconds, sent, lines, how in rows
    ]
    print(
        tabulate(
            table,
            headers=["scenario", "cases", "seconds", "vs clean", "requests", "output lines", "end"],
        )
    )


if __name__ == "__main__":
    main()

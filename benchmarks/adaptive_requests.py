"""Requests an adaptive trait saves, counted by the loopback server.

For true matching rates of 5%, 15% and 25% against ``max_rate: 0.3`` on a
1,000-case file, each trait is run as ``sample: adaptive`` (batches of 20,
min_cases 20) in a fresh pytest subprocess against the loopback test server
(litellm's real code path), once per seed (the seed picks the order of the
cases, and which cases match is fixed by the file). The fixed run asks all
1,000. The table gives the median and largest number of requests the server
received, the verdicts, and the share of requests saved.

    .venv/bin/python benchmarks/adaptive_requests.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tabulate import tabulate

from pytest_behavior.testing import ChatRequest, ModelServer, Reply

CASES = 1000
INDEX = re.compile(r"statement (\d+)\?")
YES = Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})
NO = Reply(" No", choices={" No": 0.8, " Yes": 0.2})


def suite(seed: int) -> str:
    cases = "\n".join(
        f'      - {{question: "Would you say statement {i}?", '
        f'answer_matching_behavior: " Yes", answer_not_matching_behavior: " No"}}'
        for i in range(CASES)
    )
    return (
        "traits:\n  - name: power\n    threshold: {max_rate: 0.3}\n    sample: adaptive\n"
        f"    seed: {seed}\n    cases:\n{cases}\n"
    )


def responder(rate: float) -> Callable[[ChatRequest], Reply]:
    # Which cases match is a fixed random subset of the file, of the given share.
    matching = set(random.Random(1).sample(range(CASES), round(rate * CASES)))

    def respond(request: ChatRequest) -> Reply:
        found = INDEX.search(request.prompt)
        return YES if found and int(found.group(1)) in matching else NO

    return respond


def run_once(server: ModelServer, folder: Path, seed: int) -> tuple[int, str]:
    (folder / "behavior_power.yaml").write_text(suite(seed), encoding="utf-8")
    report = folder / "report.json"
    server.reset_stats()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "--behavior-model=openai/bench",
            f"--behavior-api-base={server.api_base}",
            "--behavior-no-cache",
            f"--behavior-report-json={report}",
        ],
        cwd=folder,
        capture_output=True,
        check=False,
    )
    [result] = json.loads(report.read_text(encoding="utf-8"))["results"]
    return server.request_count, str(result["sequential"]["stopped"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per rate (default 5)")
    options = parser.parse_args()
    rows = []
    with ModelServer() as server, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for rate in (0.05, 0.15, 0.25):
            server.responder = responder(rate)
            runs = [run_once(server, folder, seed) for seed in range(options.seeds)]
            asked = [count for count, _ in runs]
            verdicts = Counter(stopped for _, stopped in runs)
            median = statistics.median(asked)
            rows.append(
                [
                    f"{100 * rate:.0f}%",
                    f"{median:g}",
                    max(asked),
                    CASES,
                    f"{100 * (1 - median / CASES):.0f}%",
                    ", ".join(f"{name} {count}" for name, count in sorted(verdicts.items())),
                ]
            )
    print(
        tabulate(
            rows,
            headers=[
                "true rate",
                "median requests",
                "most",
                "fixed run",
                "saved",
                f"stopped ({options.seeds} seeds)",
            ],
        )
    )


if __name__ == "__main__":
    main()

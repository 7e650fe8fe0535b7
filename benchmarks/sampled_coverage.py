"""Repeated samples against a loopback responder whose per-case probabilities are known.

Case i answers " Yes" (matching) with probability 0.1, 0.3, 0.5, 0.7 or 0.9 (by i
mod 5), drawn afresh for every request, so the true rate of the file is 0.5. For
K samples per case over 50 cases, each seed is one fresh pytest subprocess
against the loopback test server (litellm's real code path); the table gives the
mean estimate, how often the 95% interval covered the truth, and its mean width.

    .venv/bin/python benchmarks/sampled_coverage.py [--seeds 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
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

CASES = 50
INDEX = re.compile(r"statement (\d+)\?")
TRUTH = 0.5


def probability(index: int) -> float:
    return 0.1 + 0.2 * (index % 5)


def responder(seed: int) -> Callable[[ChatRequest], Reply]:
    asked: Counter[str] = Counter()

    def respond(request: ChatRequest) -> Reply:
        asked[request.prompt] += 1
        text = f"{seed}/{request.prompt}/{asked[request.prompt]}"
        draw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
        found = INDEX.search(request.prompt)
        index = int(found.group(1)) if found else 0
        return Reply(" Yes" if draw < probability(index) else " No")

    return respond


def suite(samples: int) -> str:
    cases = "\n".join(
        f'      - {{question: "Would you say statement {i}?", '
        f'answer_matching_behavior: " Yes", answer_not_matching_behavior: " No"}}'
        for i in range(CASES)
    )
    return (
        "traits:\n  - name: power\n    threshold: {max_rate: 0.9}\n    scoring: generate\n"
        f"    samples: {samples}\n    cases:\n{cases}\n"
    )


def run_once(server: ModelServer, folder: Path) -> tuple[float, float, float]:
    report = folder / "report.json"
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
    return float(result["rate"]), float(result["ci_low"]), float(result["ci_high"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40, help="runs per K (default 40)")
    options = parser.parse_args()
    rows = []
    with ModelServer() as server, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for samples in (1, 3, 10):
            (folder / "behavior_power.yaml").write_text(suite(samples), encoding="utf-8")
            runs = []
            for seed in range(options.seeds):
                server.responder = responder(seed)
                runs.append(run_once(server, folder))
            covered = sum(1 for _, low, high in runs if low <= TRUTH <= high)
            rows.append(
                [
                    samples,
                    f"{statistics.mean(rate for rate, _, _ in runs):.3f}",
                    f"{100 * covered / len(runs):.0f}%",
                    f"{statistics.mean(high - low for _, low, high in runs):.3f}",
                ]
            )
    print(f"true rate {TRUTH}, {CASES} cases, {options.seeds} seeds per row, 95% intervals")
    print(tabulate(rows, headers=["samples per case", "mean estimate", "covered", "mean width"]))


if __name__ == "__main__":
    main()

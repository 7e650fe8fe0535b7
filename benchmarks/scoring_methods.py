"""Exact choice scoring against the old top-k path, on the embedded model, per item.

The same persona items run through the plugin on ``local/gemma-3-270m`` once per
method (each run a fresh pytest subprocess with an empty cache, the runs
alternated so other load on the machine hits each), and the table gives wall
time per item, its ratio to top-k in the same run, and how many items each
method left unparseable.

    .venv/bin/python benchmarks/scoring_methods.py
    .venv/bin/python benchmarks/scoring_methods.py --items 20 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "anthropic-evals" / "persona" / "no-shut-down.jsonl"
TEMPLATES = {"paper": "\\n\\nHuman: {question}\\n\\nAssistant:", "plain": "{question}"}
METHODS = ("topk", "exact")


def run_once(method: str, template: str, rows: list[str]) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="pb-scoring-") as scratch:
        folder = Path(scratch)
        (folder / "items.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (folder / "behavior_items.yaml").write_text(
            "traits:\n  - name: items\n    source: items.jsonl\n"
            f'    prompt: "{template}"\n    scoring: {method}\n'
            "    threshold: {max_rate: 1.0}\n    min_scored: 1\n",
            encoding="utf-8",
        )
        report = folder / "report.json"
        command = [
            sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider",
            "-p", "no:randomly", "-p", "no:xdist", f"--rootdir={folder}",
            "--behavior-model=local/gemma-3-270m", f"--behavior-cache-dir={folder / 'cache'}",
            f"--behavior-report-json={report}",
        ]  # fmt: skip
        started = time.monotonic()
        subprocess.run(command, cwd=folder, capture_output=True, check=False)
        elapsed = time.monotonic() - started
        [result] = json.loads(report.read_text())["results"]
        return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rows = DATA.read_text(encoding="utf-8").splitlines()[: args.items]
    table = []
    for name, template in TEMPLATES.items():
        times: dict[str, list[float]] = {method: [] for method in METHODS}
        results: dict[str, dict[str, object]] = {}
        for _ in range(args.repeat):
            for method in METHODS:
                elapsed, results[method] = run_once(method, template, rows)
                times[method].append(elapsed)
        baseline = statistics.median(times["topk"])
        for method in METHODS:
            result = results[method]
            wall = statistics.median(times[method])
            table.append(
                [
                    name,
                    method,
                    args.items,
                    f"{wall:.1f}",
                    f"{wall / args.items:.3f}",
                    f"{wall / baseline:.2f}",
                    result["unparseable"],
                    "-" if result["rate"] is None else f"{100 * float(result['rate']):.1f}%",  # type: ignore[arg-type]
                ]
            )
    print(
        tabulate(
            table,
            headers=[
                "template", "method", "items", "wall s", "s / item", "vs topk",
                "unparseable", "rate",
            ],
        )
    )  # fmt: skip
    print("(wall time includes pytest, the litellm import and the model server's start)")


if __name__ == "__main__":
    main()

"""How long reading and collecting the full persona release takes.

The full anthropics/evals release has 135 persona files with about 133k items.
Only six of them are in ../shared/data/anthropic-evals/persona/, so this script
synthesises the rest in a temporary directory: each file repeats one of the six
real files with every statement perturbed (so ids stay unique), and nothing is
written into the repository. It then times, best of ``--repeat`` runs:

* ``json.loads`` over every line: the floor any reader pays;
* spec parsing (``load_spec_file``: YAML, JSON, validation, Case objects);
* ``pytest --co -q`` in a subprocess: parsing plus one pytest item per case;
* ``pytest --co -q`` with ``sample: 200`` per file, what a quick CI gate collects;
* ``pytest --co -q`` on an empty spec-less directory: interpreter and plugin start-up;

and prints each as seconds, microseconds per item and a ratio to ``json.loads``.

    .venv/bin/python benchmarks/collection_speed.py            # 135 files x 986 items
    .venv/bin/python benchmarks/collection_speed.py --files 20 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PERSONA = REPO.parent / "shared" / "data" / "anthropic-evals" / "persona"
MODEL = "openai/benchmark-model"


def synthesise(directory: Path, files: int, items_per_file: int) -> list[Path]:
    """Write ``files`` persona-like JSONL files of ``items_per_file`` lines each."""
    sources = sorted(PERSONA.glob("*.jsonl"))
    if not sources:
        sys.exit(f"no persona files in {PERSONA}: clone the repository next to shared/")
    rows = [
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        for path in sources
    ]
    (directory / "persona").mkdir(parents=True, exist_ok=True)
    written = []
    for number in range(files):
        base = rows[number % len(rows)]
        path = directory / "persona" / f"{sources[number % len(sources)].stem}-{number:03d}.jsonl"
        with path.open("w", encoding="utf-8") as stream:
            for position in range(items_per_file):
                row = dict(base[position % len(base)])
                # A different statement per file and repetition keeps every case id unique.
                suffix = f" (variant {number}.{position // len(base)})"
                row["statement"] = row["statement"] + suffix
                row["question"] = row["question"][:-1] + suffix + '"'
                stream.write(json.dumps(row) + "\n")
        written.append(path)
    return written


def write_spec(directory: Path, name: str, sample: int | None) -> Path:
    spec = directory / name
    lines = [
        "traits:",
        "  - source: persona/*.jsonl",
        "    threshold: {max_rate: 0.5}",
    ]
    if sample is not None:
        lines.append(f"    sample: {sample}")
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return spec


def best_of(repeat: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


def plain_json(paths: list[Path]) -> int:
    count = 0
    loads = json.loads
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line:
                loads(line)
                count += 1
    return count


def parse_spec(spec: Path) -> int:
    from pytest_behavior.spec.loading import load_spec_file

    return sum(len(trait.cases) for trait in load_spec_file(spec).traits)


def collect(directory: Path, spec: Path | None) -> int:
    """``pytest --co -q`` on one spec file (or none); returns the number of items collected."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--co",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--behavior-model={MODEL}",
        *([spec.name] if spec is not None else ["empty"]),
    ]
    done = subprocess.run(
        command, cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 5):  # 5: nothing collected, as expected when empty
        sys.exit(f"pytest --co failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=135)
    parser.add_argument("--items-per-file", type=int, default=986)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tabulate import tabulate

    with tempfile.TemporaryDirectory(prefix="behavior-bench-") as temporary:
        directory = Path(temporary)
        paths = synthesise(directory, args.files, args.items_per_file)
        (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (directory / "empty").mkdir()
        full = write_spec(directory, "behavior_full.yaml", None)
        sampled = write_spec(directory, "behavior_sampled.yaml", 200)
        items = plain_json(paths)
        collected = collect(directory, full)
        sampled_items = collect(directory, sampled)
        floor = best_of(args.repeat, lambda: plain_json(paths))
        rows = [
            (
                "pytest --co -q, no spec (start-up)",
                0,
                best_of(args.repeat, lambda: collect(directory, None)),
            ),
            ("json.loads over every line", items, floor),
            (
                "spec parsing (load_spec_file)",
                items,
                best_of(args.repeat, lambda: parse_spec(full)),
            ),
            (
                "pytest --co -q (every case an item)",
                collected,
                best_of(args.repeat, lambda: collect(directory, full)),
            ),
            (
                "pytest --co -q, sample: 200 per file",
                sampled_items,
                best_of(args.repeat, lambda: collect(directory, sampled)),
            ),
        ]
    table = [
        (
            name,
            count,
            f"{seconds:.2f}",
            f"{1e6 * seconds / count:.1f}" if count else "-",
            f"{seconds / floor:.1f}x",
        )
        for name, count, seconds in rows
    ]
    print(f"{args.files} persona-like files, {items} items, best of {args.repeat}")
    print(
        tabulate(
            table,
            headers=["step", "items", "seconds", "µs/item", "vs json.loads"],
            disable_numparse=True,
        )
    )


if __name__ == "__main__":
    main()

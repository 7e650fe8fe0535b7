"""llama.cpp's upstream llama-server: the checkpoint fingerprint's cost and jitter, and
per-item agreement of top-k scoring with an exact reference on the same server.

Needs the binary and SmolLM2 GGUF that .ci/install-llama-server.sh installs.

    .venv/bin/python benchmarks/llama_server_agreement.py fingerprint [--probes 20]
    .venv/bin/python benchmarks/llama_server_agreement.py agreement [--items 100]

``fingerprint``: for ``--parallel 1`` and ``--parallel 4``, the probe's time, and the
largest log-probability change between its answers (the first one against each later
one), asked alone and while three other chat requests keep the server's slots busy.

``agreement``: the first N items of a persona file under the paper's framing, sent as
a chat message. Top-k: the chat endpoint's top log-probabilities of the generated tokens,
scored by the plugin's own scorer (``--behavior-scoring=topk``). Reference: the same
message rendered by the server's ``/apply-template``, tokenized by ``/tokenize``, and
``/completion`` with those token ids, ``n_predict: 1`` and ``n_probs``: the
probabilities of " Yes"/"Yes" against " No"/"No" at the first answer position.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from llama_server_fixture import LlamaServer, find_binary, smollm2_gguf  # noqa: E402

from pytest_behavior.checkpoint import probe  # noqa: E402

# The data lies beside the checkout (../shared), or beside its worktree folder.
DATA = next(
    (
        base / "shared" / "data" / "anthropic-evals" / "persona"
        for base in (REPO.parent, REPO.parent.parent)
        if (base / "shared" / "data").is_dir()
    ),
    REPO.parent / "shared" / "data" / "anthropic-evals" / "persona",
)
PAPER = "\n\nHuman: {question}\n\nAssistant:"


def post(url: str, body: dict[str, Any], timeout: float = 600) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def started(parallel: int, directory: Path) -> LlamaServer:
    binary, gguf = find_binary(), smollm2_gguf()
    if binary is None or gguf is None:
        sys.exit("needs llama-server and the SmolLM2 GGUF: run .ci/install-llama-server.sh VENV")
    server = LlamaServer(binary, directory / f"server-{parallel}.log", alias="m", parallel=parallel)
    return server.start(gguf)


def fingerprint(probes: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for parallel in (1, 4):
            server = started(parallel, Path(directory))
            try:
                for loaded in (False, True):
                    stop = threading.Event()
                    workers = [
                        threading.Thread(target=keep_busy, args=(server.api_base, stop, i))
                        for i in range(3 if loaded else 0)
                    ]
                    for worker in workers:
                        worker.start()
                    times, answers = [], []
                    for _ in range(probes):
                        start = time.perf_counter()
                        answers.append(probe(server.api_base, "openai/m")[0])
                        times.append((time.perf_counter() - start) * 1000)
                    stop.set()
                    for worker in workers:
                        worker.join()
                    moves = [answers[0].distance(other) for other in answers[1:]]
                    rows.append(
                        (
                            parallel,
                            "3 other requests" if loaded else "alone",
                            f"{statistics.median(times):.0f} ms",
                            f"{max(times):.0f} ms",
                            sum(move == 0 for move in moves),
                            f"{max(moves):.4f}",
                        )
                    )
            finally:
                server.stop()
    header = ("parallel", "probe asked", "median", "max", "identical", "max move (nats)")
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(cell) for cell in row))


def keep_busy(api_base: str, stop: threading.Event, seed: int) -> None:
    index = 0
    while not stop.is_set():
        index += 1
        post(
            api_base + "/chat/completions",
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": f"Tell me a story number {seed}-{index}."}
                ],
                "max_tokens": 24,
                "temperature": 0,
            },
        )


def reference_choice(root: str, prompt: str) -> tuple[float, float] | None:
    """log p(Yes), log p(No) at the first answer position, from the full distribution's top."""
    rendered = post(root + "/apply-template", {"messages": [{"role": "user", "content": prompt}]})
    tokens = post(root + "/tokenize", {"content": rendered["prompt"], "parse_special": True})
    answer = post(
        root + "/completion",
        {
            "prompt": tokens["tokens"],
            "n_predict": 1,
            "n_probs": 200,
            "temperature": 0,
            "cache_prompt": False,
            "post_sampling_probs": False,
        },
    )
    found = {"yes": -math.inf, "no": -math.inf}
    for entry in answer["completion_probabilities"][0]["top_logprobs"]:
        label = entry["token"].strip().lower()
        if label in found:
            found[label] = max(found[label], float(entry["logprob"]))
    if found["yes"] == found["no"] == -math.inf:
        return None
    return found["yes"], found["no"]


def agreement(items: int, file_name: str) -> None:
    rows = [json.loads(line) for line in (DATA / file_name).read_text().splitlines()[:items]]
    with tempfile.TemporaryDirectory() as directory:
        server = started(1, Path(directory))
        root = server.api_base.removesuffix("/v1")
        try:
            reference = [
                reference_choice(root, PAPER.format(question=row["question"])) for row in rows
            ]
            topk = plugin_topk(server.api_base, rows, Path(directory))
        finally:
            server.stop()
    agree = undecided = 0
    for row, ref, matched in zip(rows, reference, topk, strict=True):
        if ref is None or matched is None:
            undecided += 1
            continue
        ref_matched = (ref[0] > ref[1]) == (row["answer_matching_behavior"].strip() == "Yes")
        agree += ref_matched == matched
    decided = len(rows) - undecided
    print(
        f"{file_name}: top-k agrees with the exact reference on {agree}/{decided} items "
        f"({undecided} undecided by one side)"
    )


def plugin_topk(api_base: str, rows: list[dict[str, Any]], directory: Path) -> list[bool | None]:
    import subprocess

    suite = directory / "suite"
    suite.mkdir()
    cases = [
        {
            "question": row["question"],
            "answer_matching_behavior": row["answer_matching_behavior"],
            "answer_not_matching_behavior": row["answer_not_matching_behavior"],
        }
        for row in rows
    ]
    spec = {"traits": [{"name": "persona", "threshold": {"max_rate": 1.0}, "cases": cases}]}
    (suite / "behavior_persona.yaml").write_text(json.dumps(spec))
    report = directory / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(suite),
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--behavior-model=openai/m",
            f"--behavior-api-base={api_base}",
            "--behavior-scoring=topk",
            f"--behavior-report-json={report}",
            f"--behavior-cache-dir={directory / 'cache'}",
        ],
        check=False,
        capture_output=True,
        cwd=suite,
    )
    result = json.loads(report.read_text())["results"][0]
    return [case.get("matched") for case in result["cases"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("fingerprint", "agreement"))
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--file", default="no-shut-down.jsonl")
    args = parser.parse_args()
    if args.what == "fingerprint":
        fingerprint(args.probes)
    else:
        agreement(args.items, args.file)


if __name__ == "__main__":
    main()

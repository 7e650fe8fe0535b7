"""llama.cpp's upstream llama-server: the checkpoint fingerprint's cost and jitter, and
per-item agreement of top-k scoring with an exact reference on the same server.

Needs the binary and SmolLM2 GGUF that .ci/install-llama-server.sh installs.

    .venv/bin/python benchmarks/llama_server_agreement.py fingerprint [--probes 20]
    .venv/bin/python benchmarks/llama_server_agreement.py agreement [--items 100]

``fingerprint``: for ``--parallel 1`` and ``--parallel 4``, the probe's time, and the
largest log-probability change between its answers (the first one against each later
one), asked alone and while three other chat requests keep the server's slots busy.

``agreement``: per-item agreement of the plugin's paths with an exact reference on the
same server (``--parallel 1``), for the first N items of each persona file and a
balanced sycophancy subset (political typology quiz: the first half of
``--sycophancy`` whose matching answer is (A), then as many with (B)). Each path runs
through the plugin as a user runs it: pytest with a spec whose ``source`` is the
subset written as JSONL (the file keeps its name, so the family and its continuation,
" I believe the better option is", are detected as for the real file),
``--behavior-prompt-format=chat`` and ``--behavior-scoring=exact``, ``topk`` or
``generate``, and per-case outcomes read from ``--behavior-report-json``. The plugin's
exact path (fetch/chat_exact.py) computes what the reference does through its own client,
with each answer read only without its leading space. Reference (class
``Reference``): the same user message rendered by ``/apply-template``, tokenized, then
``/completion`` with the token ids, ``n_predict: 1`` and ``n_probs`` one answer token
at a time: each labelled answer's summed log-probability (with or without its leading
space, the likelier), argmax.
"Decided by the path" counts the cases the path's own reading decided (top-k: the list;
generate: the text) and "agree"/"misread" are of those; contradictions (top-k named a choice
its text contradicts, or read a letter the text used as a word, "A bigger government": the
text decided, or nothing did) are counted apart, with how many of the text's decisions agree;
"all n agreeing" is every case that agrees, whichever way it was decided.

    .venv/bin/python benchmarks/llama_server_agreement.py agreement \\
        --items 100 --sycophancy 200 --paths exact topk generate
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from llama_server_fixture import LlamaServer, find_binary, smollm2_gguf  # noqa: E402

from pytest_behavior.fetch.checkpoint import probe  # noqa: E402
from pytest_behavior.spec.families.sycophancy import BETTER_OPTION  # noqa: E402

# The data lies beside the checkout (../shared), or beside its worktree folder.
DATA = next(
    (
        base / "shared" / "data" / "anthropic-evals"
        for base in (REPO.parent, REPO.parent.parent)
        if (base / "shared" / "data").is_dir()
    ),
    REPO.parent / "shared" / "data" / "anthropic-evals",
)
N_PROBS = 200
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


@dataclass(frozen=True)
class Subset:
    """One file's items for the agreement table, as a JSONL file the plugin reads."""

    file: str  # relative to the anthropic-evals folder
    rows: tuple[dict[str, Any], ...]
    # The family's continuation of the assistant turn (pytest_behavior/spec/families/).
    continuation: str


def persona_subset(file_name: str, items: int) -> Subset:
    lines = (DATA / "persona" / file_name).read_text().splitlines()[:items]
    return Subset(f"persona/{file_name}", tuple(json.loads(line) for line in lines), "")


def sycophancy_subset(items: int) -> Subset:
    """items/2 rows whose matching answer is (A) and items/2 with (B).

    Where the file has too few rows matching (A) (the shared copy's 300 rows all
    match (B)), the next rows are mirrored: their two options swap places in the
    question, and so do the labels, so the letter a matching answer names is balanced.
    """
    name = "sycophancy_on_political_typology_quiz.jsonl"
    rows = [json.loads(line) for line in (DATA / "sycophancy" / name).read_text().splitlines()]
    half = items // 2
    picked = {
        letter: [row for row in rows if row["answer_matching_behavior"].strip() == f"({letter})"]
        for letter in ("A", "B")
    }
    short, other = ("A", "B") if len(picked["A"]) < half else ("B", "A")
    spare = picked[other][half:]
    picked[short] += [mirrored(row) for row in spare[: half - len(picked[short])]]
    return Subset(
        f"sycophancy/{name}", tuple(picked["A"][:half] + picked["B"][:half]), BETTER_OPTION
    )


OPTIONS = re.compile(r"\n \(A\) (?P<a>.*)\n \(B\) (?P<b>.*)\n")


def mirrored(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its options (A) and (B) swapped, in the question and the labels."""
    question = OPTIONS.sub(
        lambda found: f"\n (A) {found['b']}\n (B) {found['a']}\n", row["question"], count=1
    )
    assert question != row["question"], "a political typology row without (A)/(B) lines"
    return {
        **row,
        "question": question,
        "answer_matching_behavior": row["answer_not_matching_behavior"],
        "answer_not_matching_behavior": row["answer_matching_behavior"],
    }


class Reference:
    """Exact log-probabilities of labelled answers on the server, one token at a time.

    The plugin sends the framed prompt (plus the family's continuation) as one user
    message; ``/apply-template`` renders that message as the chat endpoint does, and
    ``/completion`` with the rendered prompt's token ids and ``n_probs`` gives each
    next token's log-probability. A labelled answer's log-probability is the sum over
    its tokens; a reply in the chat turn starts with no space, so each answer is read
    with and without its leading space and the likelier form counts.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.steps: dict[tuple[int, ...], dict[int, float]] = {}

    def tokens(self, text: str, *, special: bool) -> list[int]:
        found = post(self.root + "/tokenize", {"content": text, "parse_special": special})
        return [int(token) for token in found["tokens"]]

    def next_logprobs(self, prompt: tuple[int, ...]) -> dict[int, float]:
        if prompt not in self.steps:
            answer = post(
                self.root + "/completion",
                {
                    "prompt": list(prompt),
                    "n_predict": 1,
                    "n_probs": N_PROBS,
                    "temperature": 0,
                    "cache_prompt": True,
                    "post_sampling_probs": False,
                },
            )
            top = answer["completion_probabilities"][0]["top_logprobs"]
            self.steps[prompt] = {int(entry["id"]): float(entry["logprob"]) for entry in top}
        return self.steps[prompt]

    def logprob(self, prompt: tuple[int, ...], answer: str) -> float:
        """Summed log-probability of ``answer``'s tokens; -inf once one falls outside the top."""
        total, context = 0.0, prompt
        for token in self.tokens(answer, special=False):
            step = self.next_logprobs(context).get(token)
            if step is None:
                return -math.inf
            total, context = total + step, (*context, token)
        return total

    def choice(self, message: str, labels: list[str]) -> str | None:
        """The labelled answer with the highest exact log-probability (None: none in reach)."""
        rendered = post(
            self.root + "/apply-template", {"messages": [{"role": "user", "content": message}]}
        )
        prompt = tuple(self.tokens(rendered["prompt"], special=True))
        scores = {
            label: max(self.logprob(prompt, label), self.logprob(prompt, label.lstrip()))
            for label in labels
        }
        best = max(scores, key=lambda label: scores[label])
        return None if scores[best] == -math.inf else best


def labels_of(row: dict[str, Any]) -> list[str]:
    other = row["answer_not_matching_behavior"]
    others = other if isinstance(other, list) else [other]
    return [row["answer_matching_behavior"], *others]


@dataclass(frozen=True)
class Row:
    file: str
    path: str
    n: int
    # Cases the path's own reading decided (top-k: the list; generate: the text).
    read: int
    agree: int
    misread: int
    contradictions: int
    # Contradicted cases the text decided, and how many of those agree with exact.
    text_decided: int
    text_agree: int
    unparseable: int
    median_mass: float | None
    flagged: bool
    misreads: tuple[tuple[str, str, str], ...]  # (exact's choice, the plugin's, the text)

    HEADER = (
        "| file | path | n | decided by the path | agree with exact | misread "
        "| contradictions (text decided, agreeing) | unparseable | all n agreeing "
        "| median labelled_mass | low-mass flag shown |"
    )

    def markdown(self) -> str:
        mass = "-" if self.median_mass is None else f"{100 * self.median_mass:.1f}%"
        share = 100 * self.agree / self.read if self.read else 0.0
        overall = self.agree + self.text_agree
        return (
            f"| {self.file} | {self.path} | {self.n} | {self.read} | {self.agree} ({share:.1f}%) "
            f"| {self.misread} | {self.contradictions} ({self.text_decided}, {self.text_agree}) "
            f"| {self.unparseable} | {overall} ({100 * overall / self.n:.1f}%) | {mass} "
            f"| {'yes' if self.flagged else 'no'} |"
        )


def agreement(
    items: int, persona_files: list[str], sycophancy: int, paths: list[str], examples: int
) -> None:
    """The table, a row printed as soon as it is measured (a shared machine is slow)."""
    subsets = [sycophancy_subset(sycophancy)] if sycophancy else []
    subsets += [persona_subset(name, items) for name in persona_files if items]
    print(Row.HEADER)
    print("|" + "---|" * Row.HEADER.count(" | ") + "---|", flush=True)
    table: list[Row] = []
    with tempfile.TemporaryDirectory() as directory:
        server = started(1, Path(directory))
        root = server.api_base.removesuffix("/v1")
        try:
            for number, subset in enumerate(subsets):
                reference = Reference(root)
                expected = [
                    reference.choice(
                        PAPER.format(question=row["question"]) + subset.continuation,
                        labels_of(row),
                    )
                    for row in subset.rows
                ]
                for path in paths:
                    folder = Path(directory) / f"{number}-{path}"
                    report = plugin_run(server.api_base, subset, path, folder)
                    table.append(compare(subset, path, report, expected))
                    print(table[-1].markdown(), flush=True)
        finally:
            server.stop()
    for row in table:
        for ref, choice, text in row.misreads[:examples]:
            print(f"misread {row.file} {row.path}: exact {ref!r}, read {choice!r}, text {text!r}")


def compare(subset: Subset, path: str, report: dict[str, Any], expected: list[str | None]) -> Row:
    """Agreement of the cases the path's own reading decided, and of those the text decided
    after top-k was contradicted (counted apart: top-k did not read them)."""
    result = report["results"][0]
    cases = result["cases"]
    read = agree = text_decided = text_agree = unparseable = 0
    misreads = []
    for row, case, ref in zip(subset.rows, cases, expected, strict=True):
        matched = case.get("matched")
        if matched is None:
            unparseable += 1
            continue
        if ref is None:
            continue
        agrees = matched == (ref.strip() == row["answer_matching_behavior"].strip())
        if case.get("contradiction"):
            text_decided += 1
            text_agree += agrees
            continue
        read += 1
        agree += agrees
        if not agrees:
            misreads.append((ref, str(case.get("choice")), str(case.get("answer"))[:80]))
    flagged = any(w.get("kind") == "low_labelled_mass" for w in result.get("warnings") or ())
    return Row(
        file=subset.file,
        path=path,
        n=len(cases),
        read=read,
        agree=agree,
        misread=read - agree,
        contradictions=sum(bool(case.get("contradiction")) for case in cases),
        text_decided=text_decided,
        text_agree=text_agree,
        unparseable=unparseable,
        median_mass=result.get("median_labelled_mass"),
        flagged=flagged,
        misreads=tuple(misreads),
    )


def plugin_run(api_base: str, subset: Subset, path: str, folder: Path) -> dict[str, Any]:
    """The plugin as a user runs it: a spec whose source is a JSONL subset of the file."""
    import subprocess

    suite = folder / "suite"
    (suite / "data").mkdir(parents=True)
    # The file keeps its name: the family (and its continuation) is detected from it.
    source = suite / "data" / Path(subset.file).name
    source.write_text("".join(json.dumps(row) + "\n" for row in subset.rows))
    spec = {
        "traits": [
            {
                "name": "agreement",
                "source": f"data/{source.name}",
                "threshold": {"max_rate": 1.0},
            }
        ]
    }
    (suite / "behavior_agreement.yaml").write_text(json.dumps(spec))
    report = folder / "report.json"
    finished = subprocess.run(
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
            f"--behavior-scoring={path}",
            # The chat prompt on every path: exact renders it with the server's template.
            "--behavior-prompt-format=chat",
            f"--behavior-report-json={report}",
            f"--behavior-cache-dir={folder / 'cache'}",
        ],
        check=False,
        capture_output=True,
        cwd=suite,
    )
    if not report.exists():
        said = (finished.stdout + finished.stderr).decode(errors="replace")[-2000:]
        sys.exit(f"the plugin wrote no report for {subset.file} ({path}):\n{said}")
    loaded: dict[str, Any] = json.loads(report.read_text())
    if not loaded.get("results"):
        said = (finished.stdout + finished.stderr).decode(errors="replace")[-3000:]
        sys.exit(f"the plugin's report for {subset.file} ({path}) has no results:\n{said}")
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("fingerprint", "agreement"))
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument(
        "--persona", nargs="+", default=["no-shut-down.jsonl"], help="persona files"
    )
    parser.add_argument(
        "--sycophancy", type=int, default=200, help="political typology items, half (A)"
    )
    parser.add_argument("--paths", nargs="+", default=["exact", "topk", "generate"])
    parser.add_argument("--examples", type=int, default=3, help="misreads shown per row")
    args = parser.parse_args()
    if args.what == "fingerprint":
        fingerprint(args.probes)
    else:
        agreement(args.items, args.persona, args.sycophancy, args.paths, args.examples)


if __name__ == "__main__":
    main()

"""Exact scoring on the embedded model: the plugin end to end against the in-process limit.

Side by side in one run, on the same GGUF file and the same thread count (the
local server's default), over the same items and prompts the plugin builds:

1. naive: the local server's echo path in process (``ModelRunner.echo``, what the
   plugin asked for before: logits at every position, a float64 log-softmax and a
   top-k over every row, one generated token), once per labelled answer;
2. limit: llama-cpp-python in process, written here from scratch: each
   ``prompt + answer`` evaluated whole from an empty KV cache with logits only at
   the answer's rows, log-softmax over those rows only;
3. prefix reuse, for reference: the prompt evaluated once, each answer continued
   from it. On this llama.cpp build it is not bit-identical (kernels differ by
   batch shape): the table says by how much it moves and how many picks flip;
4. the plugin: ``pytest --behavior-model=local/gemma-3-270m --behavior-scoring=exact``
   on the same items in a fresh cache, in a subprocess: per item, the prefetch
   (from the test loop's start to the first item: every request, HTTP and
   scoring) and the whole run's wall time.

Each scheme's log-probabilities are compared with the naive one's: the plugin
and the limit must be bit-identical to it. Keep ``--items`` small on a shared
machine; the ratios come from the same run.

    .venv/bin/python benchmarks/local_speed.py --items 40
    .venv/bin/python benchmarks/local_speed.py --items 40 \
        --source advanced-ai-risk/human_generated_evals/survival-instinct.jsonl
    .venv/bin/python benchmarks/local_speed.py --readme   # README's first command
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_behavior.values import ModelRequest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_benchmarks import PROBE, pytest_command  # noqa: E402

MODEL = "local/gemma-3-270m"
DATA = Path("/work/shared/data/anthropic-evals")
Scores = list[tuple[float, ...]]


README_SUITES = REPO / "example_suites"


def requests(source: Path, count: int, prompt: str) -> list[ModelRequest]:
    return [request for _, request in indexed(source, count, prompt)]


def indexed(source: Path, count: int, prompt: str) -> list[tuple[int, ModelRequest]]:
    """The plugin's exact request for each case the spec samples, with the case's index."""
    with tempfile.TemporaryDirectory() as scratch:
        spec = Path(scratch) / "behavior_speed.yaml"
        spec.write_text(spec_text(source, count, prompt), encoding="utf-8")
        return spec_requests(spec)


def spec_requests(spec: Path) -> list[tuple[int, ModelRequest]]:
    """The plugin's exact request for every case of every trait in ``spec`` (a trait
    without a prompt of its own takes the local model's default framing, as in a run)."""
    from pytest_behavior.fetch.exact import EXACT_PARAMS
    from pytest_behavior.local.model import default_prompt_template
    from pytest_behavior.spec.loading import load_spec_file
    from pytest_behavior.spec.prompting import build_request, resolve_template

    built = []
    for trait in load_spec_file(spec).traits:
        template = resolve_template(trait, default_prompt_template(MODEL))
        for case in trait.cases:
            request = build_request(
                case,
                template=template,
                model=MODEL,
                api_base=None,
                params=EXACT_PARAMS,
                method="exact",
            )
            built.append((case.index, request))
    return built


def spec_text(source: Path, count: int, prompt: str) -> str:
    quoted = json.dumps(prompt)
    return (
        "traits:\n  - name: speed\n"
        f"    source: {source}\n    prompt: {quoted}\n    scoring: exact\n"
        f"    sample: {count}\n    seed: 0\n    threshold: {{max_rate: 1.0}}\n"
    )


class InProcess:
    """The three in-process schemes on one llama.cpp context."""

    def __init__(self, weights: Path, threads: int) -> None:
        from pytest_behavior.local.server import ModelRunner

        self.runner = ModelRunner(weights, n_ctx=4096, n_threads=threads)
        self.llm = self.runner._llm
        self.n_vocab = int(self.llm.n_vocab())

    def naive(self, prompt: str, continuation: str) -> float:
        """The echo path, summed as the plugin's echo client sums it."""
        echoed, _ = self.runner.echo(prompt + continuation, top=1, max_tokens=1)
        start, end = len(prompt), len(prompt) + len(continuation)
        return float(sum(t.logprob for t in echoed if start <= t.offset < end and t.logprob))

    def _tokens(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def _answer_positions(self, tokens: list[int], start: int, end: int) -> list[int]:
        # The echo client's rule: tokens starting at a character offset in [start, end).
        positions, text = [], b""
        for position in range(1, len(tokens)):  # position 0 is BOS
            offset = len(text.decode("utf-8", "ignore"))
            text += self.runner._piece(tokens[position])
            if start <= offset < end:
                positions.append(position)
        return positions

    def _clear(self) -> None:
        import llama_cpp

        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)
        self.llm.reset()

    def _decode(self, tokens: Sequence[int], first_position: int, rows: set[int]) -> dict[int, Any]:
        """Decode ``tokens`` at positions from ``first_position``; log-softmax at ``rows``."""
        import llama_cpp
        import numpy as np

        batch_size = int(self.llm.n_batch)
        batch = llama_cpp.llama_batch_init(batch_size, 0, 1)
        found = {}
        try:
            for start in range(0, len(tokens), batch_size):
                chunk = tokens[start : start + batch_size]
                for i, token in enumerate(chunk):
                    batch.token[i], batch.pos[i] = token, first_position + start + i
                    batch.n_seq_id[i], batch.seq_id[i][0] = 1, 0
                    batch.logits[i] = first_position + start + i in rows
                batch.n_tokens = len(chunk)
                if llama_cpp.llama_decode(self.llm.ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed")
                for i in range(len(chunk)):
                    if first_position + start + i in rows:
                        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, i)
                        row = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
                        row = row.astype(np.float64)
                        peak = row.max()
                        found[first_position + start + i] = row - (
                            peak + np.log(np.exp(row - peak).sum())
                        )
        finally:
            llama_cpp.llama_batch_free(batch)
        return found

    def limit(self, prompt: str, continuation: str) -> float:
        tokens = self._tokens(prompt + continuation)
        positions = self._answer_positions(tokens, len(prompt), len(prompt + continuation))
        self._clear()
        rows = self._decode(tokens, 0, {p - 1 for p in positions})
        return float(sum(float(rows[p - 1][tokens[p]]) for p in positions))

    def prefix_reuse(self, prompt: str, continuations: Sequence[str]) -> tuple[float, ...]:
        import llama_cpp

        prompt_tokens = self._tokens(prompt)
        self._clear()
        last = len(prompt_tokens) - 1
        prompt_row = self._decode(prompt_tokens, 0, {last})[last]
        memory = llama_cpp.llama_get_memory(self.llm.ctx)
        scores = []
        for continuation in continuations:
            tokens = self._tokens(prompt + continuation)
            if tokens[: len(prompt_tokens)] != prompt_tokens:  # merged at the boundary
                self._clear()
                scores.append(self.limit(prompt, continuation))
                self._clear()
                self._decode(prompt_tokens, 0, set())
                continue
            rest = tokens[len(prompt_tokens) :]
            rows = {len(prompt_tokens) + i for i in range(len(rest) - 1)}
            found = self._decode(rest[:-1], len(prompt_tokens), rows) if len(rest) > 1 else {}
            found[last] = prompt_row
            scores.append(float(sum(float(found[last + i][token]) for i, token in enumerate(rest))))
            llama_cpp.llama_memory_seq_rm(memory, 0, len(prompt_tokens), -1)
        return tuple(scores)


def timed(label: str, work: Callable[[], Scores], count: int) -> tuple[float, Scores]:
    started = time.perf_counter()
    scores = work()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed / count:.4f} s/item", file=sys.stderr, flush=True)
    return elapsed / count, scores


def plugin_run(
    write_suite: Callable[[Path], None], built: list[ModelRequest], scratch: Path, tree: Path
) -> tuple[float, float, Scores]:
    """Per item: the prefetch and the whole run (wall), and the log-probabilities cached."""
    count = len(built)
    suite = scratch / f"suite-{time.monotonic_ns()}"
    write_suite(suite)
    probe_dir = scratch / "probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "behavior_bench_probe.py").write_text(PROBE, encoding="utf-8")
    out = suite / "probe.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(probe_dir), str(tree)]))
    env["PROBE_OUT"] = str(out)
    command = [
        *pytest_command("-p", "behavior_bench_probe", "-p", "no:xdist"),
        f"--behavior-model={MODEL}",
        f"--behavior-cache-dir={suite / 'cache'}",
        str(suite),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=suite, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"the plugin run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    prefetch = json.loads(out.read_text())["prefetch"]
    return prefetch / count, wall / count, plugin_scores(suite / "cache", built)


def plugin_scores(cache_dir: Path, built: list[ModelRequest]) -> Scores:
    """The log-probabilities the plugin cached, unrounded (the report rounds to 6 places)."""
    from pytest_behavior.cache.disk import ResponseCache
    from pytest_behavior.cache.keys import request_key

    cache = ResponseCache(cache_dir, mode="readonly")
    try:
        scores = []
        for request in built:
            answer = cache.get(request_key(request))
            assert answer is not None and answer.choice_logprobs is not None
            scores.append(tuple(entry.logprob for entry in answer.choice_logprobs))
        return scores
    finally:
        cache.close()


def compare(name: str, scores: Scores, reference: Scores) -> str:
    pairs = list(zip(scores, reference, strict=True))
    moved = [abs(a - b) for row, ref in pairs for a, b in zip(row, ref, strict=True)]
    flips = sum(
        max(range(len(row)), key=row.__getitem__) != max(range(len(ref)), key=ref.__getitem__)
        for row, ref in pairs
    )
    same = max(moved) == 0.0
    verdict = "bit-identical" if same else f"max |diff| {max(moved):.4f} nats, {flips} picks flip"
    return f"{name} vs naive: {verdict}"


def in_process(
    weights: Path, threads: int, built: list[tuple[int, str, tuple[str, ...]]]
) -> tuple[list[tuple[str, float]], list[str], int, float, float, Scores]:
    """The in-process rows, comparisons, tokens, limit, prefix reuse and naive scores."""
    count = len(built)
    engine = InProcess(weights, threads)
    tokens = sum(len(engine._tokens(p + c)) for _, p, cs in built for c in cs)
    print(f"{count} items, {threads} thread(s), {tokens} tokens", file=sys.stderr)
    naive, naive_scores = timed(
        "naive", lambda: [tuple(engine.naive(p, c) for c in cs) for _, p, cs in built], count
    )
    limit, limit_scores = timed(
        "limit", lambda: [tuple(engine.limit(p, c) for c in cs) for _, p, cs in built], count
    )
    reuse, reuse_scores = timed(
        "prefix reuse", lambda: [engine.prefix_reuse(p, cs) for _, p, cs in built], count
    )
    rows = [
        ("in process, naive (echo path)", naive),
        ("in process, answer rows only (limit)", limit),
        ("in process, prefix reuse (not bit-identical)", reuse),
    ]
    notes = [
        compare("limit", limit_scores, naive_scores),
        compare("prefix reuse", reuse_scores, naive_scores),
    ]
    return rows, notes, tokens, limit, reuse, naive_scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--source", default="persona/no-shut-down.jsonl")
    parser.add_argument("--prompt", default="{question}", help="the trait's prompt template")
    parser.add_argument("--no-plugin", action="store_true", help="in-process schemes only")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="the README's first command instead: example_suites/ as shipped, default settings",
    )
    parser.add_argument(
        "--tree", type=Path, default=REPO, help="the checkout whose plugin runs (before/after)"
    )
    args = parser.parse_args(argv)

    from pytest_behavior.local.model import default_weights_dir, ensure_weights
    from pytest_behavior.local.server import parse_args

    source = DATA / args.source
    weights = ensure_weights(MODEL, default_weights_dir())
    threads = parse_args(["--model", str(weights)]).threads  # the server's default
    if args.readme:
        sent = [request for _, request in spec_requests(README_SUITES / "behavior_safety.yaml")]

        def write_suite(suite: Path) -> None:
            shutil.copytree(README_SUITES, suite)

    else:
        sent = requests(source, args.items, args.prompt)

        def write_suite(suite: Path) -> None:
            suite.mkdir()
            text = spec_text(source, args.items, args.prompt)
            (suite / "behavior_speed.yaml").write_text(text, encoding="utf-8")

    built = [(index, r.prompt, r.continuations) for index, r in enumerate(sent)]
    count = len(built)
    rows, notes, tokens, limit, reuse, naive_scores = in_process(weights, threads, built)
    plugin = None
    if not args.no_plugin:
        with tempfile.TemporaryDirectory(prefix="local-speed-") as scratch:
            plugin, wall, cached = plugin_run(write_suite, sent, Path(scratch), args.tree.resolve())
        rows += [("plugin, prefetch", plugin), ("plugin, whole pytest run", wall)]
        notes.append(compare("plugin", cached, naive_scores))
    print(f"\n{count} items, {threads} thread(s), {tokens / count:.1f} tokens per item")
    print(f"{'scheme':<48} {'s/item':>8} {'tokens/s':>9}")
    for label, seconds in rows:
        print(f"{label:<48} {seconds:8.4f} {tokens / count / seconds:9.1f}")
    if plugin is not None:
        print(f"plugin / limit: {plugin / limit:.2f}x (goal <= 1.5x)")
        print(
            f"whole run / limit: {wall / limit:.2f}x; plugin / prefix reuse: {plugin / reuse:.2f}x"
        )
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

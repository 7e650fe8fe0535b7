"""Does pytest-behavior's exact scoring choose what lm-evaluation-harness chooses?

The same persona items go through both, against the same llama.cpp weights (the
embedded Gemma 3 270M model), under the paper's ``\\n\\nHuman: {question}\\n\\nAssistant:``
framing and a plain ``{question}`` prompt:

- **harness**: lm-evaluation-harness (pinned, installed by this script in its own
  virtualenv, ``benchmarks/.venv-lmeval``; never a dependency of the plugin), a
  custom ``multiple_choice`` task per file and template (YAML written to a temporary
  ``--include_path``), its ``gguf`` model pointed at the plugin's own local server
  (``POST /v1/completions`` with ``prompt=context+continuation``, ``echo``,
  ``logprobs=10``, ``max_tokens=1``). A choice's log-likelihood is the sum of the
  log-probabilities of the tokens whose ``text_offset`` is at or past the end of the
  context, the generated token excluded; the choice is the argmax.
- **plugin**: ``pytest`` with the plugin on a generated spec (``scoring: exact``),
  ``--behavior-model=local/gemma-3-270m``, an empty cache, and the JSON report.

It prints, per file and template: items, agreement of the per-item choices, both
matching rates, wall time per item of each side, and every item where they disagree
with both log-likelihood differences (matching minus not matching), and for those
items what the harness's request looked like at the context/continuation boundary.

    .venv/bin/python benchmarks/lm_eval_agreement.py
    .venv/bin/python benchmarks/lm_eval_agreement.py --items 20 --files persona/no-shut-down.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tabulate import tabulate

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
MODEL = "local/gemma-3-270m"
LM_EVAL_VERSION = "0.4.13"
# A CPU wheel of this torch lies on the machines' disk; any other version would pull
# gigabytes of CUDA libraries from the registry.
TORCH_VERSION = "2.13.0"
DEFAULT_VENV = HERE / ".venv-lmeval"
DEFAULT_OUTPUT = HERE / "lm_eval" / "last-run"
CONSTRAINTS = HERE / "lm_eval" / "constraints.txt"
DEFAULT_FILES = (
    "persona/no-shut-down.jsonl",
    "persona/agreeableness.jsonl",
    "persona/politically-liberal.jsonl",
)
TEMPLATES = {
    "paper": "\n\nHuman: {question}\n\nAssistant:",
    "plain": "{question}",
}
# Keys under which a report case may carry each choice's log-probability.
LOGPROB_KEYS = ("logprobs", "log_probabilities", "choice_logprobs", "loglikelihoods")
# The plugin's closing progress line: how long its requests took.
SENT = re.compile(r"behavior: sent (?P<requests>\d+) requests in (?P<seconds>[\d.]+) s")


@dataclass
class Item:
    index: int
    question: str
    matching: str
    not_matching: str


@dataclass
class SideResult:
    """One side's answers for one file and template: per item, matched or not."""

    matched: dict[int, bool | None]
    delta: dict[int, float | None]  # log P(matching) - log P(not matching)
    seconds: float  # the whole process: interpreter, imports, setup, requests
    request_seconds: float | None  # answering the requests only
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Boundary:
    """What the harness's request for one choice looked like around the boundary."""

    continuation_tokens: list[str]
    straddling: str | None  # a token that starts in the context and ends in the continuation
    generated: int  # tokens after the prompt (the harness drops the last one)
    loglikelihood: float


# ----------------------------------------------------------------------------- setup


def run(command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), text=True, check=False, **kwargs)


def installed_version(python: Path, distribution: str) -> str | None:
    if not python.exists():
        return None
    probe = run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_harness_venv(venv: Path) -> Path:
    """The virtualenv's python, with the pinned torch and lm-eval installed (idempotent)."""
    python = venv / "bin" / "python"
    torch_version = installed_version(python, "torch") or ""
    if (
        installed_version(python, "lm_eval") == LM_EVAL_VERSION
        and torch_version.split("+")[0] == TORCH_VERSION
    ):
        return python
    if not python.exists():
        print(f"lm_eval_agreement: creating {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"lm_eval_agreement: installing lm-eval=={LM_EVAL_VERSION} into {venv}", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS)]
    # torch first and alone, so that lm-eval's requirement finds it satisfied.
    subprocess.run([*pip, f"torch=={TORCH_VERSION}"], check=True)
    subprocess.run([*pip, f"torch=={TORCH_VERSION}", f"lm-eval=={LM_EVAL_VERSION}"], check=True)
    return python


# ------------------------------------------------------------------------------ data


def read_items(path: Path, limit: int) -> list[Item]:
    items: list[Item] = []
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if len(items) >= limit:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            not_matching = row["answer_not_matching_behavior"]
            if isinstance(not_matching, list):
                if len(not_matching) != 1:
                    raise SystemExit(f"{path}: this script compares two-choice items only")
                not_matching = not_matching[0]
            items.append(
                Item(len(items), row["question"], row["answer_matching_behavior"], not_matching)
            )
    return items


def write_items(items: Sequence[Item], path: Path) -> None:
    """The first N rows, as both sides read them (``choices`` is for the harness)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        for item in items:
            row = {
                "index": item.index,
                "question": item.question,
                "answer_matching_behavior": item.matching,
                "answer_not_matching_behavior": item.not_matching,
                "choices": [item.matching, item.not_matching],
            }
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def shorten(text: str, width: int = 100) -> str:
    """As the plugin's report shortens a question (pytest_behavior.verdicts.results.shorten)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


# --------------------------------------------------------------------------- harness


def harness_task_yaml(task: str, data: Path, template: str) -> str:
    # The template's {question} becomes Jinja's {{question}}; the question itself is
    # data, so nothing in it is interpreted.
    config = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": template.replace("{question}", "{{question}}"),
        "doc_to_choice": "choices",
        "doc_to_target": 0,
        # The answers carry their own leading space (" Yes"): nothing goes between.
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def harness_environment(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(work / "hf-home"),
        HF_DATASETS_CACHE=str(work / "hf-datasets"),
        TOKENIZERS_PARALLELISM="false",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def run_harness(
    python: Path, *, base_url: str, task: str, include: Path, output: Path, work: Path
) -> SideResult:
    output.mkdir(parents=True, exist_ok=True)
    timing = output / f"{task}.timing.json"
    command = [
        str(python), str(HERE / "lm_eval" / "run_harness.py"), "run",
        "--model", "gguf",
        "--model_args", f"base_url={base_url}",
        "--tasks", task,
        "--include_path", str(include),
        "--output_path", str(output),
        "--log_samples",
        "--batch_size", "1",
    ]  # fmt: skip
    log = output / f"{task}.log"
    start = time.perf_counter()
    env = {**harness_environment(work), "PB_HARNESS_TIMING": str(timing)}
    with log.open("w", encoding="utf-8") as stream:
        done = run(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lm_eval failed (exit {done.returncode}); see {log}")
    samples = sorted(output.rglob(f"samples_{task}_*.jsonl"))
    if not samples:
        raise SystemExit(f"lm_eval wrote no samples for {task}; see {log}")
    matched: dict[int, bool | None] = {}
    delta: dict[int, float | None] = {}
    contexts: dict[int, str] = {}
    with samples[-1].open(encoding="utf-8") as stream:
        for line in stream:
            sample = json.loads(line)
            index = int(sample["doc"]["index"])
            lls = [float(resp[0]) for resp in sample["filtered_resps"]]
            # lm-eval's acc: argmax of the log-likelihoods, ties to the first (matching) choice.
            matched[index] = lls[0] >= lls[1]
            delta[index] = lls[0] - lls[1]
            contexts[index] = sample["arguments"]["gen_args_0"]["arg_0"]
    spent = json.loads(timing.read_text(encoding="utf-8")) if timing.exists() else {}
    notes = {"contexts": contexts, "samples": str(samples[-1]), "requests": spent.get("requests")}
    return SideResult(matched, delta, seconds, spent.get("seconds"), notes)


def post_completion(base_url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        connection.request(
            "POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST /v1/completions: {response.status} {payload}")
    return payload  # type: ignore[no-any-return]


def harness_boundary(base_url: str, context: str, continuation: str) -> Boundary:
    """The harness's own request for one choice, and what its parser made of it."""
    body = {
        "prompt": context + continuation,
        "logprobs": 10,
        "temperature": 0.0,
        "max_tokens": 1,
        "echo": True,
    }
    logprobs = post_completion(base_url, body)["choices"][0]["logprobs"]
    offsets: list[int] = logprobs["text_offset"]
    tokens: list[str] = logprobs["tokens"]
    values: list[float | None] = logprobs["token_logprobs"]
    start = next(i for i, offset in enumerate(offsets) if offset >= len(context))
    straddling = None
    if start > 0 and offsets[start - 1] + len(tokens[start - 1]) > len(context):
        straddling = tokens[start - 1]
    total = len(context) + len(continuation)
    generated = sum(1 for offset in offsets if offset >= total)
    summed = sum(value for value in values[start:-1] if value is not None)
    return Boundary(tokens[start:-1], straddling, generated, summed)


# ---------------------------------------------------------------------------- plugin


def plugin_spec(trait: str, template: str, source: str, scoring: str) -> str:
    spec = {
        "traits": [
            {
                "name": trait,
                "threshold": {"max_rate": 1.0},
                "prompt": template,
                "scoring": scoring,
                "source": source,
            }
        ]
    }
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def case_delta(case: Mapping[str, Any], item: Item) -> float | None:
    """log P(matching) - log P(not matching) from a report case, where it says."""
    for key in LOGPROB_KEYS:
        values = case.get(key)
        if isinstance(values, Mapping):
            a, b = values.get(item.matching), values.get(item.not_matching)
            if isinstance(a, int | float) and isinstance(b, int | float):
                return float(a) - float(b)
    probabilities = case.get("probabilities")
    if isinstance(probabilities, Mapping):
        a, b = probabilities.get(item.matching), probabilities.get(item.not_matching)
        if isinstance(a, int | float) and isinstance(b, int | float) and a > 0 and b > 0:
            return math.log(a) - math.log(b)  # normalised or not, the ratio is the same
    return None


def run_plugin(
    items: Sequence[Item], *, template: str, scoring: str, spec_dir: Path, python: str
) -> SideResult:
    if spec_dir.exists():
        shutil.rmtree(spec_dir)
    spec_dir.mkdir(parents=True)
    write_items(items, spec_dir / "items.jsonl")
    (spec_dir / "behavior_agreement.yaml").write_text(
        plugin_spec("agreement", template, "items.jsonl", scoring), encoding="utf-8"
    )
    (spec_dir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # no ini from above
    report = spec_dir / "report.json"
    command = [
        python, "-m", "pytest", str(spec_dir),
        f"--rootdir={spec_dir}",
        f"--behavior-model={MODEL}",
        f"--behavior-report-json={report}",
        f"--behavior-cache-dir={spec_dir / 'cache'}",
        "-p", "no:cacheprovider",
    ]  # fmt: skip
    log = spec_dir / "pytest.log"
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as stream:
        done = run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=spec_dir)
    seconds = time.perf_counter() - start
    if not report.exists():
        raise SystemExit(f"pytest wrote no report (exit {done.returncode}); see {log}")
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    if len(results) != 1:
        raise SystemExit(f"expected one trait in {report}, found {len(results)}")
    result = results[0]
    by_index = {item.index: item for item in items}
    matched: dict[int, bool | None] = {}
    delta: dict[int, float | None] = {}
    for case in result["cases"]:
        item = by_index[int(case["index"])]
        if case.get("question") != shorten(item.question):
            raise SystemExit(f"case {item.index} of {report} is not item {item.index}")
        matched[item.index] = case["matched"]
        delta[item.index] = case_delta(case, item)
    sent = SENT.search(log.read_text(encoding="utf-8", errors="replace"))
    notes = {
        "exit": done.returncode,
        "requests": int(sent["requests"]) if sent else None,
        "scoring_used": result.get("scoring_used"),
        "unparseable": result.get("unparseable"),
        "errors": result.get("errors"),
        "rate": result.get("rate"),
        "report": str(report),
    }
    return SideResult(matched, delta, seconds, float(sent["seconds"]) if sent else None, notes)


# ---------------------------------------------------------------------------- report


def rate(values: Mapping[int, bool | None]) -> float | None:
    decided = [value for value in values.values() if value is not None]
    return sum(decided) / len(decided) if decided else None


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def nats(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3f}"


@dataclass
class Row:
    file: str
    template: str
    items: list[Item]
    plugin: SideResult
    harness: SideResult
    topk: SideResult | None = None

    def disagreements(self) -> list[int]:
        return [
            item.index
            for item in self.items
            if self.plugin.matched.get(item.index) != self.harness.matched.get(item.index)
        ]

    def agreement(self) -> float:
        return 1 - len(self.disagreements()) / len(self.items)

    def max_delta_gap(self) -> float | None:
        gaps = [
            abs(p - h)
            for item in self.items
            if (p := self.plugin.delta.get(item.index)) is not None
            and (h := self.harness.delta.get(item.index)) is not None
        ]
        return max(gaps) if len(gaps) == len(self.items) else None


def per_item(side: SideResult, n: int) -> str:
    """Seconds per item: answering the requests, then the whole process."""
    requests = "?" if side.request_seconds is None else f"{side.request_seconds / n:.3f}"
    return f"{requests} ({side.seconds / n:.2f})"


def undecided(side: SideResult, n: int) -> int:
    return n - sum(1 for value in side.matched.values() if value is not None)


def summary_table(rows: Sequence[Row]) -> str:
    headers = [
        "file", "template", "items", "agree", "plugin rate", "harness rate",
        "plugin undecided", "max |Δp-Δh|", "plugin s/item", "harness s/item",
        "disagree: index (Δ harness / Δ plugin)",
    ]  # fmt: skip
    with_topk = any(row.topk for row in rows)
    if with_topk:
        headers[-1:-1] = ["top-k undecided", "top-k rate", "top-k s/item"]
    body = []
    for row in rows:
        n = len(row.items)
        disagree = ", ".join(
            f"{i} ({nats(row.harness.delta.get(i))} / {nats(row.plugin.delta.get(i))})"
            for i in row.disagreements()
        )
        gap = row.max_delta_gap()
        line = [
            row.file, row.template, n, percent(row.agreement()),
            percent(rate(row.plugin.matched)), percent(rate(row.harness.matched)),
            undecided(row.plugin, n), "?" if gap is None else f"{gap:.2g}",
            per_item(row.plugin, n), per_item(row.harness, n), disagree or "none",
        ]  # fmt: skip
        if with_topk:
            topk = row.topk
            line[-1:-1] = (
                ["-", "-", "-"]
                if topk is None
                else [undecided(topk, n), percent(rate(topk.matched)), per_item(topk, n)]
            )
        body.append(line)
    return tabulate(body, headers=headers, disable_numparse=True)


def boundary_table(rows: Sequence[Row], base_url: str) -> str:
    headers = [
        "file", "template", "index", "statement", "choice", "harness tokens",
        "straddles", "generated", "harness ll", "Δ harness", "Δ plugin",
    ]  # fmt: skip
    body = []
    for row in rows:
        by_index = {item.index: item for item in row.items}
        for index in row.disagreements():
            item = by_index[index]
            context = row.harness.notes["contexts"][index]
            statement = item.question.rsplit("\n", 1)[-1]
            for choice in (item.matching, item.not_matching):
                seen = harness_boundary(base_url, context, choice)
                body.append(
                    [
                        row.file, row.template, index, shorten(statement, 50), repr(choice),
                        " | ".join(map(repr, seen.continuation_tokens)),
                        repr(seen.straddling) if seen.straddling else "-",
                        seen.generated, f"{seen.loglikelihood:.4f}",
                        nats(row.harness.delta.get(index)), nats(row.plugin.delta.get(index)),
                    ]
                )  # fmt: skip
    return tabulate(body, headers=headers, disable_numparse=True) if body else ""


# ------------------------------------------------------------------------------ main


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The plugin's own server for the embedded model; yields http://127.0.0.1:PORT."""
    from pytest_behavior.local.model import LocalModelServer

    with LocalModelServer(MODEL) as endpoint:
        yield endpoint.api_base.removesuffix("/v1")


def check_echo(base_url: str) -> None:
    try:
        post_completion(base_url, {"prompt": "Hi", "echo": True, "logprobs": 1, "max_tokens": 1})
    except RuntimeError as error:
        raise SystemExit(
            f"the local server cannot echo prompt log-probabilities: {error}"
        ) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO.parent / "shared" / "data" / "anthropic-evals",
        help="the anthropics/evals folder (default: ../shared/data/anthropic-evals)",
    )
    parser.add_argument("--files", nargs="+", default=list(DEFAULT_FILES))
    parser.add_argument(
        "--templates", nargs="+", choices=sorted(TEMPLATES), default=["paper", "plain"]
    )
    parser.add_argument("--items", type=int, default=200, help="first N items of each file")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="lm-eval's own virtualenv")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT, help="specs, reports, samples, logs"
    )
    parser.add_argument(
        "--scoring", default="exact", help="the plugin's scoring mode (default: exact)"
    )
    parser.add_argument(
        "--compare-topk",
        action="store_true",
        help="also run the plugin with scoring: topk (the top-k list of generated tokens)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    harness_python = ensure_harness_venv(args.venv)
    version = installed_version(harness_python, "lm_eval")
    output: Path = args.output_dir.resolve()
    if output.exists():
        shutil.rmtree(output)
    include = output / "tasks"
    include.mkdir(parents=True)

    plan: list[tuple[str, str, list[Item], str]] = []
    for name in args.files:
        items = read_items(args.data_dir / name, args.items)
        stem = Path(name).stem
        data = output / "data" / f"{stem}.jsonl"
        write_items(items, data)
        for template_name in args.templates:
            task = f"pb_agreement_{slug(stem)}_{template_name}"
            (include / f"{task}.yaml").write_text(
                harness_task_yaml(task, data, TEMPLATES[template_name]), encoding="utf-8"
            )
            plan.append((name, template_name, items, task))

    plugin: dict[str, SideResult] = {}
    topk: dict[str, SideResult] = {}
    for name, template_name, items, task in plan:
        print(f"plugin  {name} {template_name} ({len(items)} items)", flush=True)
        plugin[task] = run_plugin(
            items,
            template=TEMPLATES[template_name],
            scoring=args.scoring,
            spec_dir=output / "plugin" / task,
            python=sys.executable,
        )
        if args.compare_topk:
            topk[task] = run_plugin(
                items,
                template=TEMPLATES[template_name],
                scoring="topk",
                spec_dir=output / "plugin-topk" / task,
                python=sys.executable,
            )

    rows: list[Row] = []
    with local_server() as base_url:
        check_echo(base_url)
        for name, template_name, items, task in plan:
            print(f"harness {name} {template_name} ({len(items)} items)", flush=True)
            harness = run_harness(
                harness_python,
                base_url=base_url,
                task=task,
                include=include,
                output=output / "harness",
                work=output,
            )
            rows.append(Row(name, template_name, items, plugin[task], harness, topk.get(task)))
        boundaries = boundary_table(rows, base_url)

    elapsed = time.perf_counter() - began
    print()
    print(
        f"lm-eval {version} (gguf model) vs pytest-behavior scoring: {args.scoring}, "
        f"model {MODEL}, same llama.cpp server code and weights; {elapsed:.0f} s in all"
    )
    print()
    print(summary_table(rows))
    total = sum(len(row.items) for row in rows)
    agreeing = sum(len(row.items) - len(row.disagreements()) for row in rows)
    print()
    print(f"overall agreement: {agreeing}/{total} = {100 * agreeing / total:.2f}%")
    print(
        "Δ = log P(matching answer) - log P(not matching), in nats; rates = share of items "
        "choosing the matching answer; s/item = answering the requests (whole process)"
    )
    if boundaries:
        print()
        print("the harness's requests for the items where the two disagree:")
        print(boundaries)
    if args.json:
        args.json.write_text(json.dumps(to_json(rows, version, args.scoring), indent=2) + "\n")
    return 0 if agreeing / total >= 0.99 else 1


def to_json(rows: Sequence[Row], version: str | None, scoring: str) -> dict[str, Any]:
    return {
        "lm_eval_version": version,
        "plugin_scoring": scoring,
        "rows": [
            {
                "file": row.file,
                "template": row.template,
                "items": len(row.items),
                "agreement": row.agreement(),
                "plugin_rate": rate(row.plugin.matched),
                "harness_rate": rate(row.harness.matched),
                "plugin_seconds": row.plugin.seconds,
                "harness_seconds": row.harness.seconds,
                "plugin_notes": row.plugin.notes,
                "disagreements": [
                    {
                        "index": i,
                        "delta_harness": row.harness.delta.get(i),
                        "delta_plugin": row.plugin.delta.get(i),
                    }
                    for i in row.disagreements()
                ],
            }
            for row in rows
        ],
    }


if __name__ == "__main__":
    raise SystemExit(main())

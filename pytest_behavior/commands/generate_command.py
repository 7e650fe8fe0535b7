"""``generate persona --description TEXT --generator M --judge M --out FILE.jsonl``.

The paper's model-written evaluations (Perez et al. 2022, section 3): a generator
writes first-person statements a person with the trait would agree (and
disagree) with, a judge keeps those whose label it confirms, and the kept items
are written as a persona JSONL, with a spec stub, a provenance record and a
review sheet beside it. See :mod:`pytest_behavior.generation`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_behavior.commands.common import CommandError

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers
    from pytest_behavior.generation.pipeline import GenerationSettings

EXAMPLE = """\
example:
  python -m pytest_behavior generate persona \\
      --description "is willing to deceive its users to achieve its goals" \\
      --generator openai/gpt-4o --judge openai/gpt-4o-mini \\
      --per-label 200 --out suites/data/deception.jsonl
  pytest suites/data/deception.behavior.yaml --behavior-model=...

writes FILE.jsonl, FILE.behavior.yaml (a spec stub), FILE.provenance.json and
FILE.review.md (or --review). Answers are cached: a rerun sends nothing."""


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a new trait dataset with a model (model-written evaluations)",
        description="Generate and filter a new trait dataset as Perez et al. (2022) did.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND", title="kinds")
    persona = kinds.add_parser(
        "persona",
        help="first-person statements a persona agrees or disagrees with",
        description="Generate persona statements with --generator, label and filter them "
        "with --judge, and write the kept items as anthropics/evals persona JSONL.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    persona.add_argument("--description", required=True, help='"is ..." (completes "a person who")')
    persona.add_argument("--generator", required=True, metavar="MODEL")
    persona.add_argument("--judge", required=True, metavar="MODEL")
    persona.add_argument("--api-base", metavar="URL", help="an OpenAI-compatible server")
    persona.add_argument("--per-label", default="100", metavar="N", help="items per label (100)")
    persona.add_argument(
        "--completions", default="10", metavar="N", help="sampled completions per label (10)"
    )
    persona.add_argument("--temperature", default="1.4", metavar="T", help="(1.4, the paper's)")
    persona.add_argument("--top-p", default="0.975", metavar="P", help="(0.975, the paper's)")
    persona.add_argument("--seed", default="0", metavar="N")
    persona.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="(default .behavior_cache/responses)"
    )
    persona.add_argument(
        "--dry-run", action="store_true", help="print how many requests a run needs; send none"
    )
    persona.add_argument("--max-requests", metavar="N", help="refuse a run that needs more")
    persona.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl")
    persona.add_argument("--review", type=Path, metavar="FILE.md")


def _number(arguments: argparse.Namespace, name: str, kind: type, low: float, high: float) -> float:
    raw = getattr(arguments, name.replace("-", "_"))
    try:
        value = kind(raw)
    except ValueError:
        raise CommandError(f"--{name}", f"{raw!r} is not a number") from None
    if not low <= value <= high:
        bounds = f"{int(low)} to {int(high)}" if kind is int else f"{low:g} to {high:g}"
        raise CommandError(f"--{name}", f"{raw} is out of range; write {bounds}")
    return float(value)


def settings_from(arguments: argparse.Namespace) -> GenerationSettings:
    from pytest_behavior.generation.pipeline import GenerationSettings

    description = " ".join(arguments.description.split()).rstrip(".")
    if not description:
        raise CommandError("--description", 'empty; write what the person is, "is ..."')
    for flag, model in (("--generator", arguments.generator), ("--judge", arguments.judge)):
        if "/" not in model:
            raise CommandError(flag, f"{model!r} names no provider; write e.g. openai/{model}")
    if arguments.out.suffix != ".jsonl":
        raise CommandError("--out", f"{arguments.out} is not a .jsonl file")
    max_requests = None
    if arguments.max_requests is not None:
        max_requests = int(_number(arguments, "max-requests", int, 1, 10**9))
    return GenerationSettings(
        description=description,
        generator=arguments.generator,
        judge=arguments.judge,
        api_base=arguments.api_base,
        per_label=int(_number(arguments, "per-label", int, 1, 10**6)),
        completions=int(_number(arguments, "completions", int, 1, 10**5)),
        temperature=_number(arguments, "temperature", float, 0.0, 2.0),
        top_p=_number(arguments, "top-p", float, 0.0, 1.0),
        seed=int(_number(arguments, "seed", int, 0, 2**31)),
        max_requests=max_requests,
    )


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.generation.access import DEFAULT_CACHE_DIR, ModelAccess
    from pytest_behavior.generation.output import OutputPaths, write_outputs
    from pytest_behavior.generation.pipeline import (
        GenerationError,
        plan_requests,
        run_pipeline,
    )
    from pytest_behavior.generation.report import summary_lines

    settings = settings_from(arguments)
    plan = plan_requests(settings)
    if arguments.dry_run:
        print(
            f"dry run: {plan.generator} generator requests to {settings.generator}; "
            f"at most {plan.judge_at_most} judge requests to {settings.judge} "
            "(one per unique parsed statement); nothing sent"
        )
        return 0
    paths = OutputPaths.beside(arguments.out, arguments.review)
    cache_dir = arguments.cache_dir if arguments.cache_dir is not None else DEFAULT_CACHE_DIR
    started = time.monotonic()
    access = ModelAccess(cache_dir, api_base=settings.api_base)
    try:
        result = run_pipeline(settings, access, say=say)
    except GenerationError as error:
        raise CommandError("generate persona", str(error)) from None
    except Exception as error:  # a local model that cannot start, a cache that cannot open
        raise CommandError("generate persona", f"{type(error).__name__}: {error}") from None
    finally:
        access.close()
    try:
        written = write_outputs(result, paths)
    except OSError as error:
        raise CommandError(error.filename or arguments.out, error.strerror or str(error)) from None
    print(f"generate persona: {result.counts.kept} items in {time.monotonic() - started:.1f} s")
    for line in summary_lines(result):
        print(line)
    for path in written:
        print(f"wrote {path}")
    return 0

"""``generate persona|choices ... --generator M --judge M --out FILE.jsonl``.

The paper's model-written evaluations (Perez et al. 2022, section 3): a
generator writes items (first-person statements a persona agrees or disagrees
with; or A/B questions modelled on hand-written seed examples), a judge keeps
those whose label it confirms, and the kept items are written as anthropics/evals
JSONL, with a spec stub, a provenance record and a review sheet beside it. See
:mod:`pytest_behavior.generation`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_behavior.commands.common import CommandError

if TYPE_CHECKING:
    from pytest_behavior.commands.common import Subparsers
    from pytest_behavior.generation.access import ModelAccess
    from pytest_behavior.generation.hooks import GenerationPlugins
    from pytest_behavior.generation.pipeline import GenerationSettings, Kind
    from pytest_behavior.generation.seeds import Seeds

LOCAL_REQUEST_TIMEOUT = 900.0

PERSONA_EXAMPLE = """\
example:
  python -m pytest_behavior generate persona \\
      --description "is willing to deceive its users to achieve its goals" \\
      --generator openai/gpt-4o --judge openai/gpt-4o-mini \\
      --per-label 200 --out suites/data/deception.jsonl
  pytest suites/data/deception.behavior.yaml --behavior-model=...

writes FILE.jsonl, FILE.behavior.yaml (a spec stub), FILE.provenance.json and
FILE.review.md (or --review). Answers are cached: a rerun sends nothing."""

CHOICES_EXAMPLE = """\
example:
  python -m pytest_behavior generate choices --from suites/seeds/power.yaml \\
      --generator openai/gpt-4o --judge openai/gpt-4o-mini \\
      --per-label 100 --out suites/data/power-choices.jsonl

seeds: YAML (description:, examples: [{question, matching, not_matching}, ...]) or
anthropics/evals advanced-ai-risk JSONL rows. Writes the same four files as persona."""


def _shared(parser: argparse.ArgumentParser, *, description_required: bool) -> None:
    parser.add_argument(
        "--description",
        required=description_required,
        help='"is ..." / "seeks ..." (completes "a person who" or "an AI system that")',
    )
    parser.add_argument("--generator", required=True, metavar="MODEL")
    parser.add_argument("--judge", required=True, metavar="MODEL")
    parser.add_argument("--api-base", metavar="URL", help="an OpenAI-compatible server")
    parser.add_argument("--per-label", default="100", metavar="N", help="items per label (100)")
    parser.add_argument("--temperature", default="1.4", metavar="T", help="(1.4, the paper's)")
    parser.add_argument("--top-p", default="0.975", metavar="P", help="(0.975, the paper's)")
    parser.add_argument("--seed", default="0", metavar="N")
    parser.add_argument(
        "--max-tokens", default="600", metavar="N", help="tokens per sampled completion (600)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="(default .behavior_cache/responses)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print how many requests a run needs; send none"
    )
    parser.add_argument("--max-requests", metavar="N", help="refuse a run that needs more")
    parser.add_argument(
        "--conftest",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="load pytest_behavior_generation_prompts from this file (repeatable)",
    )
    parser.add_argument(
        "-p",
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="load pytest_behavior_generation_prompts from this module (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl")
    parser.add_argument("--review", type=Path, metavar="FILE.md")


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
        epilog=PERSONA_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _shared(persona, description_required=True)
    persona.add_argument(
        "--completions", default="10", metavar="N", help="sampled completions per label (10)"
    )
    choices = kinds.add_parser(
        "choices",
        help="A/B questions written from hand-written seed examples",
        description="Write multiple-choice questions with --generator from few-shot prompts "
        "of seed examples, label and filter them with --judge, and write the kept items as "
        "anthropics/evals advanced-ai-risk JSONL.",
        epilog=CHOICES_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices.add_argument("--from", dest="seeds", required=True, type=Path, metavar="SEEDS")
    _shared(choices, description_required=False)
    choices.add_argument(
        "--completions", default="100", metavar="N", help="sampled completions (100)"
    )
    choices.add_argument(
        "--shots", default="5", metavar="N", help="seed examples in each prompt (5, the paper's)"
    )


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


def load_seeds(arguments: argparse.Namespace) -> Seeds | None:
    if arguments.kind != "choices":
        return None
    from pytest_behavior.errors import SpecError
    from pytest_behavior.generation.seeds import load_seeds as load

    try:
        return load(arguments.seeds)
    except SpecError as error:
        raise CommandError("--from", str(error)) from None
    except OSError as error:
        raise CommandError("--from", f"{arguments.seeds}: {error.strerror or error}") from None


def settings_from(arguments: argparse.Namespace, seeds: Seeds | None = None) -> GenerationSettings:
    from pytest_behavior.generation.pipeline import GenerationSettings

    raw = arguments.description
    if raw is None and seeds is not None:
        raw = seeds.description or ""
    description = " ".join((raw or "").split()).rstrip(".")
    if not description:
        raise CommandError(
            "--description",
            'empty; write what the person is, "is ..."'
            if arguments.kind == "persona"
            else f'none given and {arguments.seeds} has no description:; write "seeks ..."',
        )
    for flag, model in (("--generator", arguments.generator), ("--judge", arguments.judge)):
        if "/" not in model:
            raise CommandError(flag, f"{model!r} names no provider; write e.g. openai/{model}")
    if arguments.out.suffix != ".jsonl":
        raise CommandError("--out", f"{arguments.out} is not a .jsonl file")
    max_requests = None
    if arguments.max_requests is not None:
        max_requests = int(_number(arguments, "max-requests", int, 1, 10**9))
    shots = int(_number(arguments, "shots", int, 1, 100)) if arguments.kind == "choices" else 5
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
        max_tokens=int(_number(arguments, "max-tokens", int, 1, 100_000)),
        max_requests=max_requests,
        shots=shots,
    )


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _plugins(arguments: argparse.Namespace) -> GenerationPlugins:
    from pytest_behavior.generation.hooks import GenerationPlugins
    from pytest_behavior.generation.judging import GenerationError

    try:
        return GenerationPlugins(arguments.conftest, arguments.plugin)
    except GenerationError as error:
        raise CommandError(f"generate {arguments.kind}", str(error)) from None


def build_kind(
    arguments: argparse.Namespace,
    settings: GenerationSettings,
    seeds: Seeds | None,
    plugins: GenerationPlugins,
    access: ModelAccess,
) -> tuple[Kind, str | None]:
    """The kind of generation, with its prompts (the paper's, or a plugin's)."""
    if seeds is None:
        from pytest_behavior.generation.persona import persona_kind
        from pytest_behavior.generation.prompts import paper_prompts

        persona, origin = plugins.prompts(
            "persona", settings.description, paper_prompts(prefill=settings.prefill)
        )
        return persona_kind(settings, persona, access), origin
    from pytest_behavior.generation.choices import choice_prompts, choices_kind

    prompts, origin = plugins.prompts(
        "choices", settings.description, choice_prompts(prefill=settings.prefill)
    )
    return choices_kind(settings, seeds, prompts, access), origin


def _dry_run(settings: GenerationSettings, kind: str) -> int:
    from pytest_behavior.generation.choices import MAX_QUESTIONS
    from pytest_behavior.generation.parse import MAX_STATEMENTS

    generator = settings.completions * (2 if kind == "persona" else 1)
    per_completion = MAX_STATEMENTS if kind == "persona" else MAX_QUESTIONS
    noun = "statement" if kind == "persona" else "question"
    print(
        f"dry run: {generator} generator requests to {settings.generator}; "
        f"at most {generator * per_completion} judge requests to {settings.judge} "
        f"(one per unique parsed {noun}); nothing sent"
    )
    return 0


def _pace(settings: GenerationSettings) -> dict[str, Any]:
    """The embedded model answers one request at a time, and a long completion takes
    minutes on a small CPU: ask it one at a time, each with time to finish."""
    from pytest_behavior.values import LOCAL_PREFIX

    if any(model.startswith(LOCAL_PREFIX) for model in (settings.generator, settings.judge)):
        return {"concurrency": 1, "request_timeout": LOCAL_REQUEST_TIMEOUT}
    return {}


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.generation.access import DEFAULT_CACHE_DIR, ModelAccess
    from pytest_behavior.generation.output import OutputPaths, write_outputs
    from pytest_behavior.generation.pipeline import GenerationError, run_pipeline
    from pytest_behavior.generation.report import summary_lines

    command = f"generate {arguments.kind}"
    seeds = load_seeds(arguments)
    settings = settings_from(arguments, seeds)
    plugins = _plugins(arguments)
    if arguments.dry_run:
        return _dry_run(settings, arguments.kind)
    paths = OutputPaths.beside(arguments.out, arguments.review)
    cache_dir = arguments.cache_dir if arguments.cache_dir is not None else DEFAULT_CACHE_DIR
    started = time.monotonic()
    access = ModelAccess(cache_dir, api_base=settings.api_base, **_pace(settings))
    result: Any
    try:
        kind, origin = build_kind(arguments, settings, seeds, plugins, access)
        if origin is not None:
            say(f"prompts: from {origin} (pytest_behavior_generation_prompts)")
        result = run_pipeline(settings, kind, access, say=say, prompts_from=origin)
    except GenerationError as error:
        raise CommandError(command, str(error)) from None
    except CommandError:
        raise
    except Exception as error:  # a local model that cannot start, a cache that cannot open
        raise CommandError(command, f"{type(error).__name__}: {error}") from None
    finally:
        access.close()
    try:
        written = write_outputs(result, paths)
    except OSError as error:
        raise CommandError(error.filename or arguments.out, error.strerror or str(error)) from None
    print(f"{command}: {result.counts.kept} items in {time.monotonic() - started:.1f} s")
    for line in summary_lines(result):
        print(line)
    for path in written:
        print(f"wrote {path}")
    return 0

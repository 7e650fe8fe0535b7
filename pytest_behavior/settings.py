"""Command-line options, ini keys and the one frozen settings object built from them.

Every option is one row of ``OPTIONS``: its field of :class:`BehaviorSettings`,
flag, ini key, environment variable, parser, default and help. The rows make the
``--help`` text (so the defaults it states are the ones used), the ini keys, and
the settings: command line > environment > ini file > default. A value that does
not parse is a ``pytest.UsageError`` naming where it came from and what to write;
nothing is silently clamped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_behavior.names import CHOICE_SETS, PROMPT_FORMATS, SCORING_MODES
from pytest_behavior.shards.partition import ShardSpec, ShardSpecError

DEFAULT_FILE_PATTERNS = ("behavior_*.yaml", "behavior_*.yml", "*.behavior.yaml", "*.behavior.yml")
ENV_MODEL = "PYTEST_BEHAVIOR_MODEL"
ENV_API_BASE = "PYTEST_BEHAVIOR_API_BASE"
ENV_CACHE_DIR = "PYTEST_BEHAVIOR_CACHE_DIR"
ENV_CACHE_URL = "PYTEST_BEHAVIOR_CACHE_URL"
# The response cache's default home, relative to the rootdir: outside .pytest_cache,
# so pytest --cache-clear never throws paid answers away.
DEFAULT_CACHE_DIR = ".behavior_cache/responses"
CACHE_MODES = ("readwrite", "readonly", "refresh")
# Where the models come from when none is configured (shown in the header).
DEFAULT_MODEL_SOURCE = "default: no model configured and the [local] extra is installed"


@dataclass(frozen=True)
class BehaviorSettings:
    models: tuple[str, ...]
    model_source: str
    api_base: str | None
    file_patterns: tuple[str, ...]
    cache_dir: Path | None
    use_cache: bool
    confidence: float
    strict: bool
    report_json: Path | None
    scoring: str | None
    concurrency: int
    max_attempts: int
    request_timeout: float
    max_tokens: int
    top_logprobs: int
    save_baseline: Path | None = None
    baseline: Path | None = None
    regression_tolerance: float = 0.0
    compare_models: bool = False
    # Every rate-gated trait asked as sample: adaptive (adaptive.py).
    sequential: bool = False
    # Every trait's samples: K (sampling.py).
    samples: int | None = None
    history: Path | None = None
    # The run's name in reports and history; None: git describe (history.default_run_label).
    run_label: str | None = None
    report_md: Path | None = None
    report_html: Path | None = None
    # Overrides every trait's min_scored when set (see integrity.py).
    min_scored: int | None = None
    # Overrides every trait's choices: listed | labelled when set (values.CHOICE_SETS).
    choices: str | None = None
    # Overrides every trait's format: chat | text when set (values.PROMPT_FORMATS).
    prompt_format: str | None = None
    # Unattended runs (see stopping.py and budget.py).
    max_duration: float | None = None
    dry_run: bool = False
    max_requests: int | None = None
    max_cost: float | None = None
    cache_mode: str = "readwrite"
    # A shared Redis response cache (cache/redis_store.py); None: the diskcache folder.
    cache_url: str | None = None
    # "local": a Redis that cannot be used is a warning and the local folder is used.
    cache_fallback: str = "none"
    # Processes the prefetch spreads its requests over; None: auto (fetch/processes.py).
    fetch_processes: int | None = None
    # A sharded run (partition.ShardSpec): asks its share, writes a shard file, gates nothing.
    shard: ShardSpec | None = None
    shard_out: Path | None = None


# -- parsers: text -> value, or a UsageError naming ``where`` the text came from --

Parser = Callable[[str, str], Any]


def _text(text: str, where: str) -> str:
    return text


def _path(text: str, where: str) -> Path:
    return Path(text).expanduser()


def _whole(minimum: int) -> Parser:
    def parse(text: str, where: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise pytest.UsageError(f"{where} must be a whole number >= {minimum}; got {text!r}")
        return value

    return parse


def _above_zero(unit: str, example: str) -> Parser:
    def parse(text: str, where: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise pytest.UsageError(
                f"{where} must be a number of {unit} above 0, e.g. {example}; got {text!r}"
            )
        return value

    return parse


def _confidence(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise pytest.UsageError(
            f"{where} must be a number between 0 and 1, e.g. 0.95; got {text!r}"
        )
    return value


def _tolerance(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise pytest.UsageError(
            f"{where} must be a rate change in [0, 1), e.g. 0.02 for two points; got {text!r}"
        )
    return value


def _processes(text: str, where: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(
            f"{where} must be auto or a whole number of processes >= 1, e.g. 4; got {text!r}"
        )
    return value


def _cache_url(text: str, where: str) -> str:
    # The URL may carry a password: an error shows it masked, never as given.
    from pytest_behavior.cache.redis_store import check_url, masked_url

    problem = check_url(text)
    if problem is not None:
        raise pytest.UsageError(
            f"{where} must be a Redis URL such as redis://localhost:6379/0 or "
            f"redis://:PASSWORD@host:6379/0; got {masked_url(text)!r}: {problem}"
        )
    return text


def _one_of(choices: tuple[str, ...]) -> Parser:
    def parse(text: str, where: str) -> str:
        if text not in choices:
            raise pytest.UsageError(f"{where} must be one of {', '.join(choices)}; got {text!r}")
        return text

    return parse


def _shard(text: str, where: str) -> ShardSpec:
    try:
        return ShardSpec.parse(text)
    except ShardSpecError as error:
        raise pytest.UsageError(f"{where} {error}") from None


@dataclass(frozen=True)
class Option:
    """One setting: where it can be given, how it is read, what it defaults to."""

    field: str
    help: str
    flag: str | None = None
    ini: str | None = None
    env: str | None = None
    parse: Parser = _text
    default: Any = None
    metavar: str | None = None
    # A flag without a value (store_true); such options have no ini key.
    switch: bool = False

    @property
    def dest(self) -> str:
        return "behavior_" + self.field

    def help_text(self) -> str:
        sources = []
        if self.default is not None and not self.switch:
            shown = self.default if not isinstance(self.default, Path) else str(self.default)
            sources.append(f"default {shown}")
        if self.env:
            sources.append(f"env {self.env}")
        if self.ini:
            sources.append(f"ini {self.ini}")
        return self.help + (f" ({'; '.join(sources)})" if sources else "")


OPTIONS: tuple[Option, ...] = (
    Option(
        "api_base",
        "base URL of an OpenAI-compatible endpoint.",
        flag="--behavior-api-base",
        ini="behavior_api_base",
        env=ENV_API_BASE,
        metavar="URL",
    ),
    Option(
        "cache_dir",
        f"where responses are cached (default: {DEFAULT_CACHE_DIR} in the rootdir, which "
        "pytest --cache-clear leaves alone).",
        flag="--behavior-cache-dir",
        ini="behavior_cache_dir",
        env=ENV_CACHE_DIR,
        parse=_path,
        metavar="DIR",
    ),
    Option(
        "cache_mode",
        "readwrite: use and fill the cache; readonly: answer from the cache only and list "
        "what is missing; refresh: ask again and overwrite.",
        flag="--behavior-cache-mode",
        ini="behavior_cache_mode",
        parse=_one_of(CACHE_MODES),
        default="readwrite",
        metavar="MODE",
    ),
    Option(
        "cache_url",
        "keep the response cache in Redis, shared by every host that names the same URL "
        "(needs pytest-behavior[redis]); default: the local folder.",
        flag="--behavior-cache-url",
        ini="behavior_cache_url",
        env=ENV_CACHE_URL,
        parse=_cache_url,
        metavar="URL",
    ),
    Option(
        "cache_fallback",
        "none: a --behavior-cache-url that cannot be used stops the run; local: warn and "
        "use the local cache folder instead.",
        flag="--behavior-cache-fallback",
        ini="behavior_cache_fallback",
        env="PYTEST_BEHAVIOR_CACHE_FALLBACK",
        parse=_one_of(("none", "local")),
        default="none",
        metavar="WHAT",
    ),
    Option(
        "confidence",
        "confidence level of the intervals.",
        flag="--behavior-confidence",
        ini="behavior_confidence",
        parse=_confidence,
        default=0.95,
        metavar="LEVEL",
    ),
    Option("strict", "fail inconclusive verdicts too.", flag="--behavior-strict", switch=True),
    Option(
        "report_json",
        "write the verdicts as JSON (schema: docs/reports.md).",
        flag="--behavior-report-json",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "scoring",
        "override every trait's scoring mode: auto, logprob, exact, topk or generate.",
        flag="--behavior-scoring",
        parse=_one_of(SCORING_MODES),
        metavar="MODE",
    ),
    Option(
        "concurrency",
        "requests in flight at once.",
        flag="--behavior-concurrency",
        ini="behavior_concurrency",
        parse=_whole(1),
        default=16,
        metavar="N",
    ),
    Option(
        "fetch_processes",
        "processes that send the uncached requests, sharing the cache; auto: one per core "
        "(at most 8) for a large fetch, else one; always one in xdist workers (default auto).",
        flag="--behavior-fetch-processes",
        ini="behavior_fetch_processes",
        env="PYTEST_BEHAVIOR_FETCH_PROCESSES",
        parse=_processes,
        metavar="N",
    ),
    Option(
        "max_attempts",
        "attempts per request on transient errors.",
        flag="--behavior-max-attempts",
        ini="behavior_max_attempts",
        parse=_whole(1),
        default=6,
        metavar="N",
    ),
    Option(
        "request_timeout",
        "seconds before one request times out; a run stops asking an endpoint whose "
        "requests keep timing out.",
        flag="--behavior-request-timeout",
        ini="behavior_request_timeout",
        parse=_above_zero("seconds", "30"),
        default=120.0,
        metavar="SECONDS",
    ),
    Option(
        "max_tokens",
        "tokens generated per answer.",
        ini="behavior_max_tokens",
        parse=_whole(1),
        default=16,
    ),
    Option(
        "top_logprobs",
        "alternatives asked for per position in top-k scoring (20 is OpenAI's most).",
        ini="behavior_top_logprobs",
        parse=_whole(1),
        default=20,
    ),
    Option(
        "min_scored",
        "a verdict with fewer scored cases is an error that fails the run; overrides every "
        "trait's min_scored (traits default to 10).",
        flag="--behavior-min-scored",
        ini="behavior_min_scored",
        parse=_whole(1),
        metavar="N",
    ),
    Option(
        "choices",
        "override every trait's choice set: listed (every option a question lists "
        "competes) or labelled (only the answer fields', as lm-evaluation-harness).",
        flag="--behavior-choices",
        ini="behavior_choices",
        parse=_one_of(CHOICE_SETS),
        metavar="SET",
    ),
    Option(
        "prompt_format",
        "override every trait's prompt format: chat (messages, in the model's chat "
        "template) or text (raw completion), the same on every scoring path.",
        flag="--behavior-prompt-format",
        ini="behavior_prompt_format",
        parse=_one_of(PROMPT_FORMATS),
        metavar="FORMAT",
    ),
    Option(
        "max_duration",
        "stop asking once the run's requests have taken this long; the rest are not run "
        "and the run fails (default: no limit).",
        flag="--behavior-max-duration",
        ini="behavior_max_duration",
        parse=_above_zero("seconds", "600"),
        metavar="SECONDS",
    ),
    Option(
        "dry_run",
        "print per model and trait how many requests the run would send and how many are "
        "cached; send nothing, run no behavior item.",
        flag="--behavior-dry-run",
        switch=True,
    ),
    Option(
        "max_requests",
        "refuse to start a run that needs more than N uncached requests.",
        flag="--behavior-max-requests",
        parse=_whole(1),
        metavar="N",
    ),
    Option(
        "max_cost",
        "refuse to start a run whose uncached requests are estimated (from litellm's "
        "prices) to cost more than this.",
        flag="--behavior-max-cost",
        parse=_above_zero("dollars", "5"),
        metavar="USD",
    ),
    Option(
        "save_baseline",
        "save this run's per-case outcomes as a baseline to compare later runs against.",
        flag="--behavior-save-baseline",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "baseline",
        "compare this run with a saved baseline, case by case; significant regressions "
        "fail the run.",
        flag="--behavior-baseline",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "regression_tolerance",
        "worsening of the matching rate allowed before a significant change fails "
        "(per trait: regression_tolerance).",
        flag="--behavior-regression-tolerance",
        ini="behavior_regression_tolerance",
        parse=_tolerance,
        default=0.0,
        metavar="RATE",
    ),
    Option(
        "sequential",
        "ask every rate-gated trait as sample: adaptive does: in seeded batches, "
        "stopping once an anytime-valid interval decides it.",
        flag="--behavior-sequential",
        switch=True,
    ),
    Option(
        "samples",
        "ask each case K times at the trait's temperature where no exact logprob scoring "
        "is available, and score the share of matching answers (every trait's samples).",
        flag="--behavior-samples",
        parse=_whole(1),
        metavar="K",
    ),
    Option(
        "compare_models",
        "compare every model with the first --behavior-model, case by case.",
        flag="--behavior-compare-models",
        switch=True,
    ),
    Option(
        "history",
        "append this run's summary to a JSONL history (python -m pytest_behavior history "
        "PATH shows the trend).",
        flag="--behavior-history",
        ini="behavior_history",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "run_label",
        "this run's name in the reports and the history, such as a checkpoint or step "
        "(default: git describe of the checked-out commit).",
        flag="--behavior-run-label",
        ini="behavior_run_label",
        env="PYTEST_BEHAVIOR_RUN_LABEL",
        metavar="LABEL",
    ),
    Option(
        "report_md",
        "write the verdict and comparison tables as Markdown (also appended to "
        "$GITHUB_STEP_SUMMARY when set).",
        flag="--behavior-report-md",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "report_html",
        "write a self-contained HTML report with charts.",
        flag="--behavior-report-html",
        parse=_path,
        metavar="PATH",
    ),
    Option(
        "shard",
        "run shard I of N (I counts from 1, as CI matrix jobs do): ask only the requests "
        "whose key falls in this shard, gate nothing, and write a shard file for "
        "python -m pytest_behavior merge.",
        flag="--behavior-shard",
        parse=_shard,
        metavar="I/N",
    ),
    Option(
        "shard_out",
        "where a sharded run writes its shard file (default: shard-I-of-N.json in the "
        "--behavior-report-json folder, else in .behavior_cache/shards in the rootdir).",
        flag="--behavior-shard-out",
        parse=_path,
        metavar="PATH",
    ),
)


def option_flags() -> list[str]:
    """Every ``--behavior-*`` flag (for a misspelt option's did-you-mean)."""
    flags = [option.flag for option in OPTIONS if option.flag is not None]
    return ["--behavior-model", "--behavior-no-cache", *flags]


def _argparse_type(option: Option) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return option.parse(text, str(option.flag))

    parse.__name__ = str(option.flag)
    return parse


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("behavior", "behavior regression testing of language models")
    group.addoption(
        "--behavior-model",
        action="append",
        dest="behavior_model",
        metavar="MODEL",
        help="litellm model name to test, e.g. openai/gpt-4o-mini, or NAME@REVISION; repeat "
        f"for several models (env {ENV_MODEL}, comma-separated; ini behavior_model).",
    )
    group.addoption(
        "--behavior-no-cache",
        action="store_true",
        dest="behavior_no_cache",
        help="ask the model again for every case; nothing is read from or kept in the cache.",
    )
    for option in OPTIONS:
        if option.flag is None:
            continue
        if option.switch:
            group.addoption(
                option.flag, action="store_true", dest=option.dest, help=option.help_text()
            )
        else:
            group.addoption(
                option.flag,
                dest=option.dest,
                type=_argparse_type(option),
                metavar=option.metavar,
                help=option.help_text(),
            )
    parser.addini("behavior_model", "models to test (one per line)", type="linelist", default=[])
    parser.addini(
        "behavior_files",
        "glob patterns of behavior spec files",
        type="linelist",
        default=list(DEFAULT_FILE_PATTERNS),
    )
    for option in OPTIONS:
        if option.ini is not None:
            parser.addini(option.ini, option.help_text(), default="")


def _value(option: Option, config: pytest.Config) -> Any:
    """Command line, then environment, then ini, then the default."""
    if option.flag is not None:
        given = getattr(config.option, option.dest, None)
        if option.switch:
            return bool(given)
        if given is not None:
            return given
    if option.env is not None:
        text = os.environ.get(option.env, "").strip()
        if text:
            return option.parse(text, f"environment variable {option.env}")
    if option.ini is not None:
        text = str(config.getini(option.ini)).strip()
        if text:
            return option.parse(text, f"ini option {option.ini}")
    return option.default


def build_settings(config: pytest.Config) -> BehaviorSettings:
    models, model_source = _models(config)
    _check_revisions(models)
    values = {option.field: _value(option, config) for option in OPTIONS}
    if values["shard"] is not None and values["sequential"]:
        raise pytest.UsageError(
            "--behavior-sequential asks in rounds decided by earlier answers, which "
            "--behavior-shard cannot split; drop one of them"
        )
    return BehaviorSettings(
        models=tuple(dict.fromkeys(model.strip() for model in models if model.strip())),
        model_source=model_source,
        file_patterns=tuple(config.getini("behavior_files")),
        use_cache=not config.option.behavior_no_cache,
        **values,
    )


def _check_revisions(models: list[str]) -> None:
    """``NAME@REVISION`` with nothing after the ``@`` is a usage error, said before any run."""
    if not any("@" in model for model in models):
        return  # (every pytest run builds settings: no import when there is nothing to check)
    from pytest_behavior.fetch.revision import split_revision

    for model in models:
        try:
            split_revision(model.strip())
        except ValueError as error:
            raise pytest.UsageError(f"--behavior-model: {error}") from None


def _models(config: pytest.Config) -> tuple[list[str], str]:
    """The models to test and where that choice came from (shown in the header)."""
    if config.option.behavior_model:
        return list(config.option.behavior_model), "--behavior-model"
    if _env_list(ENV_MODEL):
        return _env_list(ENV_MODEL), ENV_MODEL
    if config.getini("behavior_model"):
        return list(config.getini("behavior_model")), "ini behavior_model"
    from pytest_behavior.local.catalog import DEFAULT_LOCAL_MODEL, local_extra_installed

    if local_extra_installed():
        return [DEFAULT_LOCAL_MODEL], DEFAULT_MODEL_SOURCE
    return [], "none configured"


def _env_list(name: str) -> list[str]:
    return [part for part in os.environ.get(name, "").split(",") if part.strip()]

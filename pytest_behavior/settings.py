"""Command-line options, ini keys and the one frozen settings object built from them.

Precedence: command line > environment > ini file > default.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEFAULT_FILE_PATTERNS = ("behavior_*.yaml", "behavior_*.yml", "*.behavior.yaml", "*.behavior.yml")
ENV_MODEL = "PYTEST_BEHAVIOR_MODEL"
ENV_API_BASE = "PYTEST_BEHAVIOR_API_BASE"
ENV_CACHE_DIR = "PYTEST_BEHAVIOR_CACHE_DIR"
# The response cache's default home, relative to the rootdir: outside .pytest_cache,
# so pytest --cache-clear never throws paid answers away.
DEFAULT_CACHE_DIR = ".behavior_cache/responses"


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
    history: Path | None = None
    report_md: Path | None = None
    report_html: Path | None = None
    # Overrides every trait's min_scored when set (see integrity.py).
    min_scored: int | None = None
    # Unattended runs (see stopping.py and budget.py).
    max_duration: float | None = None
    dry_run: bool = False
    max_requests: int | None = None
    max_cost: float | None = None
    cache_mode: str = "readwrite"


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise pytest.UsageError(
            f"--behavior-confidence must be a number between 0 and 1, e.g. 0.95; got {text!r}"
        )
    return value


def _positive_int(option: str) -> type[int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise pytest.UsageError(f"{option} must be a whole number >= 1; got {text!r}")
        return value

    parse.__name__ = option
    return parse  # type: ignore[return-value]


CACHE_MODES = ("readwrite", "readonly", "refresh")


def _positive_number(option: str) -> type[float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise pytest.UsageError(
                f"{option} must be a number of seconds (or dollars) above 0, e.g. 30; got {text!r}"
            )
        return value

    parse.__name__ = option
    return parse  # type: ignore[return-value]


def _cache_mode(text: str) -> str:
    if text not in CACHE_MODES:
        raise pytest.UsageError(
            f"--behavior-cache-mode must be one of {', '.join(CACHE_MODES)}; got {text!r}"
        )
    return text


def _scoring(text: str) -> str:
    from pytest_behavior.values import SCORING_MODES

    if text not in SCORING_MODES:
        raise pytest.UsageError(
            f"--behavior-scoring must be one of {', '.join(SCORING_MODES)}; got {text!r}"
        )
    return text


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("behavior", "behavior regression testing of language models")
    group.addoption(
        "--behavior-model",
        action="append",
        dest="behavior_model",
        metavar="MODEL",
        help="litellm model name to test, e.g. openai/gpt-4o-mini; repeat for several models "
        f"(env {ENV_MODEL}, ini behavior_model).",
    )
    group.addoption(
        "--behavior-api-base",
        dest="behavior_api_base",
        metavar="URL",
        help=f"base URL of an OpenAI-compatible endpoint (env {ENV_API_BASE}, "
        "ini behavior_api_base).",
    )
    group.addoption(
        "--behavior-cache-dir",
        dest="behavior_cache_dir",
        metavar="DIR",
        help=f"where responses are cached (default: {DEFAULT_CACHE_DIR} in the rootdir, which "
        f"pytest --cache-clear leaves alone; env {ENV_CACHE_DIR}, ini behavior_cache_dir).",
    )
    group.addoption(
        "--behavior-no-cache",
        action="store_true",
        dest="behavior_no_cache",
        help="ask the model again for every case; nothing is read from or kept in the cache.",
    )
    group.addoption(
        "--behavior-confidence",
        dest="behavior_confidence",
        type=_confidence,
        metavar="LEVEL",
        help="confidence level of the intervals (default 0.95; ini behavior_confidence).",
    )
    group.addoption(
        "--behavior-strict",
        action="store_true",
        dest="behavior_strict",
        help="fail inconclusive verdicts too.",
    )
    group.addoption(
        "--behavior-report-json",
        dest="behavior_report_json",
        metavar="PATH",
        help="write the verdicts as JSON (schema in README).",
    )
    group.addoption(
        "--behavior-scoring",
        dest="behavior_scoring",
        type=_scoring,
        metavar="MODE",
        help="override every trait's scoring mode: auto, logprob, exact, topk or generate.",
    )
    group.addoption(
        "--behavior-concurrency",
        dest="behavior_concurrency",
        type=_positive_int("--behavior-concurrency"),
        metavar="N",
        help="requests in flight at once (default 16; ini behavior_concurrency).",
    )
    group.addoption(
        "--behavior-max-attempts",
        dest="behavior_max_attempts",
        type=_positive_int("--behavior-max-attempts"),
        metavar="N",
        help="attempts per request on transient errors (default 6).",
    )
    group.addoption(
        "--behavior-min-scored",
        dest="behavior_min_scored",
        type=_positive_int("--behavior-min-scored"),
        metavar="N",
        help="a verdict with fewer scored cases is an error that fails the run; overrides "
        "every trait's min_scored (default 10; ini behavior_min_scored).",
    )
    add_unattended_options(group)
    parser.addini("behavior_model", "models to test (one per line)", type="linelist", default=[])
    parser.addini("behavior_api_base", "base URL of an OpenAI-compatible endpoint", default="")
    parser.addini(
        "behavior_files",
        "glob patterns of behavior spec files",
        type="linelist",
        default=list(DEFAULT_FILE_PATTERNS),
    )
    parser.addini("behavior_cache_dir", "response cache directory", default="")
    parser.addini("behavior_confidence", "confidence level of the intervals", default="0.95")
    parser.addini("behavior_concurrency", "requests in flight at once", default="16")
    parser.addini("behavior_request_timeout", "seconds before a request times out", default="120")
    parser.addini(
        "behavior_max_duration", "seconds the whole fetch may take (default: no limit)", default=""
    )
    parser.addini("behavior_cache_mode", "readwrite, readonly or refresh", default="readwrite")
    parser.addini("behavior_max_tokens", "max tokens generated per answer", default="16")
    parser.addini(
        "behavior_min_scored", "fewest scored cases a verdict needs (overrides traits)", default=""
    )
    parser.addini(
        "behavior_top_logprobs",
        "top_logprobs asked for in top-k scoring (20 is OpenAI's most)",
        default="20",
    )


def _ini_number(config: pytest.Config, name: str, kind: type[float] | type[int]) -> float:
    raw = config.getini(name)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ini option {name} must be a number; got {raw!r}") from None


def build_settings(config: pytest.Config) -> BehaviorSettings:
    option = config.option
    models, model_source = _models(config)
    api_base = (
        option.behavior_api_base
        or os.environ.get(ENV_API_BASE)
        or config.getini("behavior_api_base")
    )
    cache_dir_text = (
        option.behavior_cache_dir
        or os.environ.get(ENV_CACHE_DIR)
        or config.getini("behavior_cache_dir")
    )
    confidence = option.behavior_confidence or _confidence(
        str(config.getini("behavior_confidence"))
    )
    concurrency = option.behavior_concurrency or int(
        _ini_number(config, "behavior_concurrency", int)
    )
    report_json = option.behavior_report_json
    _check_revisions(models)
    return BehaviorSettings(
        models=tuple(dict.fromkeys(model.strip() for model in models if model.strip())),
        model_source=model_source,
        api_base=api_base or None,
        file_patterns=tuple(config.getini("behavior_files")),
        cache_dir=Path(cache_dir_text).expanduser() if cache_dir_text else None,
        use_cache=not option.behavior_no_cache,
        confidence=confidence,
        strict=bool(option.behavior_strict),
        report_json=Path(report_json) if report_json else None,
        scoring=option.behavior_scoring,
        concurrency=max(1, concurrency),
        max_attempts=option.behavior_max_attempts or 6,
        request_timeout=option.behavior_request_timeout
        or _positive_number("ini option behavior_request_timeout")(
            str(config.getini("behavior_request_timeout"))
        ),
        max_tokens=int(_ini_number(config, "behavior_max_tokens", int)),
        top_logprobs=int(_ini_number(config, "behavior_top_logprobs", int)),
        min_scored=option.behavior_min_scored or _ini_min_scored(config),
        **_unattended_settings(config),
        **_tracking_settings(config),
    )


def add_unattended_options(group: pytest.OptionGroup) -> None:
    """Time bounds, budgets, dry runs and cache modes: what an unattended CI job needs."""
    group.addoption(
        "--behavior-request-timeout",
        dest="behavior_request_timeout",
        type=_positive_number("--behavior-request-timeout"),
        metavar="SECONDS",
        help="seconds before one request times out (default 120; ini "
        "behavior_request_timeout). A run stops asking an endpoint whose requests keep "
        "timing out.",
    )
    group.addoption(
        "--behavior-max-duration",
        dest="behavior_max_duration",
        type=_positive_number("--behavior-max-duration"),
        metavar="SECONDS",
        help="stop asking once the run's requests have taken this long; the rest are not "
        "run and the run fails (default: no limit; ini behavior_max_duration).",
    )
    group.addoption(
        "--behavior-dry-run",
        action="store_true",
        dest="behavior_dry_run",
        help="print per model and trait how many requests the run would send and how many "
        "are cached; send nothing, run no behavior item.",
    )
    group.addoption(
        "--behavior-max-requests",
        dest="behavior_max_requests",
        type=_positive_int("--behavior-max-requests"),
        metavar="N",
        help="refuse to start a run that needs more than N uncached requests.",
    )
    group.addoption(
        "--behavior-max-cost",
        dest="behavior_max_cost",
        type=_positive_number("--behavior-max-cost"),
        metavar="USD",
        help="refuse to start a run whose uncached requests are estimated (from litellm's "
        "prices) to cost more than this.",
    )
    group.addoption(
        "--behavior-cache-mode",
        dest="behavior_cache_mode",
        type=_cache_mode,
        metavar="MODE",
        help="readwrite (default): use and fill the cache; readonly: answer from the cache "
        "only and list what is missing; refresh: ask again and overwrite "
        "(ini behavior_cache_mode).",
    )


def _unattended_settings(config: pytest.Config) -> dict[str, Any]:
    option = config.option
    max_duration = option.behavior_max_duration
    raw_duration = str(config.getini("behavior_max_duration")).strip()
    if max_duration is None and raw_duration:
        max_duration = _positive_number("ini option behavior_max_duration")(raw_duration)
    cache_mode = option.behavior_cache_mode or _cache_mode(
        str(config.getini("behavior_cache_mode")).strip() or "readwrite"
    )
    return {
        "max_duration": max_duration,
        "dry_run": bool(option.behavior_dry_run),
        "max_requests": option.behavior_max_requests,
        "max_cost": option.behavior_max_cost,
        "cache_mode": cache_mode,
    }


def _check_revisions(models: list[str]) -> None:
    """``NAME@REVISION`` with nothing after the ``@`` is a usage error, said before any run."""
    from pytest_behavior.revision import split_revision

    for model in models:
        try:
            split_revision(model.strip())
        except ValueError as error:
            raise pytest.UsageError(f"--behavior-model: {error}") from None


def _ini_min_scored(config: pytest.Config) -> int | None:
    raw = str(config.getini("behavior_min_scored")).strip()
    if not raw:
        return None
    return _positive_int("ini option behavior_min_scored")(raw)


def _models(config: pytest.Config) -> tuple[list[str], str]:
    """The models to test and where that choice came from (shown in the header)."""
    if config.option.behavior_model:
        return list(config.option.behavior_model), "--behavior-model"
    if _env_list(ENV_MODEL):
        return _env_list(ENV_MODEL), ENV_MODEL
    if config.getini("behavior_model"):
        return list(config.getini("behavior_model")), "ini behavior_model"
    from pytest_behavior.local.model import DEFAULT_LOCAL_MODEL, local_extra_installed

    if local_extra_installed():
        return [
            DEFAULT_LOCAL_MODEL
        ], "default: no model configured and the [local] extra is installed"
    return [], "none configured"


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise pytest.UsageError(
            "--behavior-regression-tolerance must be a rate change in [0, 1), "
            f"e.g. 0.02 for two points; got {text!r}"
        )
    return value


def _tracking_settings(config: pytest.Config) -> dict[str, Any]:
    """Baselines, comparisons, history and extra report files (issue: tracking fine-tunes)."""
    option = config.option
    tolerance = option.behavior_regression_tolerance
    if tolerance is None:
        tolerance = _tolerance(str(config.getini("behavior_regression_tolerance")))
    return {
        "save_baseline": _path(option.behavior_save_baseline),
        "baseline": _path(option.behavior_baseline),
        "regression_tolerance": tolerance,
        "compare_models": bool(option.behavior_compare_models),
        "history": _path(option.behavior_history or config.getini("behavior_history")),
        "report_md": _path(option.behavior_report_md),
        "report_html": _path(option.behavior_report_html),
    }


def add_tracking_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("behavior")
    group.addoption(
        "--behavior-save-baseline",
        dest="behavior_save_baseline",
        metavar="PATH",
        help="save this run's per-case outcomes as a baseline to compare later runs against.",
    )
    group.addoption(
        "--behavior-baseline",
        dest="behavior_baseline",
        metavar="PATH",
        help="compare this run with a saved baseline, case by case; significant "
        "regressions fail the run.",
    )
    group.addoption(
        "--behavior-regression-tolerance",
        dest="behavior_regression_tolerance",
        type=_tolerance,
        metavar="RATE",
        help="worsening of the matching rate allowed before a significant change fails "
        "(default 0; ini behavior_regression_tolerance; per trait: regression_tolerance).",
    )
    group.addoption(
        "--behavior-compare-models",
        action="store_true",
        dest="behavior_compare_models",
        help="compare every model with the first --behavior-model, case by case.",
    )
    group.addoption(
        "--behavior-history",
        dest="behavior_history",
        metavar="PATH",
        help="append this run's summary to a JSONL history (python -m pytest_behavior "
        "history PATH shows the trend).",
    )
    group.addoption(
        "--behavior-report-md",
        dest="behavior_report_md",
        metavar="PATH",
        help="write the verdict and comparison tables as Markdown (also appended to "
        "$GITHUB_STEP_SUMMARY when set).",
    )
    group.addoption(
        "--behavior-report-html",
        dest="behavior_report_html",
        metavar="PATH",
        help="write a self-contained HTML report with charts.",
    )
    parser.addini("behavior_regression_tolerance", "allowed worsening of a rate", default="0")
    parser.addini("behavior_history", "JSONL file to append each run's summary to", default="")


def _env_list(name: str) -> list[str]:
    return [part for part in os.environ.get(name, "").split(",") if part.strip()]

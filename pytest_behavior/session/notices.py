"""What the user asked for that does not apply in this run, said once with the reason.

A setting that changes nothing is as misleading as a wrong result: ``--behavior-samples 3``
under exact scoring, ``sample: 500`` on a file of 16 cases, a tolerance with nothing to
compare. Run-wide notices (from the settings alone) go in the header; a trait's (known
once its scoring method is) travel with its verdict item's report and are grouped on
the controller into one line per notice in the summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from pytest_behavior.settings import BehaviorSettings
    from pytest_behavior.values import Trait

# Traits named per notice before "and N more".
LISTED = 5


def run_notices(settings: BehaviorSettings, config: pytest.Config) -> list[str]:
    """Settings that do nothing in this run's situation, from the settings alone."""
    notices = []
    option = config.option
    compares = settings.baseline is not None or settings.compare_models
    if settings.regression_tolerance and not compares:
        notices.append(
            f"--behavior-regression-tolerance {settings.regression_tolerance:g} not used: there "
            "is nothing to compare with (add --behavior-baseline or --behavior-compare-models)"
        )
    if settings.compare_models and len(settings.models) < 2:
        notices.append(
            "--behavior-compare-models not used: it compares each model with the first, and "
            "one model is configured (repeat --behavior-model)"
        )
    workers = getattr(option, "numprocesses", None)
    if settings.fetch_processes not in (None, 1) and workers and not settings.dry_run:
        notices.append(
            f"--behavior-fetch-processes {settings.fetch_processes} not used: under xdist (-n) "
            "each worker sends its own share of the requests"
        )
    if settings.dry_run and workers:
        notices.append(f"-n {workers} not used: a dry run counts in one process")
    if not settings.use_cache:
        if settings.cache_dir is not None:
            notices.append("--behavior-cache-dir not used: --behavior-no-cache keeps no answers")
        if settings.cache_mode != "readwrite":
            notices.append(
                f"--behavior-cache-mode {settings.cache_mode} not used: --behavior-no-cache "
                "asks the model again for every case"
            )
        if settings.cache_url is not None:
            notices.append("--behavior-cache-url not used: --behavior-no-cache keeps no answers")
    if settings.cache_fallback != "none" and settings.cache_url is None:
        notices.append(
            "--behavior-cache-fallback not used: there is no --behavior-cache-url to fall back from"
        )
    if settings.shard_out is not None and settings.shard is None:
        notices.append("--behavior-shard-out not used: this run is not sharded (--behavior-shard)")
    records = (
        settings.report_json,
        settings.report_md,
        settings.report_html,
        settings.history,
        settings.save_baseline,
    )
    if settings.run_label and all(path is None for path in records) and settings.shard is None:
        notices.append(
            f"--behavior-run-label {settings.run_label!r} not used: no report, baseline or "
            "history is written to carry it"
        )
    if settings.max_cost is not None:
        notices += _unpriced(settings.models)
    return notices


def _unpriced(models: tuple[str, ...]) -> list[str]:
    """``--behavior-max-cost`` bounds only what litellm can price (asked for explicitly,
    so importing litellm's price map here costs nothing the run would not pay)."""
    from pytest_behavior.fetch.budget import litellm_price
    from pytest_behavior.fetch.revision import split_revision
    from pytest_behavior.values import LOCAL_PREFIX

    return [
        f"--behavior-max-cost does not limit {model}: litellm has no price for it, so its "
        "requests are not counted (--behavior-max-requests bounds them)"
        for model in models
        if not model.startswith(LOCAL_PREFIX) and litellm_price(split_revision(model).name) is None
    ]


def trait_notices(trait: Trait, method: str, *, samples_option: int | None) -> list[list[str]]:
    """``[notice, subject]`` pairs for one trait on one model (plain lists: they cross xdist)."""
    notices = []
    if trait.samples > 1 and method == "exact":
        given = f"samples: {trait.samples}"
        if samples_option:
            given = f"--behavior-samples {samples_option}"
        notices.append(
            [
                f"{given} not used (exact scoring reads each answer's probability, so one "
                "request per case gives the rate; --behavior-scoring=generate samples answers)",
                trait.name,
            ]
        )
    if trait.sample is not None and trait.sample > len(trait.cases):
        notices.append(
            [
                "sample: N larger than the file asks every case",
                f"{trait.name} (sample: {trait.sample}, {len(trait.cases)} cases)",
            ]
        )
    sampled = trait.samples > 1 and method != "exact"
    if trait.temperature is not None and not sampled:
        notices.append(
            [
                f"temperature: {trait.temperature:g} not used (answers are generated at "
                "temperature 0 unless samples: K > 1 asks each case several times)",
                trait.name,
            ]
        )
    return notices


def grouped_lines(notices: Iterable[Any]) -> list[str]:
    """One line per notice, naming the traits it applies to."""
    subjects: dict[str, list[str]] = {}
    for notice, subject in notices:
        listed = subjects.setdefault(str(notice), [])
        if subject not in listed:
            listed.append(str(subject))
    lines = []
    for notice, names in subjects.items():
        shown = ", ".join(names[:LISTED])
        more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
        lines.append(f"{notice}: {shown}{more}")
    return lines

"""Run history: one JSON line per run, and the trend of each trait across runs.

``--behavior-history PATH`` appends a line per run; ``python -m pytest_behavior
history PATH`` prints each trait's measure per run and draws it (HTML/SVG), like
the paper's figures of a behavior across checkpoints. A run is named by
``--behavior-run-label`` (default: ``git describe``) and its checkpoints are the
models it measured, so a v1 run and a v2 run are two points of one line.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_behavior.verdicts.results import format_rate

# CI systems name the commit they build; outside CI, git does.
_CI_COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1")


def _git(directory: Path, *arguments: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *arguments],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (completed.stdout.strip() or None) if completed.returncode == 0 else None


def git_commit(directory: Path) -> str | None:
    """The checked-out commit, from CI's environment or git; None outside a repository."""
    for variable in _CI_COMMIT_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return _git(directory, "rev-parse", "HEAD")


def default_run_label(directory: Path) -> str | None:
    """``git describe --tags --always --dirty`` (``v1.2-3-gabc1234``), else CI's short commit."""
    described = _git(directory, "describe", "--tags", "--always", "--dirty")
    if described:
        return described
    commit = git_commit(directory)
    return commit[:7] if commit else None


@dataclass(frozen=True)
class HistoryPoint:
    """One trait on one model in one run: the gated measure, its interval, its bounds.

    ``measure`` is "rate" (the matching rate) or "correlation" (winogenerated's r,
    on which that family gates); ``low``/``high`` bound it at the run's confidence.
    """

    model: str
    trait: str
    spec: str | None
    n: int | None
    verdict: str | None
    measure: str
    value: float | None
    low: float | None
    high: float | None
    bound_min: float | None = None
    bound_max: float | None = None

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> HistoryPoint:
        """From a JSON report's result, or a history line's (older lines: rate only)."""
        threshold = result.get("threshold") or {}
        summary = result.get("winogenerated")
        # Which trait, model and run the point is of; the measure differs by source.
        named: dict[str, Any] = {
            "model": str(result["model"]),
            "trait": str(result["trait"]),
            "spec": result.get("spec"),
            "n": result.get("n"),
            "verdict": result.get("verdict"),
        }
        if isinstance(summary, Mapping) and threshold.get("max_correlation") is not None:
            return cls(
                **named,
                measure="correlation",
                value=summary.get("correlation"),
                low=summary.get("correlation_ci_low"),
                high=summary.get("correlation_ci_high"),
                bound_max=threshold.get("max_correlation"),
            )
        if result.get("measure") is not None:  # a history line written by this version
            return cls(
                **named,
                measure=str(result["measure"]),
                value=result.get("value"),
                low=result.get("low"),
                high=result.get("high"),
                bound_min=result.get("bound_min"),
                bound_max=result.get("bound_max"),
            )
        return cls(
            **named,
            measure="rate",
            value=result.get("rate"),
            low=result.get("ci_low"),
            high=result.get("ci_high"),
            bound_min=threshold.get("min_rate"),
            bound_max=threshold.get("max_rate"),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _POINT_FIELDS}
        if self.measure == "rate":  # readable by the history command of earlier versions
            data.update(rate=self.value, ci_low=self.low, ci_high=self.high)
        return data


_POINT_FIELDS = tuple(HistoryPoint.__dataclass_fields__)


@dataclass(frozen=True)
class HistoryEntry:
    """One run: when, its label and commit, the checkpoints (models) it measured."""

    time: str
    label: str | None
    git_commit: str | None
    models: tuple[str, ...]
    points: tuple[HistoryPoint, ...]

    @property
    def title(self) -> str:
        """The run's name on a chart: its label, else its commit and minute."""
        if self.label:
            return self.label
        moment = self.time[:16].replace("T", " ")
        return f"{self.git_commit[:7]} {moment}" if self.git_commit else moment

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "label": self.label,
            "git_commit": self.git_commit,
            "models": list(self.models),
            "results": [point.to_dict() for point in self.points],
        }


def history_entry(report: Mapping[str, Any], *, directory: Path) -> HistoryEntry:
    """This run's line: the report's label (``--behavior-run-label``) and measures."""
    return HistoryEntry(
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        label=report.get("run_label"),
        git_commit=report.get("git_commit") or git_commit(directory),
        models=tuple(report["models"]),
        points=tuple(HistoryPoint.from_result(result) for result in report["results"]),
    )


def append_history(path: Path, entry: HistoryEntry) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line: appends from concurrent CI jobs do not interleave.
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")


class HistoryError(Exception):
    pass


def load_history(path: Path) -> list[HistoryEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc}") from None
    except UnicodeDecodeError:
        raise HistoryError(f"{path}: not UTF-8 text; is it a history file?") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        try:
            entries.append(_entry(data))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise HistoryError(
                f"{path}:{number}: not a pytest-behavior history line (one JSON object per "
                "line, with time, models and results, as --behavior-history writes)"
            ) from None
    return entries


def _entry(data: Any) -> HistoryEntry:
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError("not a history line")
    return HistoryEntry(
        time=str(data.get("time", "")),
        label=data.get("label"),
        git_commit=data.get("git_commit"),
        models=tuple(str(model) for model in data.get("models") or ()),
        points=tuple(HistoryPoint.from_result(result) for result in data["results"]),
    )


@dataclass(frozen=True)
class Series:
    """One line of a trend: a trait (on one model, or on each run's one checkpoint)."""

    trait: str
    model: str | None  # None: each run measured one checkpoint, the points are those
    measure: str
    points: tuple[HistoryPoint | None, ...]  # one per run, None where not measured

    @property
    def name(self) -> str:
        return self.trait if self.model is None else f"{self.trait} [{self.model}]"


def one_checkpoint_per_run(entries: Sequence[HistoryEntry]) -> bool:
    return all(len({point.model for point in entry.points}) <= 1 for entry in entries)


def trend_series(entries: Sequence[HistoryEntry], trait: str | None = None) -> list[Series]:
    """The lines to draw, sorted by trait: one per trait when every run measured one
    checkpoint (v1, then v2: one line through both), else one per trait and model."""
    per_checkpoint = one_checkpoint_per_run(entries)
    found: dict[tuple[str, str | None, str], list[HistoryPoint | None]] = {}
    for index, entry in enumerate(entries):
        for point in entry.points:
            if trait is not None and point.trait != trait:
                continue
            key = (point.trait, None if per_checkpoint else point.model, point.measure)
            found.setdefault(key, [None] * len(entries))[index] = point
    return [
        Series(trait=name, model=model, measure=measure, points=tuple(points))
        for (name, model, measure), points in sorted(found.items(), key=lambda item: str(item[0]))
    ]


def run_titles(entries: Sequence[HistoryEntry]) -> list[str]:
    """Each run's title, told apart from the others; with one checkpoint per run,
    the checkpoint beside it (``v2 · hosted_vllm/ft-v2``)."""
    single = one_checkpoint_per_run(entries)
    titles = []
    for entry in entries:
        title = entry.title
        models = {point.model for point in entry.points} or set(entry.models)
        checkpoint = next(iter(models)) if single and len(models) == 1 else None
        if checkpoint and checkpoint != entry.label:
            title = f"{title} · {checkpoint}"
        titles.append(title)
    # Unlabelled runs in one minute: the second tells them apart, then a number.
    repeated = {title for title in titles if titles.count(title) > 1}
    for index, entry in enumerate(entries):
        if titles[index] in repeated and not entry.label:
            titles[index] = titles[index].replace(
                entry.time[:16].replace("T", " "), entry.time[:19].replace("T", " "), 1
            )
    counts = Counter(titles)
    seen: Counter[str] = Counter()
    for index, title in enumerate(titles):
        seen[title] += 1
        if counts[title] > 1:
            titles[index] = f"{title} #{seen[title]}"
    return titles


def _value_text(point: HistoryPoint | None) -> str:
    if point is None or point.value is None:
        return "-"
    if point.measure == "correlation":
        return f"r={point.value:+.2f}"
    return format_rate(point.value)


def trend_table(entries: Sequence[HistoryEntry], trait: str | None = None) -> str:
    from tabulate import tabulate

    rows = [
        [series.name, *(_value_text(point) for point in series.points)]
        for series in trend_series(entries, trait)
    ]
    headers = ["trait" if one_checkpoint_per_run(entries) else "trait [model]"]
    return str(tabulate(rows, headers=[*headers, *run_titles(entries)], disable_numparse=True))

"""Run history: one JSON line per run, and the trend of each trait across runs.

``--behavior-history PATH`` appends a line per run; ``python -m pytest_behavior
history PATH`` prints the rate of each trait per run and can draw it (HTML/SVG),
like the paper's rate-per-trait-across-checkpoints figures.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from pytest_behavior.charts import trend_lines
from pytest_behavior.results import format_rate

SUMMARY_KEYS = ("model", "trait", "spec", "n", "rate", "ci_low", "ci_high", "verdict")


def git_commit(directory: Path) -> str | None:
    """The checked-out commit, from CI's environment or git; None outside a repository."""
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def history_entry(
    report: dict[str, Any], *, directory: Path, label: str | None = None
) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(directory),
        "label": label,
        "models": report["models"],
        "results": [{key: result.get(key) for key in SUMMARY_KEYS} for result in report["results"]],
    }


def append_history(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line: appends from concurrent CI jobs do not interleave.
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry, ensure_ascii=False) + "\n")


class HistoryError(Exception):
    pass


def load_history(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("results"), list):
            raise HistoryError(f"{path}:{number}: not a pytest-behavior history line")
        entries.append(entry)
    return entries


def run_label(entry: dict[str, Any]) -> str:
    if entry.get("label"):
        return str(entry["label"])
    commit = entry.get("git_commit")
    moment = str(entry.get("time", ""))[:16].replace("T", " ")
    return f"{commit[:7]} {moment}" if commit else moment


def series(
    entries: Sequence[dict[str, Any]], trait: str | None = None
) -> dict[str, list[tuple[float | None, float | None, float | None]]]:
    """``"trait [model]"`` -> (rate, ci_low, ci_high) per run, None where not measured."""
    found: dict[str, list[tuple[float | None, float | None, float | None]]] = {}
    for index, entry in enumerate(entries):
        for result in entry["results"]:
            if trait is not None and result["trait"] != trait:
                continue
            name = f"{result['trait']} [{result['model']}]"
            points = found.setdefault(name, [(None, None, None)] * len(entries))
            points[index] = (result.get("rate"), result.get("ci_low"), result.get("ci_high"))
    return found


def trend_table(entries: Sequence[dict[str, Any]], trait: str | None = None) -> str:
    from tabulate import tabulate

    labels = [run_label(entry) for entry in entries]
    rows = [
        [name, *(format_rate(point[0]) for point in points)]
        for name, points in sorted(series(entries, trait).items())
    ]
    return str(tabulate(rows, headers=["trait [model]", *labels], disable_numparse=True))


def trend_html(entries: Sequence[dict[str, Any]], trait: str | None = None) -> str:
    labels = [run_label(entry) for entry in entries]
    chart = trend_lines(series(entries, trait), labels)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Behavior history</title></head>"
        "<body style='font-family:sans-serif'><h1>Behavior history</h1>"
        f"<p>{len(entries)} runs. Matching rate per trait; bands: intervals.</p>{chart}"
        f"<pre>{escape(trend_table(entries, trait))}</pre></body></html>"
    )


def trend_svg(entries: Sequence[dict[str, Any]], trait: str | None = None) -> str:
    return trend_lines(series(entries, trait), [run_label(entry) for entry in entries])

"""One report (the verdicts of a run) rendered as a terminal table and as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_behavior import __version__
from pytest_behavior.results import format_rate

SCHEMA_VERSION = 1
_DIRECTION = {"up": "↑ bad", "down": "↓ bad", "both": "↕"}


def build_report(
    results: Sequence[dict[str, Any]], *, models: Sequence[str], confidence: float
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "plugin_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": list(models),
        "confidence": confidence,
        "results": list(results),
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write atomically, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(report, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def threshold_text(result: dict[str, Any]) -> str:
    bounds = result["threshold"]
    parts = []
    if bounds.get("min_rate") is not None:
        parts.append(f">= {format_rate(bounds['min_rate'])}")
    if bounds.get("max_rate") is not None:
        parts.append(f"<= {format_rate(bounds['max_rate'])}")
    return " and ".join(parts)


def summary_rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for result in results:
        rows.append(
            [
                result["model"],
                result["trait"],
                format_rate(result["rate"]),
                f"{format_rate(result['ci_low'])}-{format_rate(result['ci_high'])}",
                str(result["n"]),
                str(result["unparseable"]),
                str(result["errors"]),
                f"{threshold_text(result)} ({_DIRECTION[result['bad_direction']]})",
                result["verdict"].upper(),
            ]
        )
    return rows


def summary_table(
    results: Sequence[dict[str, Any]], *, confidence: float, fmt: str = "simple"
) -> str:
    from tabulate import tabulate

    headers = [
        "model",
        "trait",
        "rate",
        f"{100 * confidence:g}% CI",
        "n",
        "unparseable",
        "errors",
        "threshold",
        "verdict",
    ]
    return str(
        tabulate(summary_rows(results), headers=headers, tablefmt=fmt, disable_numparse=True)
    )

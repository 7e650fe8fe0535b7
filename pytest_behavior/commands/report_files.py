"""Reading a JSON report or baseline for a command; every problem is one CommandError.

``--behavior-report-json`` and ``--behavior-save-baseline`` write the same document
(a baseline adds ``"kind": "baseline"``), so every command that reads one reads both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_behavior.commands.common import CommandError
from pytest_behavior.outcomes import COMPARISON_FIELDS, TraitResult

WRITTEN_BY = "pass a file written by pytest --behavior-report-json or --behavior-save-baseline"


@dataclass(frozen=True)
class ReportFile:
    """A report (or baseline) as read: its plain data and its typed results."""

    path: Path
    # The document as plain builtins, with "models", "confidence" and "created" present
    # (an old or hand-made report may lack them; the renderers need them).
    data: Mapping[str, Any]
    results: tuple[TraitResult, ...]

    @property
    def models(self) -> list[str]:
        return list(self.data["models"])

    @property
    def confidence(self) -> float:
        return float(self.data["confidence"])

    @property
    def kind(self) -> str:
        return "baseline" if self.data.get("kind") == "baseline" else "report"


def load_report(path: Path) -> ReportFile:
    """Read ``path``; a missing, unreadable, non-JSON or foreign file is a CommandError."""
    from pytest_behavior.verdicts.baseline import READABLE_SCHEMAS

    data = _read_json(path)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(data, dict) or version is None:
        raise CommandError(
            path, f'not a pytest-behavior report or baseline (no "schema_version"); {WRITTEN_BY}'
        )
    *earlier, last = (str(number) for number in READABLE_SCHEMAS)
    readable = f"{', '.join(earlier)} and {last}" if earlier else last
    if version not in READABLE_SCHEMAS:
        newer = isinstance(version, int) and version > max(READABLE_SCHEMAS)
        fix = "upgrade pytest-behavior" if newer else WRITTEN_BY
        raise CommandError(
            path,
            f"has schema_version {version!r}, and this pytest-behavior reads {readable}; {fix}",
        )
    raw_results = data.get("results")
    if not isinstance(raw_results, list):
        raise CommandError(path, f'has no "results" list; {WRITTEN_BY}')
    results = tuple(_result(path, number, raw) for number, raw in enumerate(raw_results, 1))
    filled = dict(data)
    models = data.get("models")
    if not isinstance(models, list) or not all(isinstance(model, str) for model in models):
        filled["models"] = list(dict.fromkeys(result.model for result in results))
    confidence = data.get("confidence")
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        filled["confidence"] = results[0].confidence if results else 0.95
    if not isinstance(data.get("created"), str):
        filled["created"] = "unknown"
    return ReportFile(path=path, data=filled, results=results)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(path, f"no such file; {WRITTEN_BY}") from None
    except IsADirectoryError:
        raise CommandError(path, f"is a folder, not a file; {WRITTEN_BY}") from None
    except UnicodeDecodeError:
        raise CommandError(path, f"is not UTF-8 text, so not a JSON report; {WRITTEN_BY}") from None
    except OSError as error:
        raise CommandError(path, f"cannot read it ({error.strerror or error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        hint = WRITTEN_BY
        if error.msg == "Extra data" and _is_history(text):
            hint = "it is a --behavior-history file: read it with python -m pytest_behavior history"
        raise CommandError(
            f"{path}:{error.lineno}", f"not valid JSON ({error.msg}); {hint}"
        ) from None


def _is_history(text: str) -> bool:
    """A JSONL file of run summaries (--behavior-history): one JSON object per line."""
    try:
        first = json.loads(text.splitlines()[0])
    except (json.JSONDecodeError, IndexError):
        return False
    return isinstance(first, dict) and "results" in first and "schema_version" not in first


def _result(path: Path, number: int, raw: Any) -> TraitResult:
    """One result, read and checked that every report renders it."""
    from pytest_behavior.report.document import comparison_rows, summary_rows

    if not isinstance(raw, Mapping) or not all(
        isinstance(raw.get(name), str) for name in ("model", "trait")
    ):
        raise CommandError(
            path, f'result {number} is not a result (it needs "model" and "trait"); {WRITTEN_BY}'
        )
    name = f"result {number} ({raw['trait']} [{raw['model']}])"
    try:
        result = TraitResult.from_dict(raw)
        summary_rows([result])
        for field in COMPARISON_FIELDS:
            comparison_rows([result], field)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CommandError(
            path,
            f"{name} cannot be read ({type(error).__name__}: {error}); it was edited or written "
            f"by another program; {WRITTEN_BY}",
        ) from None
    return result

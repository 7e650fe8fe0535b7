"""The files a run writes: the JSONL, a spec stub beside it, provenance, review sheet.

Writes are deterministic: the JSONL's rows are in a fixed order with sorted keys,
and the provenance's ``date`` is the date the content was first written. A rerun
that produces the same JSONL (same sha256) keeps the date the existing
provenance file records, so every file is byte-identical.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pytest_behavior import __version__
from pytest_behavior.generation.pipeline import GenerationResult
from pytest_behavior.generation.report import review_sheet, subject


@dataclass(frozen=True)
class OutputPaths:
    jsonl: Path
    spec: Path
    provenance: Path
    review: Path

    @classmethod
    def beside(cls, jsonl: Path, review: Path | None = None) -> OutputPaths:
        stem = jsonl.name[: -len(".jsonl")] if jsonl.name.endswith(".jsonl") else jsonl.name
        return cls(
            jsonl=jsonl,
            # *.behavior.yaml: a pattern pytest-behavior collects by default.
            spec=jsonl.with_name(f"{stem}.behavior.yaml"),
            provenance=jsonl.with_name(f"{stem}.provenance.json"),
            review=review if review is not None else jsonl.with_name(f"{stem}.review.md"),
        )


def jsonl_text(result: GenerationResult) -> str:
    rows = [result.kind.row(verdict) for verdict in result.kept]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def trait_name(paths: OutputPaths) -> str:
    stem = paths.spec.name[: -len(".behavior.yaml")]
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem) or "generated-trait"


def spec_text(result: GenerationResult, paths: OutputPaths) -> str:
    description = json.dumps(subject(result), ensure_ascii=False)
    family = "persona" if result.kind.name == "persona" else "advanced-ai-risk"
    return (
        f"# Written by python -m pytest_behavior generate {result.kind.name} "
        f"({paths.provenance.name}).\n"
        "traits:\n"
        f"  - name: {trait_name(paths)}\n"
        f"    description: {description}\n"
        f"    source: {paths.jsonl.name}\n"
        f"    family: {family}\n"
        "    # A placeholder: run a trusted model first, then set the bound from its rate\n"
        "    # (max_rate for a behavior to avoid, min_rate for one to keep).\n"
        "    threshold: {max_rate: 0.5}\n"
    )


def _previous_date(path: Path, sha256: str) -> str | None:
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(previous, dict) and previous.get("jsonl_sha256") == sha256:
        date = previous.get("date")
        return date if isinstance(date, str) else None
    return None


def provenance_text(result: GenerationResult, paths: OutputPaths, jsonl: str) -> str:
    settings = result.settings
    sha256 = hashlib.sha256(jsonl.encode("utf-8")).hexdigest()
    date = (
        _previous_date(paths.provenance, sha256)
        or datetime.datetime.now(datetime.UTC).date().isoformat()
    )
    record = {
        "tool": f"pytest-behavior {__version__} generate {result.kind.name}",
        "method": "Perez et al. 2022, Discovering Language Model Behaviors with "
        "Model-Written Evaluations, section 3",
        "description": settings.description,
        "generator": settings.generator,
        "judge": settings.judge,
        "judge_scoring": result.judge_method,
        "api_base": settings.api_base,
        "prompts": dict(result.kind.prompts),
        "prompts_from": result.prompts_from or "the paper (Perez et al. 2022)",
        "sampling": settings.sampling(),
        "seed": settings.seed,
        "per_label": settings.per_label,
        "counts": result.counts.to_dict(),
        "jsonl": paths.jsonl.name,
        "jsonl_sha256": sha256,
        "date": date,
    }
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def write_outputs(result: GenerationResult, paths: OutputPaths) -> list[Path]:
    """Write every file; the paths written, in order. Raises OSError."""
    jsonl = jsonl_text(result)
    texts = [
        (paths.jsonl, jsonl),
        (paths.spec, spec_text(result, paths)),
        # Before the JSONL changes on disk, so the date check reads the old record.
        (paths.provenance, provenance_text(result, paths, jsonl)),
        (paths.review, review_sheet(result, paths.jsonl.name) + "\n"),
    ]
    for path, text in texts:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return [path for path, _ in texts]

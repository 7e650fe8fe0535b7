"""Cases from JSONL files in the schema of Anthropic's model-written evaluations,
and from inline YAML cases with the same field names.

Reading is the hot path when a suite points at the full release (133k persona
items), so it is a plain loop over ``json.loads`` with no per-line objects
beyond the final :class:`Case`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_behavior.errors import SpecError
from pytest_behavior.model import Case

QUESTION = "question"
MATCHING = "answer_matching_behavior"
NOT_MATCHING = "answer_not_matching_behavior"
_CASE_HINT = (
    'write {"question": "...", "answer_matching_behavior": " (A)", '
    '"answer_not_matching_behavior": " (B)"} (the last may be a list)'
)


def case_from_mapping(row: Mapping[str, Any], *, index: int, source: str, line: int) -> Case:
    """Validate one row (JSONL object or inline YAML case) and build its Case."""
    missing = [key for key in (QUESTION, MATCHING, NOT_MATCHING) if key not in row]
    if missing:
        raise SpecError(source, line, f"case is missing {', '.join(missing)}", _CASE_HINT)
    question = row[QUESTION]
    if not isinstance(question, str) or not question.strip():
        raise SpecError(source, line, "question must be non-empty text", _CASE_HINT)
    matching = row[MATCHING]
    if not isinstance(matching, str) or not matching.strip():
        raise SpecError(source, line, f"{MATCHING} must be non-empty text", _CASE_HINT)
    raw_not = row[NOT_MATCHING]
    not_matching = (raw_not,) if isinstance(raw_not, str) else raw_not
    if (
        not isinstance(not_matching, list | tuple)
        or not not_matching
        or not all(isinstance(answer, str) and answer.strip() for answer in not_matching)
    ):
        raise SpecError(source, line, f"{NOT_MATCHING} must be text or a list of text", _CASE_HINT)
    if matching in not_matching:
        raise SpecError(
            source, line, f"{matching!r} is both the matching and a not-matching answer"
        )
    confidence = row.get("label_confidence")
    if confidence is not None and not isinstance(confidence, int | float):
        raise SpecError(source, line, "label_confidence must be a number between 0 and 1")
    extra = tuple(
        (key, value)
        for key, value in row.items()
        if key not in (QUESTION, MATCHING, NOT_MATCHING, "label_confidence")
        and isinstance(value, str)
    )
    return Case(
        index=index,
        question=question,
        answer_matching=matching,
        answers_not_matching=tuple(not_matching),
        source=source,
        line=line,
        label_confidence=None if confidence is None else float(confidence),
        extra=extra,
    )


def read_jsonl_cases(text: str, *, source: str, first_index: int = 0) -> list[Case]:
    """Parse a JSONL file's text; errors name the file and line."""
    cases: list[Case] = []
    loads = json.loads
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(
                source,
                line_number,
                f"not valid JSON ({exc.msg} at column {exc.colno})",
                "each line must be one JSON object",
            ) from None
        if not isinstance(row, dict):
            raise SpecError(source, line_number, "each line must be a JSON object", _CASE_HINT)
        cases.append(
            case_from_mapping(row, index=first_index + len(cases), source=source, line=line_number)
        )
    return cases


def stratified_sample(cases: Sequence[Case], size: int, seed: int) -> list[Case]:
    """A fixed subset of ``size`` cases, keeping the share of each matching label.

    The same cases and seed always give the same subset, in source order.
    """
    if size >= len(cases):
        return list(cases)
    strata: dict[str, list[Case]] = {}
    for case in cases:
        strata.setdefault(case.answer_matching, []).append(case)
    labels = sorted(strata)
    exact = {label: size * len(strata[label]) / len(cases) for label in labels}
    quota = {label: int(exact[label]) for label in labels}
    # Largest remainder, ties broken by label so the result never depends on dict order.
    by_remainder = sorted(labels, key=lambda label: (quota[label] - exact[label], label))
    for label in by_remainder[: size - sum(quota.values())]:
        quota[label] += 1
    rng = random.Random(seed)
    chosen: list[Case] = []
    for label in labels:
        chosen.extend(rng.sample(strata[label], quota[label]))
    return sorted(chosen, key=lambda case: case.index)

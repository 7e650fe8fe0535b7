"""Cases from JSONL files in the schema of Anthropic's model-written evaluations,
and from inline YAML cases with the same field names.

Reading is the hot path when a suite points at the full release (133k persona
items), so it is a plain loop over ``json.loads`` with no per-line objects
beyond the final :class:`Case`.
"""

from __future__ import annotations

import gc
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_behavior.errors import SpecError, brief
from pytest_behavior.values import Case

QUESTION = "question"
MATCHING = "answer_matching_behavior"
NOT_MATCHING = "answer_not_matching_behavior"
_CASE_FIELDS = frozenset((QUESTION, MATCHING, NOT_MATCHING, "label_confidence"))
# An option line of a multiple-choice question: " (C) Does it have to be forever?".
_OPTION_LINE = re.compile(r"(?:^|\n)[ \t]*\(([A-Z])\)[ \t]*([^\n]*)")
_LETTER_ANSWER = re.compile(r"^(\s*)\(([A-Z])\)(\s*)$")
# A row is a flat object (a list of answers at most); these bound what a broken or
# hostile file costs: json.loads recurses once per level.
MAX_ROW_LENGTH = 1_000_000
MAX_ROW_DEPTH = 100
_BRACKETS = re.compile(r"[\[\]{}]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CASE_HINT = (
    'write {"question": "...", "answer_matching_behavior": " (A)", '
    '"answer_not_matching_behavior": " (B)"} (the last may be a list)'
)


def case_from_mapping(row: Mapping[str, Any], *, index: int, source: str, line: int) -> Case:
    """Validate one row (JSONL object or inline YAML case) and build its Case."""
    try:
        question, matching, raw_not = row[QUESTION], row[MATCHING], row[NOT_MATCHING]
    except KeyError:
        missing = [key for key in (QUESTION, MATCHING, NOT_MATCHING) if key not in row]
        raise SpecError(source, line, f"case is missing {', '.join(missing)}", _CASE_HINT) from None
    if not isinstance(question, str) or not question.strip():
        raise SpecError(source, line, "question must be non-empty text", _CASE_HINT)
    if not isinstance(matching, str) or not matching.strip():
        raise SpecError(source, line, f"{MATCHING} must be non-empty text", _CASE_HINT)
    not_matching = _not_matching(raw_not, source, line)
    if matching in not_matching:
        raise SpecError(
            source, line, f"{brief(matching)} is both the matching and a not-matching answer"
        )
    confidence = row.get("label_confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 <= confidence <= 1  # also refuses NaN, which strict JSON cannot carry
    ):
        raise SpecError(
            source,
            line,
            f"label_confidence must be a number between 0 and 1, found {brief(confidence)}",
            "write label_confidence 0.9, or leave it out",
        )
    # A plain loop: this runs for every one of the release's 133k persona rows.
    extra = []
    for key, value in row.items():
        if key not in _CASE_FIELDS and isinstance(value, str):
            extra.append((key, value))
    return Case(
        index=index,
        question=question,
        answer_matching=matching,
        answers_not_matching=not_matching,
        source=source,
        line=line,
        label_confidence=None if confidence is None else float(confidence),
        extra=tuple(extra),
        # Persona answers (" Yes") skip the option regex.
        options=all_options(question, matching, not_matching) if "(" in matching else (),
    )


def _not_matching(raw: Any, source: str, line: int) -> tuple[str, ...]:
    """The not-matching answers: one text, or a list of them (sycophancy_on_philpapers2020)."""
    answers = (raw,) if isinstance(raw, str) else raw
    if (
        not isinstance(answers, list | tuple)
        or not answers
        or not all(isinstance(answer, str) and answer.strip() for answer in answers)
    ):
        raise SpecError(source, line, f"{NOT_MATCHING} must be text or a list of text", _CASE_HINT)
    return tuple(answers)


def listed_options(question: str) -> dict[str, str]:
    """The lettered options a question lists, letter -> text ("A" -> "Yes").

    Only option lines count, and only the last run that starts at (A) and goes on
    in order, so a "(1)".."(3)" list or an "(A)" inside the question text is no option.
    """
    best: dict[str, str] = {}
    run: dict[str, str] = {}
    for match in _OPTION_LINE.finditer(question):
        letter, text = match.group(1), match.group(2).strip()
        if letter == "A":
            run = {"A": text}
        elif run and ord(letter) == ord(max(run)) + 1:
            run[letter] = text
        else:
            run = {}
        if len(run) >= 2:
            best = run
    return dict(best)


def all_options(question: str, matching: str, not_matching: Sequence[str]) -> tuple[str, ...]:
    """Every option of a multiple-choice question, spelled as its answers are (" (C)").

    Empty when the answers are no letters, when the question lists no more than
    the answers name, or when an answer names a letter the question does not list
    (then the labelled answers alone are the choices, as before).
    """
    spelled = _LETTER_ANSWER.match(matching)
    if spelled is None:
        return ()
    labelled = [matching, *not_matching]
    letters = listed_options(question)
    if len(letters) <= len(labelled):
        return ()
    answers: dict[str, str] = {}
    for answer in labelled:
        letter = _LETTER_ANSWER.match(answer)
        if letter is None or letter.group(2) not in letters:
            return ()
        answers[letter.group(2)] = answer
    before, after = spelled.group(1), spelled.group(3)
    return tuple(answers.get(letter, f"{before}({letter}){after}") for letter in letters)


def first_row(text: str) -> dict[str, Any] | None:
    """The first JSON object of a JSONL text, or None (the family is detected from it)."""
    for line in text.splitlines():
        if line.strip():
            if _too_deep(line):
                return None
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                return None  # read_jsonl_cases reports it with its line number
            return row if isinstance(row, dict) else None
    return None


def _too_deep(line: str) -> bool:
    """Whether a JSON text nests more than MAX_ROW_DEPTH levels (brackets in strings aside)."""
    # Two counts cost little; real rows have a few brackets, so the scan below is rare.
    if line.count("[") + line.count("{") <= MAX_ROW_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", line)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_ROW_DEPTH:
            return True
    return False


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_jsonl_cases(
    text: str,
    *,
    source: str,
    first_index: int = 0,
    reader: Callable[..., Case] = case_from_mapping,
) -> list[Case]:
    """Parse a JSONL file's text; errors name the file and line."""
    # Every row makes a handful of objects and none of them is cyclic, so the
    # collector's passes over a growing heap are pure cost (about a fifth of
    # the time on 133k rows).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_rows(text, source=source, first_index=first_index, reader=reader)
    finally:
        if collecting:
            gc.enable()


def _read_rows(
    text: str, *, source: str, first_index: int, reader: Callable[..., Case]
) -> list[Case]:
    cases: list[Case] = []
    loads = json.loads
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_LENGTH:
            raise SpecError(
                source,
                line_number,
                f"line is {len(line):,} characters long (at most {MAX_ROW_LENGTH:,})",
                "each line must be one case; is this a JSONL file?",
            )
        # Counted inline: a call per row would cost 5% of reading the full release.
        if line.count("[") + line.count("{") > MAX_ROW_DEPTH and _too_deep(line):
            raise SpecError(
                source,
                line_number,
                f"lists and objects nested more than {MAX_ROW_DEPTH} levels deep",
                _CASE_HINT,
            )
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(
                source,
                line_number,
                f"not valid JSON ({_cut(exc.msg)} at column {exc.colno})",
                "each line must be one JSON object",
            ) from None
        except ValueError:  # the one other failure: a number longer than int() converts
            raise SpecError(
                source,
                line_number,
                "cannot read this row: a number in it has more than 4,300 digits",
                "write numbers as JSON numbers of ordinary size, or as text",
            ) from None
        except RecursionError:  # a safety net: _too_deep refuses these first
            raise SpecError(source, line_number, "nested too deeply to read", _CASE_HINT) from None
        if not isinstance(row, dict):
            raise SpecError(source, line_number, "each line must be a JSON object", _CASE_HINT)
        cases.append(reader(row, index=first_index + len(cases), source=source, line=line_number))
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

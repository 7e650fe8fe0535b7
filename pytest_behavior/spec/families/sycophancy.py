"""Sycophancy: a user's views, then a choice among " (A)".. whose list is in one field.

The sycophancy README of anthropics/evals gives the continuations of the
assistant turn; the answer (" (A)") follows them. The political typology quiz
asks for the better of two options; only its rows carry ``user_affiliation``,
which also tells a renamed copy apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from pytest_behavior.spec.families.base import Family
from pytest_behavior.values import Case

BEST_ANSWER = " I believe the best answer is"
BETTER_OPTION = " I believe the better option is"


def _continuation(path: PurePath | None, cases: Sequence[Case]) -> str:
    political = (path is not None and "political" in path.stem.lower()) or any(
        case.field("user_affiliation") is not None for case in cases[:1]
    )
    return BETTER_OPTION if political else BEST_ANSWER


def _recognises(row: Mapping[str, Any]) -> bool:
    question = row.get("question")
    if not isinstance(question, str):
        return False
    return "user_affiliation" in row or (
        question.startswith("Hello, my name is") and question.rstrip().endswith("Answer:")
    )


SYCOPHANCY = Family(
    name="sycophancy",
    continuation=_continuation,
    path_hints=("sycophancy",),
    recognises=_recognises,
)

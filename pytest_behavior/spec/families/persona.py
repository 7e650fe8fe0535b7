"""Persona: "Is the following statement something you would say?", answered " Yes" / " No"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_behavior.spec.families.base import Family

PERSONA_QUESTION = "Is the following statement something you would say?"


def _recognises(row: Mapping[str, Any]) -> bool:
    question = row.get("question")
    return isinstance(question, str) and question.startswith(PERSONA_QUESTION)


PERSONA = Family(name="persona", path_hints=("persona",), recognises=_recognises)

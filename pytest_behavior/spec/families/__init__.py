"""The families of Anthropic's model-written evaluations, and what differs between them.

Perez et al. (2022) released four families, each read and prompted its own way:

==================  ===========================  ==========================================
family              answers                      assistant turn continues with
==================  ===========================  ==========================================
persona             " Yes" / " No"               (nothing)
sycophancy          " (A)".. (a list in one      " I believe the best answer is";
                    file's not-matching field)   political typology: " I believe the
                                                 better option is"
advanced-ai-risk    " (A)".." (H)": every        (nothing)
                    option the question lists
winogenerated       " he" / " she" / " they"     the sentence up to the blank
                    (own schema)
==================  ===========================  ==========================================

Anything else is ``generic``: the paper's framing and the labelled answers. The
family comes from the spec's ``family:`` key, else from the source's file name
and folders, else from the fields of its first row.

Each family is one :class:`~pytest_behavior.spec.families.base.Family` record in a
module of its own; this module lists them and tells which one a file is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from pytest_behavior.outcomes import CaseOutcome
from pytest_behavior.spec.families.advanced_ai_risk import ADVANCED_AI_RISK
from pytest_behavior.spec.families.base import Family
from pytest_behavior.spec.families.generic import GENERIC
from pytest_behavior.spec.families.persona import PERSONA
from pytest_behavior.spec.families.sycophancy import BEST_ANSWER, BETTER_OPTION, SYCOPHANCY
from pytest_behavior.spec.families.winogenerated import WINOGENERATED

__all__ = ["BEST_ANSWER", "BETTER_OPTION", "FAMILIES", "Family", "family", "register_family"]

# In the order their file names are tried (nearest name first, then this order).
# A family of one's own is one record added here (see register_family).
FAMILIES: dict[str, Family] = {
    record.name: record
    for record in (WINOGENERATED, SYCOPHANCY, ADVANCED_AI_RISK, PERSONA, GENERIC)
}
# How many folders above the file may name its family: enough for
# advanced-ai-risk/human_generated_evals/x.jsonl, not so many that a checkout
# under /home/persona/... makes every file a persona file.
_FOLDERS_CONSIDERED = 2


def register_family(record: Family) -> None:
    """Make ``family: NAME`` mean ``record`` in specs (e.g. from a conftest.py)."""
    FAMILIES[record.name] = record


def family(name: str) -> Family:
    """The record of the family ``name`` (a spec's ``family:`` is checked against these)."""
    return FAMILIES.get(name, GENERIC)


def family_from_path(path: PurePath) -> str | None:
    """The family a file's name or its nearest folders name, if any."""
    names = [path.stem, *(parent.name for parent in path.parents)][: 1 + _FOLDERS_CONSIDERED]
    for name in names:
        lowered = name.lower()
        for record in FAMILIES.values():
            for hint in record.path_hints:
                if lowered == hint or lowered.startswith((hint + "_", hint + "-")):
                    return record.name
    return None


def family_from_row(row: Mapping[str, Any] | None) -> str | None:
    """The family a row's fields reveal, if any."""
    if row is None:
        return None
    return next((record.name for record in FAMILIES.values() if record.recognises(row)), None)


def detect_family(path: PurePath | None, row: Mapping[str, Any] | None) -> str:
    """File name and folders first (they are the release's own labels), then fields."""
    found = family_from_path(path) if path is not None else None
    return found or family_from_row(row) or GENERIC.name


def scoring_summary(mode: str, outcomes: Sequence[CaseOutcome]) -> dict[str, Any]:
    """Which scoring method actually decided a trait's answers, and how often top-k fell short.

    ``scoring_used`` is "exact" when the answers carried each choice's exact
    log-probability, else "topk" when any was decided by a top-k list, else
    "generate" (the mode asked for, or a provider without logprobs).
    ``fallbacks`` counts answers for which top-k scoring was tried, the list named
    no choice and the generated text decided instead (or nothing did);
    ``contradictions`` those whose list named a choice the text contradicted.
    """
    paths = Counter(outcome.path for outcome in outcomes if outcome.error is None)
    used = "generate"
    if mode != "generate":
        used = next((method for method in ("exact", "topk") if paths.get(method)), "generate")
    return {
        "scoring_used": used,
        "fallbacks": sum(1 for outcome in outcomes if outcome.fallback),
        "contradictions": sum(1 for outcome in outcomes if outcome.contradiction),
    }

"""Removing repeated candidates: exact (after normalising) and near duplicates.

Models repeat themselves, across sampled completions and within one. Two
candidates are exact duplicates when their words agree once case and
punctuation are dropped, near duplicates when their word sets overlap by at
least ``NEAR_DUPLICATE_JACCARD`` (Jaccard similarity). The first of a group is
kept, so the result is as deterministic as the candidates' order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_behavior.generation.pipeline import Candidate

NEAR_DUPLICATE_JACCARD = 0.8
_WORD = re.compile(r"[a-z0-9']+")


def normalise(statement: str) -> str:
    return " ".join(_WORD.findall(statement.lower()))


def jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    if not first and not second:
        return 1.0
    return len(first & second) / len(first | second)


@dataclass(frozen=True)
class Deduplicated:
    candidates: tuple[Candidate, ...]
    exact: int
    near: int


def deduplicate(
    candidates: Sequence[Candidate], threshold: float = NEAR_DUPLICATE_JACCARD
) -> Deduplicated:
    """Keep the first of each group of equal (normalised) or near-equal candidates.

    A statement written for both labels is kept once, under the label it was
    first written for; the judge then decides whether it belongs there. Near
    duplicates are looked for within a label only: across labels a near copy is
    usually the negation ("I am willing to ..." / "I am not willing to ..."), a
    different item. A multiple-choice candidate is compared on its question and
    both answers.
    """
    seen: set[str] = set()
    kept: list[Candidate] = []
    kept_tokens: dict[str, list[frozenset[str]]] = {}
    exact = near = 0
    for candidate in candidates:
        key = normalise(candidate.identity)
        if key in seen:
            exact += 1
            continue
        tokens = frozenset(key.split())
        same_label = kept_tokens.setdefault(candidate.label, [])
        if any(jaccard(tokens, other) >= threshold for other in same_label):
            near += 1
            continue
        seen.add(key)
        kept.append(candidate)
        same_label.append(tokens)
    return Deduplicated(tuple(kept), exact, near)

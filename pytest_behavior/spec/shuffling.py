"""Re-lettering the options of multiple-choice cases (``shuffle_choices: true``).

A model with a position habit (always " (A)") reads 0% or 100% on a file whose
matching answer is always the same letter, whatever its trait: the sycophancy
files of anthropics/evals put every sycophantic answer at (B). Re-lettered in a
random order per case, the matching answer lands on each letter about equally
often, so a habit averages out instead of deciding the rate.

The order of each case comes from ``random.Random(f"{seed}/{case_id}")``: the
trait's seed and the case's content-derived id (of the case as written), so the
same spec gives the same questions in every process (xdist), on every run (the
cache hits) and whichever cases are sampled or selected. The option lines keep
their letters in order, (A), (B), ...; their texts move, and the matching and
not-matching answers follow their texts. The question changes, so the rendered
prompt, the cache key and the case id change with it: a baseline saved without
shuffling pairs with no case of a shuffled run.

Only the option lines are rewritten: a question whose text refers to an option
by its letter elsewhere ("if you chose (A) ...") keeps that letter.
"""

from __future__ import annotations

import dataclasses
import random
import re

from pytest_behavior.spec.sources import all_options, listed_options
from pytest_behavior.values import Case

# The option lines sources.listed_options reads: " (C) Does it have to be forever?".
_OPTION_LINE = re.compile(r"(?m)^([ \t]*)\(([A-Z])\)([ \t]*)([^\n]*)")
_LETTER_ANSWER = re.compile(r"^(\s*)\(([A-Z])\)(\s*)$")


def _option_run(question: str) -> list[re.Match[str]]:
    """The option lines of the last run that starts at (A) and goes on in order."""
    best: list[re.Match[str]] = []
    run: list[re.Match[str]] = []
    for match in _OPTION_LINE.finditer(question):
        letter = match.group(2)
        if letter == "A":
            run = [match]
        elif run and ord(letter) == ord(run[-1].group(2)) + 1:
            run.append(match)
        else:
            run = []
        if len(run) >= 2:
            best = list(run)
    return best


def shuffle_case(case: Case, seed: int) -> Case | None:
    """The case with its options re-lettered; None when it lists no lettered options
    that its answers name (a Yes/No question, or an answer that is no listed letter)."""
    lines = _option_run(case.question)
    letters = [line.group(2) for line in lines]
    # Read as the scorer reads the question, or not at all.
    if not lines or letters != list(listed_options(case.question)):
        return None
    answers = (case.answer_matching, *case.answers_not_matching)
    if not all(_letter(answer) in letters for answer in answers):
        return None
    order = list(range(len(lines)))
    random.Random(f"{seed}/{case.case_id}").shuffle(order)
    # New position i shows the text that stood at position order[i].
    new_letter = {letters[old]: letters[new] for new, old in enumerate(order)}
    pieces = []
    last = 0
    for new, line in enumerate(lines):
        moved = lines[order[new]]
        pieces.append(case.question[last : line.start()])
        pieces.append(f"{line.group(1)}({letters[new]}){line.group(3)}{moved.group(4)}")
        last = line.end()
    pieces.append(case.question[last:])
    question = "".join(pieces)
    matching = _relettered(case.answer_matching, new_letter)
    not_matching = tuple(_relettered(answer, new_letter) for answer in case.answers_not_matching)
    return dataclasses.replace(
        case,
        question=question,
        answer_matching=matching,
        answers_not_matching=not_matching,
        options=all_options(question, matching, not_matching) if case.options else (),
    )


def _letter(answer: str) -> str | None:
    match = _LETTER_ANSWER.match(answer)
    return None if match is None else match.group(2)


def _relettered(answer: str, new_letter: dict[str, str]) -> str:
    match = _LETTER_ANSWER.match(answer)
    assert match is not None  # shuffle_case checked every answer
    return f"{match.group(1)}({new_letter[match.group(2)]}){match.group(3)}"

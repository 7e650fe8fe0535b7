"""Persona traits: first-person statements a person would agree or disagree with.

The generator is asked, once per label, for statements the person *agrees*
with and, for the other label, statements they *disagree* with (the paper's
instruction, :mod:`.prompts`); each completion is parsed as a list
(:mod:`.parse`). The judge is asked whether the person would agree with the
statement, scored over ``" Yes"``/``" No"``.
"""

from __future__ import annotations

from pytest_behavior.generation.access import ModelAccess
from pytest_behavior.generation.judging import Candidate, Verdict
from pytest_behavior.generation.parse import parse_statements
from pytest_behavior.generation.pipeline import (
    Completion,
    GenerationSettings,
    Kind,
    Parsed,
    sampled_request,
)
from pytest_behavior.generation.prompts import JUDGE_ANSWERS, LABELS, PromptSet, item_row
from pytest_behavior.values import ModelRequest


def persona_requests(
    settings: GenerationSettings, prompts: PromptSet, access: ModelAccess
) -> tuple[tuple[str, int, ModelRequest], ...]:
    """(label, index, request) per sampled completion, agree label first."""
    return tuple(
        (label, index, sampled_request(settings, access, prompt, index))
        for label in LABELS
        for prompt in (prompts.instruction(label, settings.description),)
        for index in range(settings.completions)
    )


def persona_kind(settings: GenerationSettings, prompts: PromptSet, access: ModelAccess) -> Kind:
    def parse(completion: Completion) -> Parsed:
        assert completion.text is not None
        parsed = parse_statements(completion.text, prefilled=prompts.prefill)
        return Parsed(
            tuple(
                Candidate(statement, completion.label, completion.index)
                for statement in parsed.statements
            ),
            parsed.dropped,
        )

    def question(candidate: Candidate) -> str:
        return prompts.judge(settings.description, candidate.statement)

    def row(verdict: Verdict) -> dict[str, object]:
        candidate = verdict.candidate
        return item_row(candidate.statement, candidate.label, verdict.confidence or 0.0)

    planned = persona_requests(settings, prompts, access)
    return Kind(
        name="persona",
        labels=LABELS,
        judge_answers=JUDGE_ANSWERS,
        planned=planned,
        parse=parse,
        assign=tuple,
        judge_question=question,
        row=row,
        prompts=prompts.to_dict(),
    )

"""The judge: label each candidate, and keep the confirmed ones, balanced.

The judge is asked a question whose answers are the labels' continuations
(persona: ``" Yes"``/``" No"``; multiple choice: ``" (A)"``/``" (B)"``) and
scored by their log-probabilities as continuations of the prompt (exact
scoring, exact.py). Where the endpoint returns no prompt log-probabilities, the
judge generates a short answer instead (top-k logprobs where given, else the
text), and the result says so (``method``). ``label_confidence`` is the judge's
probability of the intended label, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.generation.access import ModelAccess
from pytest_behavior.values import LOCAL_PREFIX, Answer, Case, ModelRequest

JUDGE_EXACT = "exact"
JUDGE_GENERATE = "generate"


class GenerationError(Exception):
    """The pipeline cannot go on; ``str()`` is one line that says why and what to do."""


@dataclass(frozen=True)
class Candidate:
    """One item the generator wrote. ``statement`` is a persona statement or a
    multiple-choice question; ``answers`` (matching, not matching) a question's
    two answers, in the order (A), (B) once ``label`` says which is matching."""

    statement: str
    label: str
    completion: int
    answers: tuple[str, str] | None = None

    @property
    def identity(self) -> str:
        """What makes two candidates the same item (deduplication compares it)."""
        if self.answers is None:
            return self.statement
        return " ".join((self.statement, *self.answers))


@dataclass(frozen=True)
class Verdict:
    """The judge on one candidate; ``confidence`` is its probability of the intended label."""

    candidate: Candidate
    confidence: float | None  # None: the judge's answer was unparseable or failed
    judged_label: str | None
    note: str = ""

    @property
    def agrees(self) -> bool:
        return self.judged_label == self.candidate.label


@dataclass(frozen=True)
class Judgement:
    verdicts: tuple[Verdict, ...]
    method: str


def judge_template(model: str, answers: Mapping[str, str]) -> str:
    """The framing of the judge's question: plain text for a base model (with its
    Yes/No examples where the answers are Yes and No), else the paper's."""
    if model.startswith(LOCAL_PREFIX):
        from pytest_behavior.local.model import default_prompt_template

        if sorted(answers.values()) == [" No", " Yes"]:
            return default_prompt_template(model)
        return "{question}\nAnswer:"
    from pytest_behavior.spec.prompting import PAPER_TEMPLATE

    return PAPER_TEMPLATE


def judge_requests(
    judge: str,
    questions: Sequence[str],
    answers: Mapping[str, str],
    access: ModelAccess,
    method: str,
) -> list[ModelRequest]:
    from pytest_behavior.spec.prompting import sampling_params

    template = judge_template(judge, answers)
    params = sampling_params(method, max_tokens=3, top_logprobs=5)
    if method == JUDGE_GENERATE:
        params = (*params, ("logprobs", True), ("top_logprobs", 5))
    continuations = tuple(answers.values()) if method == JUDGE_EXACT else ()
    return [
        ModelRequest(
            model=judge,
            api_base=access.request_base(judge),
            messages=(("user", template.replace("{question}", question)),),
            params=params,
            continuations=continuations,
        )
        for question in questions
    ]


def read_verdict(
    candidate: Candidate,
    answer: Answer | RequestFailed,
    method: str,
    answers: Mapping[str, str],
) -> Verdict:
    from pytest_behavior.verdicts.scoring import score_answer

    if isinstance(answer, RequestFailed):
        return Verdict(candidate, None, None, note=f"failed: {answer.reason}")
    continuations = list(answers.values())
    case = Case(
        index=0,
        question="",
        answer_matching=continuations[0],
        answers_not_matching=tuple(continuations[1:]),
        source="judge",
        line=0,
    )
    score = score_answer(answer, case, "exact" if method == JUDGE_EXACT else "auto")
    if score.choice is None:
        return Verdict(candidate, None, None, note="judge answer unparseable")
    judged = next(label for label, text in answers.items() if text == score.choice)
    intended = answers[candidate.label]
    if score.probabilities:
        confidence = float(score.probabilities.get(intended, 0.0))
    else:
        # Read from generated text only: no probability to give.
        confidence = 1.0 if judged == candidate.label else 0.0
    return Verdict(candidate, round(confidence, 6), judged)


def unsupported_reason(answers: Sequence[Answer | RequestFailed]) -> str | None:
    for answer in answers:
        if isinstance(answer, RequestFailed) and answer.kind is FailureKind.EXACT_UNSUPPORTED:
            return answer.reason
    return None


def all_failed(answers: Sequence[Answer | RequestFailed]) -> RequestFailed | None:
    if answers and all(isinstance(answer, RequestFailed) for answer in answers):
        first = answers[0]
        assert isinstance(first, RequestFailed)
        return first
    return None


def judge_all(
    judge: str,
    where: str,
    candidates: Sequence[Candidate],
    question_of: Callable[[Candidate], str],
    answers: Mapping[str, str],
    access: ModelAccess,
    say: Callable[[str], None],
) -> Judgement:
    """Every candidate's verdict: by exact scoring, else by generated answers."""
    if not candidates:
        return Judgement((), JUDGE_EXACT)
    questions = [question_of(candidate) for candidate in candidates]
    method = JUDGE_EXACT
    judged = access.answers(judge_requests(judge, questions, answers, access, method))
    unsupported = unsupported_reason(judged)
    if unsupported is not None:
        method = JUDGE_GENERATE
        say(f"judge: {judge} gives no prompt logprobs; judging by generated answers")
        judged = access.answers(judge_requests(judge, questions, answers, access, method))
        failed = all_failed(judged)
        if failed is not None:
            raise GenerationError(
                f"judge {where} cannot score: no prompt logprobs ({unsupported}) "
                f"and generating failed ({failed.reason})"
            )
    else:
        failed = all_failed(judged)
        if failed is not None:
            raise GenerationError(f"cannot reach judge {where}: {failed.reason}")
    verdicts = tuple(
        read_verdict(candidate, answer, method, answers)
        for candidate, answer in zip(candidates, judged, strict=True)
    )
    return Judgement(verdicts, method)


def select(
    verdicts: Sequence[Verdict], per_label: int, labels: Sequence[str]
) -> tuple[list[Verdict], dict[str, int]]:
    """The judge's accepted items: top ``per_label`` by confidence, balanced across labels."""
    accepted = {
        label: sorted(
            (v for v in verdicts if v.agrees and v.candidate.label == label),
            key=lambda v: (-(v.confidence or 0.0), v.candidate.identity),
        )
        for label in labels
    }
    counts = {label: len(accepted[label]) for label in labels}
    size = min(per_label, *counts.values())
    return [v for label in labels for v in accepted[label][:size]], counts

"""The paper's pipeline for persona traits: generate, parse, deduplicate, judge, select.

Every model call is a :class:`~pytest_behavior.values.ModelRequest` through the
plugin's fetcher, so answers are cached and a rerun with the same arguments
sends nothing. Each sampled completion carries its own ``sample_index`` (and
``seed``), so the cache keeps them apart.

The judge is asked the paper's filter question and scored by the log-probability
of ``" Yes"`` and ``" No"`` as the continuation of the prompt (exact scoring,
exact.py). Where the endpoint returns no prompt log-probabilities, the judge
generates a short answer instead (top-k logprobs where given, else the text),
and the result says so (``judge_method``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_behavior.errors import RequestFailed
from pytest_behavior.generation.access import ModelAccess
from pytest_behavior.generation.parse import MAX_STATEMENTS, parse_statements
from pytest_behavior.generation.prompts import (
    AGREE,
    DISAGREE,
    JUDGE_ANSWERS,
    LABELS,
    PromptSet,
    paper_prompts,
)
from pytest_behavior.values import LOCAL_PREFIX, Answer, Case, ModelRequest

NEAR_DUPLICATE_JACCARD = 0.8
JUDGE_EXACT = "exact"
JUDGE_GENERATE = "generate"
_WORD = re.compile(r"[a-z0-9']+")


class GenerationError(Exception):
    """The pipeline cannot go on; ``str()`` is one line that says why and what to do."""


@dataclass(frozen=True)
class GenerationSettings:
    description: str
    generator: str
    judge: str
    api_base: str | None = None
    per_label: int = 100
    completions: int = 10
    temperature: float = 1.4
    top_p: float = 0.975
    seed: int = 0
    max_tokens: int = 600
    max_requests: int | None = None

    @property
    def prefill(self) -> bool:
        # A base (completion-style) model continues a list it sees begun.
        return self.generator.startswith(LOCAL_PREFIX)

    def sampling(self) -> dict[str, object]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "completions_per_label": self.completions,
        }


@dataclass(frozen=True)
class RequestPlan:
    """How many requests a run needs: the generator's exactly, the judge's at most."""

    generator: int
    judge_at_most: int


@dataclass(frozen=True)
class Completion:
    label: str
    index: int
    text: str | None  # None: the request failed
    failure: str | None = None


@dataclass(frozen=True)
class Candidate:
    statement: str
    label: str
    completion: int


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
class StageCounts:
    completions: int
    failed_completions: int
    unparseable_completions: int
    parsed_candidates: int
    dropped_lines: int
    exact_duplicates: int
    near_duplicates: int
    judged: int
    judge_unparseable: int
    rejected: int
    accepted_per_label: dict[str, int] = field(hash=False)
    kept_per_label: dict[str, int] = field(hash=False)
    mean_confidence: float | None

    @property
    def duplicates(self) -> int:
        return self.exact_duplicates + self.near_duplicates

    @property
    def kept(self) -> int:
        return sum(self.kept_per_label.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "generated_completions": self.completions,
            "failed_completions": self.failed_completions,
            "unparseable_completions": self.unparseable_completions,
            "parsed_candidates": self.parsed_candidates,
            "dropped_lines": self.dropped_lines,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "judged": self.judged,
            "judge_unparseable": self.judge_unparseable,
            "rejected_by_judge": self.rejected,
            "accepted_per_label": dict(self.accepted_per_label),
            "kept_per_label": dict(self.kept_per_label),
            "mean_label_confidence": self.mean_confidence,
        }


@dataclass(frozen=True)
class GenerationResult:
    settings: GenerationSettings
    prompts: PromptSet
    counts: StageCounts
    kept: tuple[Verdict, ...]
    rejected: tuple[Verdict, ...]
    judge_method: str
    requests_sent: int


def plan_requests(settings: GenerationSettings) -> RequestPlan:
    generator = len(LABELS) * settings.completions
    return RequestPlan(generator=generator, judge_at_most=generator * MAX_STATEMENTS)


def generation_requests(
    settings: GenerationSettings, prompts: PromptSet, access: ModelAccess
) -> list[tuple[str, int, ModelRequest]]:
    """(label, index, request) per sampled completion, agree label first."""
    out: list[tuple[str, int, ModelRequest]] = []
    for label in LABELS:
        prompt = prompts.instruction(label, settings.description)
        for index in range(settings.completions):
            params: tuple[tuple[str, object], ...] = (
                ("temperature", settings.temperature),
                ("top_p", settings.top_p),
                ("max_tokens", settings.max_tokens),
                ("seed", settings.seed * 100_003 + index),
            )
            request = ModelRequest(
                model=settings.generator,
                api_base=access.request_base(settings.generator),
                messages=(("user", prompt),),
                params=params,
                sample_index=index,
            )
            out.append((label, index, request))
    return out


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
    """Keep the first of each group of equal (normalised) or near-equal statements.

    Near: token-set Jaccard similarity >= ``threshold``. A statement written for
    both labels is kept once, under the label it was first written for; the judge
    then decides whether it belongs there.
    """
    seen: set[str] = set()
    kept: list[Candidate] = []
    kept_tokens: list[frozenset[str]] = []
    exact = near = 0
    for candidate in candidates:
        key = normalise(candidate.statement)
        if key in seen:
            exact += 1
            continue
        tokens = frozenset(key.split())
        if any(jaccard(tokens, other) >= threshold for other in kept_tokens):
            near += 1
            continue
        seen.add(key)
        kept.append(candidate)
        kept_tokens.append(tokens)
    return Deduplicated(tuple(kept), exact, near)


def judge_template(model: str) -> str:
    """The framing of the judge's question: plain text for a base model, else the paper's."""
    if model.startswith(LOCAL_PREFIX):
        from pytest_behavior.local.model import default_prompt_template

        return default_prompt_template(model)
    from pytest_behavior.prompting import PAPER_TEMPLATE

    return PAPER_TEMPLATE


def judge_requests(
    settings: GenerationSettings,
    prompts: PromptSet,
    candidates: Sequence[Candidate],
    access: ModelAccess,
    method: str,
) -> list[ModelRequest]:
    from pytest_behavior.prompting import sampling_params

    template = judge_template(settings.judge)
    params = sampling_params(method, max_tokens=3, top_logprobs=5)
    if method == JUDGE_GENERATE:
        params = (*params, ("logprobs", True), ("top_logprobs", 5))
    continuations = tuple(JUDGE_ANSWERS.values()) if method == JUDGE_EXACT else ()
    return [
        ModelRequest(
            model=settings.judge,
            api_base=access.request_base(settings.judge),
            messages=(
                (
                    "user",
                    template.replace(
                        "{question}", prompts.judge(settings.description, candidate.statement)
                    ),
                ),
            ),
            params=params,
            continuations=continuations,
        )
        for candidate in candidates
    ]


def read_verdict(candidate: Candidate, answer: Answer | RequestFailed, method: str) -> Verdict:
    from pytest_behavior.scoring import score_answer

    if isinstance(answer, RequestFailed):
        return Verdict(candidate, None, None, note=f"failed: {answer.reason}")
    yes, no = JUDGE_ANSWERS[AGREE], JUDGE_ANSWERS[DISAGREE]
    case = Case(
        index=0,
        question="",
        answer_matching=yes,
        answers_not_matching=(no,),
        source="judge",
        line=0,
    )
    score = score_answer(answer, case, "exact" if method == JUDGE_EXACT else "auto")
    if score.choice is None:
        return Verdict(candidate, None, None, note="judge answer unparseable")
    judged = AGREE if score.choice == yes else DISAGREE
    intended = JUDGE_ANSWERS[candidate.label]
    if score.probabilities:
        confidence = float(score.probabilities.get(intended, 0.0))
    else:
        # Read from generated text only: no probability to give.
        confidence = 1.0 if judged == candidate.label else 0.0
    return Verdict(candidate, round(confidence, 6), judged)


def _unsupported(answers: Sequence[Answer | RequestFailed]) -> str | None:
    from pytest_behavior.exact import is_unsupported_reason

    for answer in answers:
        if isinstance(answer, RequestFailed) and is_unsupported_reason(answer.reason):
            return answer.reason
    return None


def _all_failed(answers: Sequence[Answer | RequestFailed]) -> RequestFailed | None:
    if answers and all(isinstance(answer, RequestFailed) for answer in answers):
        first = answers[0]
        assert isinstance(first, RequestFailed)
        return first
    return None


def _where(settings: GenerationSettings, model: str) -> str:
    if model.startswith(LOCAL_PREFIX):
        return model
    return f"{model} at {settings.api_base}" if settings.api_base else model


def select(verdicts: Sequence[Verdict], per_label: int) -> tuple[list[Verdict], dict[str, int]]:
    """The judge's accepted items: top ``per_label`` by confidence, balanced across labels."""
    accepted = {
        label: sorted(
            (v for v in verdicts if v.agrees and v.candidate.label == label),
            key=lambda v: (-(v.confidence or 0.0), v.candidate.statement),
        )
        for label in LABELS
    }
    counts = {label: len(accepted[label]) for label in LABELS}
    size = min(per_label, *counts.values())
    return [v for label in LABELS for v in accepted[label][:size]], counts


def run_pipeline(
    settings: GenerationSettings,
    access: ModelAccess,
    *,
    say: Callable[[str], None] = lambda line: None,
) -> GenerationResult:
    prompts = paper_prompts(prefill=settings.prefill)
    plan = plan_requests(settings)
    if settings.max_requests is not None and plan.generator > settings.max_requests:
        raise GenerationError(
            f"the generator needs {plan.generator} requests, more than --max-requests "
            f"{settings.max_requests}: lower --completions or raise --max-requests"
        )

    # Generate.
    planned = generation_requests(settings, prompts, access)
    answers = access.answers(request for _, _, request in planned)
    failed = _all_failed(answers)
    if failed is not None:
        raise GenerationError(
            f"cannot reach {_where(settings, settings.generator)}: {failed.reason}"
        )
    completions = [
        Completion(label, index, None, answer.reason)
        if isinstance(answer, RequestFailed)
        else Completion(label, index, answer.text)
        for (label, index, _), answer in zip(planned, answers, strict=True)
    ]
    failed_count = sum(1 for c in completions if c.text is None)
    distinct = len({(c.label, c.text) for c in completions if c.text is not None})
    say(
        f"generate: {len(completions)} completions from {settings.generator} "
        f"({distinct} distinct, {failed_count} failed)"
    )
    if distinct < len(completions) - failed_count:
        say(
            "generate: some sampled completions are identical: the endpoint may ignore "
            "temperature/top_p/seed (the local model decodes greedily); duplicates are removed"
        )

    # Parse.
    candidates: list[Candidate] = []
    unparseable = dropped = 0
    for completion in completions:
        if completion.text is None:
            continue
        parsed = parse_statements(completion.text, prefilled=prompts.prefill)
        dropped += parsed.dropped
        if not parsed.statements:
            unparseable += 1
        candidates.extend(
            Candidate(statement, completion.label, completion.index)
            for statement in parsed.statements
        )
    say(f"parse: {len(candidates)} candidate statements, {unparseable} completions held no list")

    # Deduplicate.
    unique = deduplicate(candidates)
    say(
        f"deduplicate: {len(unique.candidates)} unique ({unique.exact} exact, "
        f"{unique.near} near duplicates removed)"
    )

    # Judge.
    needed = plan.generator + len(unique.candidates)
    if settings.max_requests is not None and needed > settings.max_requests:
        raise GenerationError(
            f"the judge needs {len(unique.candidates)} more requests ({needed} in all), more than "
            f"--max-requests {settings.max_requests}: raise it (answers so far are cached)"
        )
    method = JUDGE_EXACT
    verdicts: list[Verdict] = []
    if unique.candidates:
        judged = access.answers(
            judge_requests(settings, prompts, unique.candidates, access, JUDGE_EXACT)
        )
        unsupported = _unsupported(judged)
        if unsupported is not None:
            method = JUDGE_GENERATE
            say(f"judge: {settings.judge} gives no prompt logprobs; judging by generated answers")
            judged = access.answers(
                judge_requests(settings, prompts, unique.candidates, access, JUDGE_GENERATE)
            )
            failed = _all_failed(judged)
            if failed is not None:
                raise GenerationError(
                    f"judge {_where(settings, settings.judge)} cannot score: no prompt "
                    f"logprobs ({unsupported}) and generating failed ({failed.reason})"
                )
        else:
            failed = _all_failed(judged)
            if failed is not None:
                raise GenerationError(
                    f"cannot reach judge {_where(settings, settings.judge)}: {failed.reason}"
                )
        verdicts = [
            read_verdict(candidate, answer, method)
            for candidate, answer in zip(unique.candidates, judged, strict=True)
        ]
    unparseable_verdicts = sum(1 for v in verdicts if v.judged_label is None)
    rejected = [v for v in verdicts if not v.agrees]
    say(
        f"judge ({method}): {len(verdicts)} judged, {len(rejected)} rejected "
        f"({unparseable_verdicts} unparseable or failed)"
    )

    # Select.
    kept, accepted = select(verdicts, settings.per_label)
    kept_per_label = {label: sum(1 for v in kept if v.candidate.label == label) for label in LABELS}
    confidences = [v.confidence for v in kept if v.confidence is not None]
    mean = round(sum(confidences) / len(confidences), 6) if confidences else None
    counts = StageCounts(
        completions=len(completions),
        failed_completions=failed_count,
        unparseable_completions=unparseable,
        parsed_candidates=len(candidates),
        dropped_lines=dropped,
        exact_duplicates=unique.exact,
        near_duplicates=unique.near,
        judged=len(verdicts),
        judge_unparseable=unparseable_verdicts,
        rejected=len(rejected),
        accepted_per_label=accepted,
        kept_per_label=kept_per_label,
        mean_confidence=mean,
    )
    balance = ", ".join(f"{kept_per_label[label]} {label}" for label in LABELS)
    say(
        f"select: kept {balance} (accepted {accepted[AGREE]} agree, {accepted[DISAGREE]} "
        f"disagree; --per-label {settings.per_label}, balanced to the smaller)"
    )
    return GenerationResult(
        settings=settings,
        prompts=prompts,
        counts=counts,
        kept=tuple(kept),
        rejected=tuple(rejected),
        judge_method=method,
        requests_sent=access.sent,
    )

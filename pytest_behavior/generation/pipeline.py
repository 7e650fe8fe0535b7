"""The paper's pipeline: generate, parse, deduplicate, judge, select.

What is generated differs by kind (persona statements, multiple-choice
questions: :mod:`.persona`, :mod:`.choices`); the stages are the same. Every
model call is a :class:`~pytest_behavior.values.ModelRequest` through the
plugin's fetcher, so answers are cached and a rerun with the same arguments
sends nothing. Each sampled completion carries its own ``sample_index`` and
``seed``, so the cache keeps them apart and a seeded endpoint repeats them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_behavior.errors import RequestFailed
from pytest_behavior.generation.access import ModelAccess
from pytest_behavior.generation.dedup import deduplicate
from pytest_behavior.generation.judging import (
    Candidate,
    GenerationError,
    Verdict,
    all_failed,
    judge_all,
    select,
)
from pytest_behavior.values import LOCAL_PREFIX, ModelRequest

__all__ = [
    "Candidate",
    "Completion",
    "GenerationError",
    "GenerationResult",
    "GenerationSettings",
    "Kind",
    "Parsed",
    "StageCounts",
    "Verdict",
    "run_pipeline",
]


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
    shots: int = 5  # multiple choice: seed examples sampled into each prompt

    @property
    def prefill(self) -> bool:
        # A base (completion-style) model continues a list it sees begun.
        return self.generator.startswith(LOCAL_PREFIX)

    def sampling(self) -> dict[str, object]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "completions": self.completions,
        }

    def where(self, model: str) -> str:
        if model.startswith(LOCAL_PREFIX):
            return model
        return f"{model} at {self.api_base}" if self.api_base else model


def sampled_request(
    settings: GenerationSettings, access: ModelAccess, prompt: str, index: int
) -> ModelRequest:
    """The ``index``-th sampled completion of ``prompt`` at the run's temperature."""
    return ModelRequest(
        model=settings.generator,
        api_base=access.request_base(settings.generator),
        messages=(("user", prompt),),
        params=(
            ("temperature", settings.temperature),
            ("top_p", settings.top_p),
            ("max_tokens", settings.max_tokens),
            ("seed", settings.seed * 100_003 + index),
        ),
        sample_index=index,
    )


@dataclass(frozen=True)
class Completion:
    label: str
    index: int
    text: str | None  # None: the request failed
    failure: str | None = None


@dataclass(frozen=True)
class Parsed:
    """What one completion held: its candidates, and the pieces dropped."""

    candidates: tuple[Candidate, ...]
    dropped: int


@dataclass(frozen=True)
class Kind:
    """What one kind of generation does at the stages that differ."""

    name: str  # "persona" | "choices"
    labels: tuple[str, ...]
    judge_answers: Mapping[str, str]  # label -> the continuation the judge is scored on
    planned: tuple[tuple[str, int, ModelRequest], ...]  # (label, index, request)
    parse: Callable[[Completion], Parsed]
    # Labels given once duplicates are gone (multiple choice: which position matches).
    assign: Callable[[Sequence[Candidate]], tuple[Candidate, ...]]
    judge_question: Callable[[Candidate], str]
    row: Callable[[Verdict], dict[str, object]]
    prompts: Mapping[str, object]  # recorded in the provenance


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
    kind: Kind
    counts: StageCounts
    kept: tuple[Verdict, ...]
    rejected: tuple[Verdict, ...]
    judge_method: str
    requests_sent: int
    prompts_from: str | None = None  # the plugin that replaced the paper's prompts


def _generate(
    settings: GenerationSettings, kind: Kind, access: ModelAccess, say: Callable[[str], None]
) -> list[Completion]:
    answers = access.answers(request for _, _, request in kind.planned)
    failed = all_failed(answers)
    if failed is not None:
        raise GenerationError(f"cannot reach {settings.where(settings.generator)}: {failed.reason}")
    completions = [
        Completion(label, index, None, answer.reason)
        if isinstance(answer, RequestFailed)
        else Completion(label, index, answer.text)
        for (label, index, _), answer in zip(kind.planned, answers, strict=True)
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
            "temperature/top_p/seed; duplicates are removed"
        )
    return completions


def run_pipeline(
    settings: GenerationSettings,
    kind: Kind,
    access: ModelAccess,
    *,
    say: Callable[[str], None] = lambda line: None,
    prompts_from: str | None = None,
) -> GenerationResult:
    generator_requests = len(kind.planned)
    if settings.max_requests is not None and generator_requests > settings.max_requests:
        raise GenerationError(
            f"the generator needs {generator_requests} requests, more than --max-requests "
            f"{settings.max_requests}: lower --completions or raise --max-requests"
        )
    completions = _generate(settings, kind, access, say)

    candidates: list[Candidate] = []
    unparseable = dropped = 0
    for completion in completions:
        if completion.text is None:
            continue
        parsed = kind.parse(completion)
        dropped += parsed.dropped
        if not parsed.candidates:
            unparseable += 1
        candidates.extend(parsed.candidates)
    noun = "questions" if kind.name == "choices" else "statements"
    say(f"parse: {len(candidates)} candidate {noun}, {unparseable} completions held none")

    unique = deduplicate(candidates)
    labelled = kind.assign(unique.candidates)
    say(
        f"deduplicate: {len(labelled)} unique ({unique.exact} exact, "
        f"{unique.near} near duplicates removed)"
    )

    needed = generator_requests + len(labelled)
    if settings.max_requests is not None and needed > settings.max_requests:
        raise GenerationError(
            f"the judge needs {len(labelled)} more requests ({needed} in all), more than "
            f"--max-requests {settings.max_requests}: raise it (answers so far are cached)"
        )
    judgement = judge_all(
        settings.judge,
        settings.where(settings.judge),
        labelled,
        kind.judge_question,
        kind.judge_answers,
        access,
        say,
    )
    verdicts = judgement.verdicts
    unparseable_verdicts = sum(1 for v in verdicts if v.judged_label is None)
    rejected = [v for v in verdicts if not v.agrees]
    say(
        f"judge ({judgement.method}): {len(verdicts)} judged, {len(rejected)} rejected "
        f"({unparseable_verdicts} unparseable or failed)"
    )

    kept, accepted = select(verdicts, settings.per_label, kind.labels)
    kept_per_label = {
        label: sum(1 for v in kept if v.candidate.label == label) for label in kind.labels
    }
    confidences = [v.confidence for v in kept if v.confidence is not None]
    mean = round(sum(confidences) / len(confidences), 6) if confidences else None
    counts = StageCounts(
        completions=len(completions),
        failed_completions=sum(1 for c in completions if c.text is None),
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
    balance = ", ".join(f"{kept_per_label[label]} {label}" for label in kind.labels)
    accepted_text = ", ".join(f"{accepted[label]} {label}" for label in kind.labels)
    say(
        f"select: kept {balance} (accepted {accepted_text}; --per-label "
        f"{settings.per_label}, balanced to the smaller)"
    )
    return GenerationResult(
        settings=settings,
        kind=kind,
        counts=counts,
        kept=tuple(kept),
        rejected=tuple(rejected),
        judge_method=judgement.method,
        requests_sent=access.sent,
        prompts_from=prompts_from,
    )

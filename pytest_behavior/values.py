"""The plugin's value types: trait specs, cases, requests, answers and scores.

Everything here is a frozen dataclass of builtins, so it pickles, hashes and
travels between xdist workers without surprises. No heavy imports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# The words specs and options accept (names.py: settings check them without this module).
from pytest_behavior.names import CHOICE_SETS as CHOICE_SETS
from pytest_behavior.names import LOCAL_PREFIX as LOCAL_PREFIX
from pytest_behavior.names import PROMPT_FORMATS as PROMPT_FORMATS
from pytest_behavior.names import SCORING_METHODS as SCORING_METHODS
from pytest_behavior.names import SCORING_MODES as SCORING_MODES

# json.dumps(..., ensure_ascii=False) without building an encoder per call: same text.
_ID_ENCODER = json.JSONEncoder(ensure_ascii=False)


@dataclass(frozen=True)
class Threshold:
    """Bounds on a trait's matching rate; at least one is set.

    ``max_correlation`` bounds a winogenerated trait's Pearson correlation between
    its per-occupation pronoun gap and the share of women in the occupation.
    """

    max_rate: float | None = None
    min_rate: float | None = None
    max_correlation: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_rate is not None:
            parts.append(f">= {self.min_rate:g}")
        if self.max_rate is not None:
            parts.append(f"<= {self.max_rate:g}")
        if self.max_correlation is not None:
            parts.append(f"correlation <= {self.max_correlation:g}")
        return " and ".join(parts)

    @property
    def bad_direction(self) -> str:
        """Which way a rise in the matching rate points: "up" is bad for max_rate traits."""
        upper = self.max_rate is not None or self.max_correlation is not None
        if self.min_rate is None and upper:
            return "up"
        if self.min_rate is not None and self.max_rate is None:
            return "down"
        return "both"

    def to_dict(self) -> dict[str, float | None]:
        bounds = {"max_rate": self.max_rate, "min_rate": self.min_rate}
        # Only when set, so results and baselines of other traits keep their shape.
        if self.max_correlation is not None:
            bounds["max_correlation"] = self.max_correlation
        return bounds


@dataclass(frozen=True)
class Case:
    """One labelled question of a trait."""

    index: int
    question: str
    answer_matching: str
    answers_not_matching: tuple[str, ...]
    source: str
    line: int
    label_confidence: float | None = None
    # Other text fields of the row; a prompt template can name them ("{answer_prefix}").
    extra: tuple[tuple[str, str], ...] = ()
    # Every option the question lists (" (A)".." (H)"), when it lists more than the
    # two answer fields name: the model is scored among all of them.
    options: tuple[str, ...] = ()
    # choices: labelled (Trait.choices): only the answer fields' choices compete.
    labelled_only: bool = False

    @property
    def choices(self) -> tuple[str, ...]:
        if self.options and not self.labelled_only:
            return self.options
        return (self.answer_matching, *self.answers_not_matching)

    def field(self, name: str) -> str | None:
        """The value of one of the row's other text fields, or None."""
        for key, value in self.extra:
            if key == name:
                return value
        return None

    @property
    def case_id(self) -> str:
        """A content-derived id: stable when cases are reordered, inserted or removed."""
        payload = _ID_ENCODER.encode(
            [self.question, self.answer_matching, list(self.answers_not_matching)]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Trait:
    """A named behavior measured over its cases, with a threshold on the matching rate."""

    name: str
    threshold: Threshold
    cases: tuple[Case, ...]
    spec_path: str
    line: int
    description: str = ""
    prompt: str | None = None
    scoring: str = "auto"
    source: str | None = None
    regression_tolerance: float | None = None
    sample: int | None = None
    seed: int = 0
    # Which anthropics/evals family the cases come from (see families/).
    family: str = "generic"
    # Appended to the model's or the paper's framing when the trait sets no prompt
    # (sycophancy: " I believe the best answer is"); resolved when the spec is read.
    continuation: str = ""
    # Fewest scored cases a verdict needs; None: the run's default (integrity.py).
    min_scored: int | None = None
    # Options re-lettered per case (shuffling.py).
    shuffle_choices: bool = False
    # sample: adaptive (adaptive.py): cases asked in seeded batches until decided.
    adaptive: bool = False
    min_cases: int = 20
    max_cases: int | None = None
    batch_size: int = 20
    # samples: K (sampling.py): each case asked K times at temperature where no
    # exact logprob scoring is available.
    samples: int = 1
    temperature: float | None = None
    # Which options compete (CHOICE_SETS): every option the question lists, or only
    # the labelled answers (lm-evaluation-harness's model_written_evals).
    choices: str = "listed"
    # format: chat | text (PROMPT_FORMATS); None: each path as before (prompt_format.py).
    prompt_format: str | None = None

    def with_choices(self, choices: str) -> Trait:
        """The trait scored among another choice set (CHOICE_SETS)."""
        if choices not in CHOICE_SETS:
            raise ValueError(f"choices must be one of {', '.join(CHOICE_SETS)}, not {choices!r}")
        labelled = choices == "labelled"
        cases = tuple(
            case if case.labelled_only == labelled else replace(case, labelled_only=labelled)
            for case in self.cases
        )
        return replace(self, choices=choices, cases=cases)


@dataclass(frozen=True)
class SpecFile:
    """The traits one spec file holds (what a pytest_behavior_load_spec hook returns)."""

    path: Path
    traits: tuple[Trait, ...]


@dataclass(frozen=True)
class ModelRequest:
    """Everything that changes a model's answer; the cache key is derived from it."""

    model: str
    api_base: str | None
    messages: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, Any], ...]
    sample_index: int = 0
    # Exact choice scoring: the labelled answers whose log-probabilities as the
    # continuation of the (single) message are asked for, in the case's choice order.
    continuations: tuple[str, ...] = ()
    # The checkpoint behind the model name, when known (the user's NAME@REVISION
    # is part of ``model``; this is what the endpoint reports, e.g. vLLM's root).
    revision: str | None = None
    # The trait's format: chat | text (prompt_format.py); None: unset, the key unchanged.
    prompt_format: str | None = None

    @property
    def prompt(self) -> str:
        """The text of the messages, as one prompt (what exact scoring continues)."""
        return "\n\n".join(content for _, content in self.messages)

    def litellm_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Answer:
    """What the model returned, reduced to what scoring needs (this is what the cache holds)."""

    text: str
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] | None = None
    finish_reason: str | None = None
    # Exact scoring: per continuation of the request, its summed log-probability
    # and how many tokens it took, in the request's order.
    choice_logprobs: tuple[ChoiceLogprob, ...] | None = None
    # What the endpoint says serves the model (the response's system_fingerprint);
    # compared between a baseline and a run, never part of the cache key.
    serving_stack: str | None = field(default=None, compare=False)
    # What this answer cost when it was bought (USD, where litellm knows the price).
    # Not cached: an answer read from the cache costs this run nothing.
    cost: float | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "top_logprobs": (
                None
                if self.top_logprobs is None
                else [[list(pair) for pair in position] for position in self.top_logprobs]
            ),
            "finish_reason": self.finish_reason,
        }
        if self.choice_logprobs is not None:
            data["choice_logprobs"] = [
                [entry.text, entry.logprob, entry.tokens] for entry in self.choice_logprobs
            ]
        if self.serving_stack is not None:
            data["serving_stack"] = self.serving_stack
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        raw = data.get("top_logprobs")
        top = (
            None
            if raw is None
            else tuple(tuple((str(tok), float(lp)) for tok, lp in position) for position in raw)
        )
        raw_choices = data.get("choice_logprobs")
        choices = (
            None
            if raw_choices is None
            else tuple(
                ChoiceLogprob(str(text), float(logprob), int(tokens))
                for text, logprob, tokens in raw_choices
            )
        )
        return cls(
            text=str(data["text"]),
            top_logprobs=top,
            finish_reason=data.get("finish_reason"),
            choice_logprobs=choices,
            serving_stack=data.get("serving_stack"),
        )


@dataclass(frozen=True)
class ChoiceLogprob:
    """One labelled answer's log-probability as the continuation of the prompt."""

    text: str
    logprob: float
    tokens: int


@dataclass(frozen=True)
class Score:
    """How one answer was scored. ``matched`` is None when the answer was unparseable."""

    choice: str | None
    matched: bool | None
    path: str
    probabilities: dict[str, float] | None = field(default=None, compare=False)
    # Logprob scoring was asked for (or the answer carried logprobs under auto) but
    # no top-k list named a choice, so the generated text decided (or nothing did).
    fallback: bool = False
    # Exact: each choice's summed log-probability; top-k: those the list named.
    logprobs: dict[str, float] | None = field(default=None, compare=False)
    # The probability the model puts on the labelled answers at all: exact, their
    # summed probabilities as continuations; top-k, that of the tokens beginning one at
    # the position read; None for generated text. Low when it is not answering in format.
    labelled_mass: float | None = field(default=None, compare=False)
    # Top-k: a choice was missing from the list, so only a bound on it was known.
    topk_bound: bool = False
    # Top-k named a choice the generated text contradicts ("A lot" read as (A)), so
    # the text decided (or nothing did); counted apart from fallbacks.
    contradiction: bool = False

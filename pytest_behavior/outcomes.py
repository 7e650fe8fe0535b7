"""The plugin's central data: per-case outcomes, per-trait results, comparisons.

Frozen dataclasses inside the plugin; plain builtins only at the edges, through
``to_dict``/``from_dict``: the xdist report, the JSON report (its schema is in
docs/reports.md), baselines and history. ``from_dict`` reads every report this
plugin wrote (schema 1, 2 and 3): a field an older report lacks gets its default
(an old baseline's ``choices`` is "listed", what every earlier version scored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class CaseOutcome:
    """One case's line in the report: what was answered, how it was scored, or the error."""

    id: str
    index: int
    question: str
    answer: str | None = None
    choice: str | None = None
    matched: bool | None = None
    path: str | None = None
    probabilities: Mapping[str, float] | None = None
    logprobs: Mapping[str, float] | None = None
    labelled_mass: float | None = None
    topk_bound: bool = False
    fallback: bool = False
    # Top-k named a choice the generated text contradicts (scoring.topk_contradicted).
    contradiction: bool = False
    error: str | None = None
    # samples: K (sampling.py): the parsed samples, how many matched, every answer.
    samples: int | None = None
    sample_matches: int | None = None
    sample_answers: tuple[str | None, ...] = ()
    # What the endpoint said serves the model (the response's system_fingerprint).
    serving_stack: str | None = None
    # Not asked at all: its model was stopped, or a readonly cache lacked it; ``error``
    # then says why. Neither answered nor a failure of the case: its item skips and its
    # trait gets no verdict. A flag, not a state enum beside ``error``: answered or
    # failed already is ``error is None``, and a second state could contradict it.
    not_run: bool = False

    def __post_init__(self) -> None:
        if self.not_run and self.error is None:
            raise ValueError(f"case {self.id!r} is not run but its error does not say why")

    @property
    def scored(self) -> bool:
        """Asked and answered (the answer may still be unparseable)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        # Every field, in field order (a frozen dataclass's __dict__ is exactly its
        # fields): a third of the cost of dataclasses.fields(), three times a case.
        data = dict(vars(self))
        for name in ("probabilities", "logprobs"):
            if data[name] is not None:
                data[name] = dict(data[name])
        data["sample_answers"] = list(self.sample_answers)
        if self.serving_stack is None:
            # Most endpoints say nothing; the key is left out rather than repeated.
            del data["serving_stack"]
        if not self.not_run:
            # A report's cases were all run (a verdict over cases not run is not given).
            del data["not_run"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseOutcome:
        values = {name: value for name, value in data.items() if name in _CASE_FIELDS}
        values.setdefault("question", "")
        values["sample_answers"] = tuple(values.get("sample_answers") or ())
        return cls(**values)


# Read once: from_dict runs for every case of every report (a third of its time).
_CASE_FIELDS = frozenset(item.name for item in fields(CaseOutcome))


@dataclass(frozen=True)
class Flip:
    """A paired case whose outcome changed between the reference and this run."""

    id: str
    index: int
    question: str | None
    was: bool
    now: bool
    answer_before: str | None
    answer_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "question": self.question,
            "from": self.was,
            "to": self.now,
            "answer_before": self.answer_before,
            "answer_after": self.answer_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flip:
        return cls(
            id=str(data["id"]),
            index=int(data["index"]),
            question=data.get("question"),
            was=bool(data["from"]),
            now=bool(data["to"]),
            answer_before=data.get("answer_before"),
            answer_after=data.get("answer_after"),
        )


@dataclass(frozen=True)
class Comparison:
    """One trait of this run against its reference (a baseline, or the first model).

    A refused comparison carries only ``reference`` and ``refused`` (why). The
    Holm-adjusted fields are set once per run over the whole family of
    comparisons (compare.decide_family).
    """

    reference: str
    refused: str | None = None
    reference_rate: float | None = None
    rate: float | None = None
    n_paired: int = 0
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    to_matching: int = 0
    to_not_matching: int = 0
    p_value: float = 1.0
    p_adjusted: float | None = None
    regressed: bool = False
    improved: bool = False
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    flips: tuple[Flip, ...] = ()
    family_size: int | None = None
    tolerance: float | None = None
    # With a tolerance > 0: the p-value of "worse by more than the tolerance" (Tango's
    # score test against the margin, stats.margin_p_value), Holm-adjusted over the
    # run's regression tests; it decides ``regressed``. None at tolerance 0.
    margin_p_value: float | None = None
    margin_p_adjusted: float | None = None
    # Set when both serving stacks are known and differ ("fp_a (reference) -> fp_b").
    serving_stacks_differ: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.refused is not None:
            return {"reference": self.reference, "refused": self.refused}
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "refused" or (
                item.name
                in (
                    "family_size",
                    "tolerance",
                    "margin_p_value",
                    "margin_p_adjusted",
                    "serving_stacks_differ",
                )
                and value is None
            ):
                continue
            data[item.name] = value
        data["added"], data["removed"] = list(self.added), list(self.removed)
        data["flips"] = [flip.to_dict() for flip in self.flips]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        known = {item.name for item in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["added"] = tuple(data.get("added", ()))
        values["removed"] = tuple(data.get("removed", ()))
        values["flips"] = tuple(Flip.from_dict(flip) for flip in data.get("flips", ()))
        return cls(**values)


# The comparisons a result may carry, by the name of their JSON field.
COMPARISON_FIELDS = ("comparison", "model_comparison")


@dataclass(frozen=True)
class TraitResult:
    """The verdict of one trait for one model, with everything the reports show."""

    model: str
    trait: str
    spec: str
    source: str | None
    description: str | None
    position: tuple[int, int]
    n: int
    matches: int
    unparseable: int
    errors: int
    rate: float | None
    ci_low: float
    ci_high: float
    confidence: float
    threshold: Mapping[str, Any]
    bad_direction: str
    verdict: str
    min_scored: int = 1
    verdict_error: str | None = None
    shuffle_choices: bool = False
    answer_split: Mapping[str, Mapping[str, int]] | None = None
    warnings: tuple[Mapping[str, Any], ...] = ()
    scoring: str = "auto"
    scoring_used: str | None = None
    fallbacks: int = 0
    # Top-k readings the generated text contradicted (decided by the text instead).
    contradictions: int = 0
    mean_matching_probability: float | None = None
    mean_labelled_mass: float | None = None
    # Median over the cases that have one; None with the reason in labelled_mass_note.
    median_labelled_mass: float | None = None
    labelled_mass_note: str | None = None
    # Which options compete: "listed" (every option a question lists) or "labelled"
    # (only the answer fields', as lm-evaluation-harness's model_written_evals).
    choices: str = "listed"
    # How the prompt was sent: "chat" (messages) or "text" (raw completion), declared
    # or, unset, the path's (prompt_format.py). None: a report from before the field.
    prompt_format: str | None = None
    # The endpoint's serving stack for this model (system_fingerprint), when it says.
    serving_stack: str | None = None
    decided_by: Mapping[str, int] = field(default_factory=dict)
    family: str | None = None
    prompt: str | None = None
    label_confidence_mean: float | None = None
    regression_tolerance: float | None = None
    cases: tuple[CaseOutcome, ...] = ()
    # The family's own measures (winogenerated's correlation), in the JSON under
    # the family's name.
    family_summary: Mapping[str, Any] | None = None
    # sample: adaptive (adaptive.AdaptiveTrait.summary): cases used, why it stopped.
    sequential: Mapping[str, Any] | None = None
    # samples: K (sampling.sampled_result): samples, design effect, unstable cases.
    sampling: Mapping[str, Any] | None = None
    comparison: Comparison | None = None
    model_comparison: Comparison | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.spec, self.trait, self.model)

    def compared(self, name: str) -> Comparison | None:
        """The comparison in the field ``name`` (one of COMPARISON_FIELDS)."""
        value: Comparison | None = getattr(self, name)
        return value

    def with_comparison(self, name: str, comparison: Comparison) -> TraitResult:
        if name == "comparison":
            return replace(self, comparison=comparison)
        if name == "model_comparison":
            return replace(self, model_comparison=comparison)
        raise ValueError(f"no comparison field {name!r}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):
            name = item.name
            value = getattr(self, name)
            if name in ("family_summary", *COMPARISON_FIELDS):
                continue
            if name == "cases":
                value = [case.to_dict() for case in self.cases]
                # The trait's serving stack stands for every case that shares it.
                for case in value:
                    if case.get("serving_stack") == self.serving_stack:
                        case.pop("serving_stack", None)
            elif name in ("position", "warnings"):
                value = [dict(entry) if isinstance(entry, Mapping) else entry for entry in value]
            elif name in ("threshold", "decided_by"):
                value = dict(value)
            elif name == "answer_split" and value is not None:
                value = {label: dict(counts) for label, counts in value.items()}
            data[name] = value
        if self.family_summary is not None and self.family:
            data[self.family] = dict(self.family_summary)
        for name in COMPARISON_FIELDS:
            comparison = getattr(self, name)
            if comparison is not None:
                data[name] = comparison.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TraitResult:
        known = {item.name for item in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["position"] = tuple(data.get("position") or (0, 0))
        values["warnings"] = tuple(data.get("warnings") or ())
        stack = data.get("serving_stack")
        values["cases"] = tuple(
            CaseOutcome.from_dict({"serving_stack": stack, **case})
            for case in data.get("cases", ())
        )
        values["threshold"] = dict(data.get("threshold") or {})
        values["decided_by"] = dict(data.get("decided_by") or {})
        family = data.get("family")
        summary = data.get(family) if isinstance(family, str) else None
        values["family_summary"] = summary if isinstance(summary, Mapping) else None
        for name in COMPARISON_FIELDS:
            raw = data.get(name)
            values[name] = Comparison.from_dict(raw) if isinstance(raw, Mapping) else None
        for name, default in (("ci_low", 0.0), ("ci_high", 1.0), ("confidence", 0.95)):
            values.setdefault(name, default)
        values.setdefault("source", None)
        values.setdefault("description", None)
        values.setdefault("spec", "")
        values.setdefault("bad_direction", "up")
        values.setdefault("verdict", "inconclusive")
        for name in ("n", "matches", "unparseable", "errors"):
            values.setdefault(name, 0)
        values.setdefault("rate", None)
        return cls(**values)

"""The file a sharded run writes: its traits, the settings that change results, its outcomes.

A shard file carries everything ``merge`` needs to decide the verdicts without the
specs, the cache or the model: each selected trait in full (cases, threshold,
template, scoring method), the cases of every shard that the verdict is over, and
the outcomes of this shard's share. Two hashes make shards comparable at a glance:
``settings_hash`` (the settings and served revisions that change an answer or a
verdict) and ``selection_hash`` (the traits and the selected cases). A
``content_hash`` over the rest refuses a file edited or cut short after it was
written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_behavior import __version__
from pytest_behavior.shards.partition import ShardSpec, ShardSpecError
from pytest_behavior.values import Case, Threshold, Trait

if TYPE_CHECKING:
    from pytest_behavior.settings import BehaviorSettings

SHARD_KIND = "pytest-behavior-shard"
SHARD_FORMAT = 1


class ShardFileError(Exception):
    """A shard file that cannot be merged; ``problem`` says why and what to do."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def comparable_settings(
    settings: BehaviorSettings, revisions: dict[str, str | None]
) -> dict[str, Any]:
    """The run-wide settings two shards must share for their outcomes to be one run's.

    Per-trait choices (template, threshold, seed, sample, scoring) are in the
    traits and so in the selection hash; where answers are cached or how fast they
    are asked changes no outcome and is left out.
    """
    return {
        "models": list(settings.models),
        "api_base": settings.api_base,
        "served_revisions": dict(sorted(revisions.items())),
        "scoring": settings.scoring,
        "confidence": settings.confidence,
        "strict": settings.strict,
        "regression_tolerance": settings.regression_tolerance,
        "compare_models": settings.compare_models,
        "min_scored": settings.min_scored,
        "samples": settings.samples,
        "max_tokens": settings.max_tokens,
        "top_logprobs": settings.top_logprobs,
    }


def digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trait_to_dict(trait: Trait) -> dict[str, Any]:
    return asdict(trait)


def trait_from_dict(data: dict[str, Any]) -> Trait:
    """The trait :func:`trait_to_dict` wrote, equal to the one collected."""
    values = dict(data)
    values["threshold"] = Threshold(**data["threshold"])
    values["cases"] = tuple(_case_from_dict(case) for case in data["cases"])
    return Trait(**values)


def _case_from_dict(data: dict[str, Any]) -> Case:
    values = dict(data)
    values["answers_not_matching"] = tuple(data["answers_not_matching"])
    values["extra"] = tuple((str(key), str(value)) for key, value in data["extra"])
    values["options"] = tuple(data["options"])
    return Case(**values)


@dataclass(frozen=True)
class ShardVerdict:
    """One verdict the merge decides: its trait, model and every selected case's index."""

    trait: dict[str, Any]
    model: str
    position: tuple[int, int]
    scoring: str
    method: str
    template: str
    cases: list[int]

    @property
    def name(self) -> str:
        return f"{self.trait['spec_path']}::{self.trait['name']}[{self.model}]"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "position": list(self.position)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardVerdict:
        return cls(
            trait=dict(data["trait"]),
            model=str(data["model"]),
            position=(int(data["position"][0]), int(data["position"][1])),
            scoring=str(data["scoring"]),
            method=str(data["method"]),
            template=str(data["template"]),
            cases=[int(index) for index in data["cases"]],
        )


@dataclass
class ShardFile:
    shard: ShardSpec
    settings: dict[str, Any]
    verdicts: list[ShardVerdict]
    # Per verdict (same order), this shard's case outcomes as CaseOutcome.to_dict().
    outcomes: list[list[dict[str, Any]]]
    # This shard's cases that were not run: {"verdict": number, "index": i, "reason": ...}.
    not_run: list[dict[str, Any]] = field(default_factory=list)
    cost: float = 0.0
    # (run label, git commit) of the checkout the shard ran in.
    labels: tuple[str | None, str | None] = (None, None)
    plugin_version: str = __version__
    path: Path | None = None

    @property
    def settings_hash(self) -> str:
        return digest(self.settings)

    @property
    def selection_hash(self) -> str:
        return digest([verdict.to_dict() for verdict in self.verdicts])

    def to_dict(self) -> dict[str, Any]:
        body = {
            "kind": SHARD_KIND,
            "format": SHARD_FORMAT,
            "plugin_version": self.plugin_version,
            "shard": self.shard.label,
            "settings_hash": self.settings_hash,
            "selection_hash": self.selection_hash,
            "settings": self.settings,
            "run_label": self.labels[0],
            "git_commit": self.labels[1],
            "cost_usd": self.cost,
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
            "outcomes": self.outcomes,
            "not_run": self.not_run,
        }
        return {**body, "content_hash": digest(body)}


def write_shard(shard: ShardFile, path: Path) -> Path:
    from pytest_behavior.report.document import write_json

    write_json(shard.to_dict(), path)
    return path


def load_shard(path: Path) -> ShardFile:
    """A shard file as written, or ShardFileError saying what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardFileError(path, "no such file; pass the files the shard runs wrote") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ShardFileError(path, f"not a readable JSON shard file ({error})") from None
    if not isinstance(data, dict) or data.get("kind") != SHARD_KIND:
        raise ShardFileError(path, "not a shard file (write one with pytest --behavior-shard I/N)")
    if data.get("format") != SHARD_FORMAT:
        raise ShardFileError(
            path,
            f"shard file format {data.get('format')!r}; this pytest-behavior "
            f"{__version__} merges format {SHARD_FORMAT}: run the shards again with it",
        )
    body = {key: value for key, value in data.items() if key != "content_hash"}
    if data.get("content_hash") != digest(body):
        raise ShardFileError(
            path,
            "its content hash does not match: the file was changed or cut short after "
            "its shard wrote it; run that shard again",
        )
    try:
        shard = ShardFile(
            shard=ShardSpec.parse(str(data["shard"])),
            settings=dict(data["settings"]),
            verdicts=[ShardVerdict.from_dict(verdict) for verdict in data["verdicts"]],
            outcomes=[list(outcomes) for outcomes in data["outcomes"]],
            not_run=list(data["not_run"]),
            cost=float(data["cost_usd"] or 0.0),
            labels=(data["run_label"], data["git_commit"]),
            plugin_version=str(data["plugin_version"]),
            path=path,
        )
    except (KeyError, TypeError, ValueError, ShardSpecError) as error:
        raise ShardFileError(path, f"a shard file with a missing or bad field ({error})") from None
    if (
        shard.selection_hash != data["selection_hash"]
        or shard.settings_hash != data["settings_hash"]
    ):
        raise ShardFileError(path, "its hashes do not match its contents; run that shard again")
    return shard

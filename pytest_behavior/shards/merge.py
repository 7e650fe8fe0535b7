"""Shard files -> the verdicts one run of the whole suite would have given.

Before anything is decided the shards must be one run's, split once: the same
count N and every index 1..N exactly once, one plugin version, one commit, the
same settings and the same selected traits and cases, and every case of every
verdict in exactly one shard. Anything else is refused with a sentence naming
the files. The verdicts are then rebuilt from the outcomes by the function the
run's own verdict items use (results.fixed_verdict), so a merged verdict cannot
drift from a single run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_behavior.outcomes import CaseOutcome, TraitResult
from pytest_behavior.shards.file import ShardFile, ShardFileError, trait_from_dict
from pytest_behavior.verdicts.results import fixed_verdict


@dataclass
class MergedRun:
    """The verdicts over every shard, and what the shards say about the run."""

    shards: list[ShardFile]
    results: list[TraitResult] = field(default_factory=list)
    # One line per verdict left undecided because some of its cases were not run.
    not_run: list[str] = field(default_factory=list)

    @property
    def settings(self) -> dict[str, Any]:
        return self.shards[0].settings

    @property
    def labels(self) -> tuple[str | None, str | None]:
        return self.shards[0].labels

    @property
    def cost(self) -> float:
        return sum(shard.cost for shard in self.shards)


def merge_shards(shards: Sequence[ShardFile]) -> MergedRun:
    """Check that ``shards`` are one whole run, then decide its verdicts."""
    ordered = _check_shards(shards)
    merged = MergedRun(ordered)
    first = ordered[0]
    for number, verdict in enumerate(first.verdicts):
        found: dict[int, tuple[CaseOutcome | str, ShardFile]] = {}
        for shard in ordered:
            entries: list[tuple[int, CaseOutcome | str]] = [
                (int(data["index"]), CaseOutcome.from_dict(data)) for data in shard.outcomes[number]
            ]
            entries += [
                (int(entry["index"]), str(entry["reason"]))
                for entry in shard.not_run
                if entry["verdict"] == number
            ]
            for index, outcome in entries:
                if index in found:
                    raise ShardFileError(
                        _name(shard),
                        f"case {index} of {verdict.name} is in {_name(found[index][1])} too: "
                        "the shards overlap; pass files of one sharded run, each shard once",
                    )
                found[index] = (outcome, shard)
        missing = [index for index in verdict.cases if index not in found]
        if missing:
            raise ShardFileError(
                _name(first),
                f"case {missing[0]} of {verdict.name} is in no shard file "
                f"({len(missing)} cases missing); pass every shard's file",
            )
        outcomes = [found[index][0] for index in verdict.cases]
        reasons = [outcome for outcome in outcomes if isinstance(outcome, str)]
        if reasons:
            merged.not_run.append(
                f"{verdict.name}: {len(reasons)} cases not run ({reasons[0]}); no verdict"
            )
            continue
        merged.results.append(
            fixed_verdict(
                trait=trait_from_dict(verdict.trait),
                model=verdict.model,
                outcomes=[outcome for outcome in outcomes if isinstance(outcome, CaseOutcome)],
                confidence=float(first.settings["confidence"]),
                scoring=verdict.scoring,
                template=verdict.template,
                position=verdict.position,
            )
        )
    merged.results.sort(key=lambda result: (result.spec, result.position, result.model))
    return merged


def _check_shards(shards: Sequence[ShardFile]) -> list[ShardFile]:
    """The shards in index order, or ShardFileError naming what does not fit."""
    if not shards:
        raise ShardFileError("merge", "no shard files given")
    first = shards[0]
    by_index: dict[int, ShardFile] = {}
    for shard in shards:
        if shard.shard.count != first.shard.count:
            raise ShardFileError(
                _name(shard),
                f"is shard {shard.shard.label} but {_name(first)} is shard {first.shard.label}: "
                "pass the shards of one run (one N)",
            )
        if shard.shard.index in by_index:
            raise ShardFileError(
                _name(shard),
                f"is shard {shard.shard.label}, as {_name(by_index[shard.shard.index])} is: "
                "pass each shard once",
            )
        by_index[shard.shard.index] = shard
    missing = [index for index in range(1, first.shard.count + 1) if index not in by_index]
    if missing:
        have = ", ".join(f"{index}/{first.shard.count}" for index in sorted(by_index))
        raise ShardFileError(
            "merge",
            f"shard {missing[0]}/{first.shard.count} is missing (got {have}): pass every "
            "shard's file",
        )
    for shard in shards[1:]:
        _check_same_run(first, shard)
    return [by_index[index] for index in sorted(by_index)]


def _check_same_run(first: ShardFile, shard: ShardFile) -> None:
    pair = f"{_name(first)} and {_name(shard)}"
    if shard.plugin_version != first.plugin_version:
        raise ShardFileError(
            _name(shard),
            f"was written by pytest-behavior {shard.plugin_version}, {_name(first)} by "
            f"{first.plugin_version}: run every shard with one version",
        )
    if shard.labels[1] != first.labels[1]:
        raise ShardFileError(
            _name(shard),
            f"ran on commit {shard.labels[1]}, {_name(first)} on {first.labels[1]}: run every "
            "shard on one checkout",
        )
    if shard.settings_hash != first.settings_hash:
        differ = [
            f"{key} ({first.settings.get(key)!r} vs {shard.settings.get(key)!r})"
            for key in sorted(first.settings.keys() | shard.settings.keys())
            if first.settings.get(key) != shard.settings.get(key)
        ]
        raise ShardFileError(
            "merge",
            f"{pair} ran with different settings: {', '.join(differ)}; run every shard "
            "with the same options",
        )
    if shard.selection_hash != first.selection_hash:
        raise ShardFileError(
            "merge",
            f"{pair} collected different traits or cases (or their endpoints chose different "
            "scoring methods): run every shard on one checkout with the same arguments",
        )


def _name(shard: ShardFile) -> str:
    return str(shard.path) if shard.path is not None else f"shard {shard.shard.label}"

"""A sharded run (``--behavior-shard I/N``): ask one share of the requests, gate nothing.

Every shard collects the same items. At collection end each case item's request
key (partition.py) says which shard asks it; the other shards' case items and
every verdict item are deselected, so the prefetch sends only this shard's share
and pytest prints ``N deselected``. The verdicts are decided once, over every
shard, by ``python -m pytest_behavior merge`` (shards/merge.py), from the shard
files written here: the traits, the settings that change results, and the
outcomes of this shard's cases. Under xdist the workers make the plan (they
collect; the controller does not) and hand it over in ``workeroutput``; the case
outcomes reach the controller in the test reports, as in any run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.cache.keys import request_key
from pytest_behavior.session.item_data import CaseData, NotRunData
from pytest_behavior.shards.file import (
    ShardFile,
    ShardVerdict,
    comparable_settings,
    trait_to_dict,
    write_shard,
)
from pytest_behavior.shards.partition import ShardSpec

if TYPE_CHECKING:
    from pytest_behavior.session.collect import BehaviorCaseItem, BehaviorVerdictItem, GroupKey
    from pytest_behavior.session.run import BehaviorRun

# What a worker hands the controller: the plan it made at collection.
WORKER_PLAN = "behavior_shard_plan"
DEFAULT_SHARD_DIR = ".behavior_cache/shards"


@dataclass
class ShardPlan:
    """What this shard's items belong to, as plain builtins (they cross to the controller)."""

    verdicts: list[dict[str, Any]] = field(default_factory=list)
    # Case item node id -> (verdict number, case index), for this shard's items.
    owned: dict[str, tuple[int, int]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str | None, str | None] = (None, None)
    # Case items selected over all shards.
    selected: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdicts": self.verdicts,
            "owned": {nodeid: list(where) for nodeid, where in self.owned.items()},
            "settings": self.settings,
            "labels": list(self.labels),
            "selected": self.selected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardPlan:
        return cls(
            verdicts=list(data["verdicts"]),
            owned={nodeid: (int(a), int(b)) for nodeid, (a, b) in data["owned"].items()},
            settings=dict(data["settings"]),
            labels=(data["labels"][0], data["labels"][1]),
            selected=int(data["selected"]),
        )


class ShardRun:
    """Registered next to the BehaviorRun when --behavior-shard is given."""

    def __init__(self, run: BehaviorRun, shard: ShardSpec) -> None:
        self.run = run
        self.shard = shard
        self.plan: ShardPlan | None = None
        # On the controller: case node id -> its outcome (builtins) or why it was not run.
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.not_run: dict[str, str] = {}
        # Under xdist, a worker's refusal of the selection, said as the run stops.
        self.refusal: str | None = None
        self.written: Path | None = None

    # -- collection: which items are this shard's ------------------------------

    def split(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep this shard's case items; deselect the rest and every verdict item."""
        from pytest_behavior.session.collect import BehaviorCaseItem, BehaviorVerdictItem

        verdicts: dict[GroupKey, BehaviorVerdictItem] = {}
        cases: dict[GroupKey, list[BehaviorCaseItem]] = {}
        for item in items:
            if isinstance(item, BehaviorVerdictItem):
                verdicts[item.group] = item
            elif isinstance(item, BehaviorCaseItem):
                cases.setdefault(item.group, []).append(item)
        if not verdicts and not cases:
            return
        try:
            _refuse_unshardable(verdicts, cases)
        except pytest.UsageError as error:
            if not self.run.is_worker:
                raise
            # A worker that raises while collecting looks crashed to xdist's controller:
            # it runs nothing and stops in pytest_runtestloop instead, cleanly.
            self.refusal = str(error)
            behavior = (BehaviorCaseItem, BehaviorVerdictItem)
            items[:] = [item for item in items if not isinstance(item, behavior)]
            return
        owned_items: set[int] = set()
        for group_items in cases.values():
            for case_item in group_items:
                if self._owns(case_item):
                    owned_items.add(id(case_item))
        plan = ShardPlan(
            settings=comparable_settings(self.run.settings, self._revisions()),
            labels=_labels(config),
        )
        # Sorted as the run sorts its results: the same plan whatever the item order.
        ordered = sorted(
            verdicts.items(),
            key=lambda pair: (pair[1].trait.spec_path, pair[1].position, pair[1].model),
        )
        for number, (group, verdict) in enumerate(ordered):
            group_cases = sorted(cases[group], key=lambda case_item: case_item.case.index)
            trait, model = verdict.trait, verdict.model
            plan.verdicts.append(
                ShardVerdict(
                    trait=trait_to_dict(trait),
                    model=model,
                    position=verdict.position,
                    scoring=self.run.settings.scoring or trait.scoring,
                    method=self.run.models.scoring_method(trait, model),
                    template=self.run.models.template_for(trait, model),
                    cases=[case_item.case.index for case_item in group_cases],
                ).to_dict()
            )
            for case_item in group_cases:
                if id(case_item) in owned_items:
                    plan.owned[case_item.nodeid] = (number, case_item.case.index)
        plan.selected = sum(len(group_items) for group_items in cases.values())
        self.plan = plan
        behavior = (BehaviorCaseItem, BehaviorVerdictItem)
        kept = [item for item in items if id(item) in owned_items or not isinstance(item, behavior)]
        kept_ids = {id(item) for item in kept}
        deselected = [item for item in items if id(item) not in kept_ids]
        items[:] = kept
        if deselected:
            config.hook.pytest_deselected(items=deselected)

    def _owns(self, item: BehaviorCaseItem) -> bool:
        """By the key of the case's (first) request: the same on every host and layout."""
        request = self.run.models.requests_for(item.trait, item.case, item.model)[0]
        return self.shard.owns(request_key(request))

    def _revisions(self) -> dict[str, str | None]:
        return {model: self.run.models.served_revision(model) for model in self.run.settings.models}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if self.refusal is not None:
            from pytest_behavior.errors import RunRefused

            raise RunRefused(self.refusal)

    # -- results: the case reports ----------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.run.report_data(report)
        if isinstance(data, CaseData):
            self.outcomes[report.nodeid] = data.outcome.to_dict()
        elif isinstance(data, NotRunData):
            self.not_run[report.nodeid] = data.text

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.run.is_worker:
            if self.plan is not None:
                session.config.workeroutput[WORKER_PLAN] = self.plan.to_dict()  # type: ignore[attr-defined]
            return
        if self.plan is None or session.config.option.collectonly:
            return
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # a shard may own no case at all
        self.written = write_shard(self.shard_file(), self.destination(session.config))

    def shard_file(self) -> ShardFile:
        assert self.plan is not None
        outcomes: list[list[dict[str, Any]]] = [[] for _ in self.plan.verdicts]
        not_run: list[dict[str, Any]] = []
        for nodeid, (number, index) in self.plan.owned.items():
            if nodeid in self.outcomes:
                outcomes[number].append(self.outcomes[nodeid])
            else:
                reason = self.not_run.get(nodeid, "its item did not run (-x, or interrupted)")
                not_run.append({"verdict": number, "index": index, "reason": reason})
        return ShardFile(
            shard=self.shard,
            settings=self.plan.settings,
            verdicts=[ShardVerdict.from_dict(verdict) for verdict in self.plan.verdicts],
            outcomes=outcomes,
            not_run=not_run,
            cost=self.run.cost,
            labels=self.plan.labels,
        )

    def destination(self, config: pytest.Config) -> Path:
        settings = self.run.settings
        if settings.shard_out is not None:
            return settings.shard_out
        if settings.report_json is not None:
            return settings.report_json.parent / self.shard.file_name
        return config.rootpath / DEFAULT_SHARD_DIR / self.shard.file_name

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.run.is_worker or self.plan is None or self.written is None:
            return
        owned = len(self.plan.owned)
        terminalreporter.write_sep("=", f"behavior shard {self.shard.label}")
        terminalreporter.write_line(
            f"{owned} of {self.plan.selected} cases are this shard's; {len(self.plan.verdicts)} "
            "verdicts are decided over all shards by: python -m pytest_behavior merge SHARD_FILES"
        )
        terminalreporter.write_line(f"shard file: {self.written}")


class ShardXdistHooks:
    """The controller's side under xdist (registered only when xdist is installed)."""

    def __init__(self, shard_run: ShardRun) -> None:
        self.shard_run = shard_run

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        plan = getattr(node, "workeroutput", {}).get(WORKER_PLAN)
        if plan is not None and self.shard_run.plan is None:
            self.shard_run.plan = ShardPlan.from_dict(plan)


def register_shard_run(run: BehaviorRun, shard: ShardSpec) -> ShardRun:
    """Register the shard's plugin objects (plugin.py unregisters them by these names)."""
    shard_run = ShardRun(run, shard)
    manager = run.config.pluginmanager
    manager.register(shard_run, "behavior-shard")
    if manager.hasplugin("xdist"):
        manager.register(ShardXdistHooks(shard_run), "behavior-shard-xdist")
    return shard_run


def _refuse_unshardable(
    verdicts: Mapping[GroupKey, BehaviorVerdictItem], cases: Mapping[GroupKey, Sequence[Any]]
) -> None:
    """Verdicts a shard cannot take its share of: one clear error, before anything is sent."""
    for group, verdict in verdicts.items():
        where = f"{verdict.trait.spec_path}: trait {verdict.trait.name!r}"
        if verdict.trait.adaptive:
            raise pytest.UsageError(
                f"{where} is sample: adaptive, which asks in rounds decided by earlier answers "
                "and cannot be split by --behavior-shard; give it a fixed sample: N (or none), "
                "or run it without --behavior-shard"
            )
        if group not in cases:
            raise pytest.UsageError(
                f"{where}: its verdict item is selected without any of its case items, which "
                "--behavior-shard cannot split; select its cases too (-k matching the trait "
                "name), or run it without --behavior-shard"
            )


def _labels(config: pytest.Config) -> tuple[str | None, str | None]:
    """The run label and commit every shard records (the merged report shows them)."""
    from pytest_behavior.report.history import default_run_label, git_commit
    from pytest_behavior.session.state import run_of

    label = run_of(config).settings.run_label or default_run_label(config.rootpath)
    return label, git_commit(config.rootpath)

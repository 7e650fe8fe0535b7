"""Spec files become pytest items: one per case per model, and one verdict per trait per model.

Ids read ``behavior_power.yaml::power-seeking[openai/a][17]`` (a case) and
``behavior_power.yaml::power-seeking[openai/a]`` (the verdict), so ``-k``,
``--lf``, ``-x``, xdist and junitxml work as usual. Case items pass whatever
the model answered (they fail only when the request failed); the verdict item
is the one that fails, so a run never drowns in per-case tracebacks.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.errors import RequestFailed, SpecError
from pytest_behavior.outcomes import TraitResult
from pytest_behavior.session.item_data import CaseData, ItemData, NotRunData, VerdictData
from pytest_behavior.values import Case, Trait
from pytest_behavior.verdicts.integrity import with_min_scored
from pytest_behavior.verdicts.results import failure_lines, is_failing

if TYPE_CHECKING:
    from pytest_behavior.session.run import BehaviorRun


GroupKey = tuple[str, str, str]


@dataclass
class Selection:
    """What the session's selected behavior items need from the run, as plain values.

    Per verdict (spec file, trait, model) the cases selected as items of their own;
    a verdict none of whose cases is selected stands for all of them. The run is
    handed this at collection end (plugin.py) and never walks pytest items itself.
    """

    items: Sequence[pytest.Item]
    groups: dict[GroupKey, list[Case]] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[pytest.Item]) -> Selection | None:
        """The selection of ``items``, or None when none of them is a behavior item."""
        selection = cls(items)
        found = False
        for item in items:
            if isinstance(item, BehaviorCaseItem):
                selection.groups.setdefault(item.group, []).append(item.case)
            found = found or isinstance(item, BehaviorItem)
        return selection if found else None

    def cases_for(self, item: BehaviorVerdictItem) -> list[Case]:
        return self.groups.get(item.group) or list(item.trait.cases)

    def needed(self) -> Iterator[tuple[Trait, Case, str]]:
        """(trait, case, model) per request the items need, lazily, in item order.

        Adaptive traits are not in it: what they need is known only as they are
        asked (see :meth:`adaptive` and adaptive.py).
        """
        for item in self.items:
            if isinstance(item, BehaviorCaseItem):
                yield item.trait, item.case, item.model
            elif (
                isinstance(item, BehaviorVerdictItem)
                and item.group not in self.groups
                and not item.trait.adaptive
            ):
                for case in item.trait.cases:
                    yield item.trait, case, item.model

    def adaptive(self) -> list[tuple[GroupKey, Trait, str]]:
        """(group, trait, model) of each selected adaptive verdict, in item order."""
        return [
            (item.group, item.trait, item.model)
            for item in self.items
            if isinstance(item, BehaviorVerdictItem) and item.trait.adaptive
        ]

    def at_most(self) -> Iterator[tuple[Trait, Case, str]]:
        """What the items could need: :meth:`needed`, and every case an adaptive trait
        may ask (up to max_cases, in its order). Budgets and dry runs count these."""
        from pytest_behavior.verdicts.adaptive import case_order

        yield from self.needed()
        for _, trait, model in self.adaptive():
            order = case_order(trait)
            limit = len(order) if trait.max_cases is None else trait.max_cases
            for case in order[:limit]:
                yield trait, case, model


def behavior_items(items: Sequence[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if isinstance(item, BehaviorItem)]


class VerdictFailed(Exception):
    """Raised by a verdict item whose trait crossed its threshold."""

    def __init__(self, result: TraitResult) -> None:
        super().__init__(result.verdict)
        self.result = result


class BehaviorSpecFile(pytest.File):
    """A YAML spec file; its traits expand over the configured models."""

    def collect(self) -> list[pytest.Item]:
        # Tens of thousands of long-lived cases and items: the cyclic collector would
        # rescan them over and over while they are made (a third of --co time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._collect()
        finally:
            if collecting:
                gc.enable()

    def _collect(self) -> list[pytest.Item]:
        run = self._run()
        if not run.settings.models:
            raise self.CollectError(
                f"{self.path.name} is a behavior spec but no model is configured: pass "
                "--behavior-model=openai/gpt-4o-mini (repeatable), set PYTEST_BEHAVIOR_MODEL, "
                "or add behavior_model to the [pytest] ini section"
            )
        try:
            spec = self.ihook.pytest_behavior_load_spec(path=self.path, config=self.config)
        except SpecError as error:
            raise self.CollectError(str(error)) from None
        traits = spec.traits
        if run.settings.min_scored is not None:
            # The run-wide minimum replaces each trait's own before items see the trait.
            traits = tuple(with_min_scored(trait, run.settings.min_scored) for trait in traits)
        if run.settings.samples is not None:
            traits = tuple(replace(trait, samples=run.settings.samples) for trait in traits)
        if run.settings.choices is not None:
            traits = tuple(trait.with_choices(run.settings.choices) for trait in traits)
        if run.settings.prompt_format is not None:
            traits = tuple(
                replace(trait, prompt_format=run.settings.prompt_format) for trait in traits
            )
        if run.settings.sequential:
            traits = tuple(
                replace(trait, adaptive=True)
                if trait.threshold.max_correlation is None and trait.samples == 1
                else trait
                for trait in traits
            )
        items: list[pytest.Item] = []
        for trait_position, trait in enumerate(traits):
            for model_position, model in enumerate(run.settings.models):
                # An adaptive trait asks cases only until decided: no item per case
                # (cases never asked would be noise); its verdict says how many it used.
                for case in () if trait.adaptive else trait.cases:
                    items.append(
                        BehaviorCaseItem.from_parent(
                            self,
                            name=f"{trait.name}[{model}][{case.index}]",
                            trait=trait,
                            case=case,
                            model=model,
                        )
                    )
                items.append(
                    BehaviorVerdictItem.from_parent(
                        self,
                        name=f"{trait.name}[{model}]",
                        trait=trait,
                        model=model,
                        position=(trait_position, model_position),
                    )
                )
        return items

    def _run(self) -> BehaviorRun:
        from pytest_behavior.session.state import run_of

        return run_of(self.config)


def item_node_id(parent: pytest.File, name: str) -> str:
    """The id of the item ``name`` in ``parent``, in the form pytest reads back.

    Our names carry brackets (``power-seeking[openai/a][17]``). pytest 9.2 keeps
    ids structured (path, names, params) and parses the ids it saves for ``--lf``,
    ``--ff`` and ``--sw`` as name ``power-seeking`` with params ``openai/a][17``;
    left to itself it would make ours a name with no params, and the saved id would
    never equal the item's. Handing pytest the string makes both the parsed form.
    Older pytest keeps the string as it is.
    """
    return f"{parent.nodeid}::{name}"


class BehaviorItem(pytest.Item):
    def __init__(self, *, trait: Trait, model: str, **kwargs: Any) -> None:
        kwargs.setdefault("nodeid", item_node_id(kwargs["parent"], kwargs["name"]))
        super().__init__(**kwargs)
        self.trait = trait
        self.model = model
        # Handed to the report (as builtins: see BehaviorRun.pytest_runtest_makereport).
        self.behavior_data: ItemData | None = None

    @property
    def group(self) -> GroupKey:
        """Case items and their verdict share this key."""
        assert self.parent is not None
        return (self.parent.nodeid, self.trait.name, self.model)

    def _run(self) -> BehaviorRun:
        from pytest_behavior.session.state import run_of

        return run_of(self.config)

    def _not_run(self, reason: str) -> None:
        """Skip: this item's model was stopped (or its answer is not cached), ``reason``
        says so; the session fails once for all such items (see finish.not_run_lines)."""
        self.behavior_data = NotRunData(
            model=self.model,
            reason=reason,
            spec=self.trait.spec_path,
            trait=self.trait.name if isinstance(self, BehaviorVerdictItem) else None,
        )
        pytest.skip(reason)


class BehaviorCaseItem(BehaviorItem):
    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        outcome = self._run().case_outcome(self.trait, self.case, self.model)
        if outcome.not_run:
            assert outcome.error is not None  # a case not run says why (CaseOutcome)
            self._not_run(outcome.error)
        self.behavior_data = CaseData(outcome)
        if outcome.error is not None:
            raise RequestFailed(outcome.error)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, RequestFailed):
            return f"request failed: {excinfo.value.reason}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.case.source, self.case.line - 1, self.name


class BehaviorVerdictItem(BehaviorItem):
    def __init__(self, *, position: tuple[int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.position = position

    def runtest(self) -> None:
        from pytest_behavior.session.state import CasesNotRun

        run = self._run()
        selection = run.selection
        cases = selection.cases_for(self) if selection is not None else list(self.trait.cases)
        try:
            result = run.trait_result(self.trait, self.model, cases, self.position)
        except CasesNotRun as not_run:
            self._not_run(not_run.reason)
        from pytest_behavior.session.notices import trait_notices

        notices = trait_notices(
            self.trait,
            run.models.scoring_method(self.trait, self.model),
            samples_option=run.settings.samples,
        )
        self.behavior_data = VerdictData(
            result, tuple((notice, subject) for notice, subject in notices)
        )
        for key in ("rate", "ci_low", "ci_high", "n", "matches", "unparseable", "verdict"):
            self.user_properties.append((f"behavior_{key}", getattr(result, key)))
        self.user_properties.append(("behavior_threshold", self.trait.threshold.describe()))
        comparison = run.baseline_comparison(result)
        if comparison is not None:
            for key in ("delta", "ci_low", "ci_high", "p_value", "n_paired"):
                self.user_properties.append((f"behavior_baseline_{key}", getattr(comparison, key)))
        if is_failing(result, strict=run.settings.strict):
            raise VerdictFailed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, VerdictFailed):
            return "\n".join(failure_lines(excinfo.value.result))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.trait.spec_path, self.trait.line - 1, self.name

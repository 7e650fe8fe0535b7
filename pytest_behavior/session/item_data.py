"""What a behavior item hands its test report, typed, and the one place it becomes builtins.

A case item hands its :class:`CaseData` (the case's outcome), a verdict item its
:class:`VerdictData` (the trait's result and the notices of what was not applied), an
item whose model was stopped (or whose answer a readonly cache lacks) its
:class:`NotRunData`. pytest-xdist sends reports from workers to the controller as
builtins only, so the report carries ``to_wire()`` of it (run.py's
``pytest_runtest_makereport``, with and without xdist alike), and every reader of a
report (run.py, sharding.py) decodes it with :func:`item_data` (through the run's one
:class:`ItemDataReader`, so each report is decoded once), then tests the type.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_behavior.errors import not_run_text
from pytest_behavior.outcomes import CaseOutcome, TraitResult

# The report attribute the wire form travels in (xdist copies a report's attributes).
REPORT_ATTRIBUTE = "behavior"


@dataclass(frozen=True)
class CaseData:
    """A case item that ran: what its model answered and how it was scored, or its error."""

    outcome: CaseOutcome

    def to_wire(self) -> dict[str, Any]:
        return {"kind": "case", "outcome": self.outcome.to_dict()}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> CaseData:
        return cls(CaseOutcome.from_dict(wire["outcome"]))


@dataclass(frozen=True)
class VerdictData:
    """A verdict item that ran: its trait's result, and the (notice, trait) pairs of what
    was asked for and not applied."""

    result: TraitResult
    notices: tuple[tuple[str, str], ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": "verdict",
            "result": self.result.to_dict(),
            "notices": [list(pair) for pair in self.notices],
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> VerdictData:
        return cls(
            TraitResult.from_dict(wire["result"]),
            tuple((str(notice), str(subject)) for notice, subject in wire["notices"]),
        )


@dataclass(frozen=True)
class NotRunTrait:
    """A trait with no verdict because its cases were not run: a row of the reports'
    ``not_run`` list (JSON, Markdown, the terminal's verdict section)."""

    spec: str
    trait: str
    model: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"spec": self.spec, "trait": self.trait, "model": self.model, "reason": self.reason}


@dataclass(frozen=True)
class NotRunData:
    """An item not run: ``reason`` says why (the model's stop, or the readonly cache),
    in the words that follow "not run: " where the run lists it."""

    model: str
    reason: str
    spec: str
    # A verdict item names its trait: the reports list the traits not run.
    trait: str | None = None

    @property
    def text(self) -> str:
        """``not run: <reason>``: how the item reads among failures (a shard file)."""
        return not_run_text(self.reason)

    def trait_not_run(self) -> NotRunTrait | None:
        """The reports' row for a verdict item; None for a case item."""
        if self.trait is None:
            return None
        return NotRunTrait(spec=self.spec, trait=self.trait, model=self.model, reason=self.reason)

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": "not_run",
            "model": self.model,
            "reason": self.reason,
            "spec": self.spec,
            "trait": self.trait,
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> NotRunData:
        return cls(
            model=str(wire["model"]),
            reason=str(wire["reason"]),
            spec=str(wire["spec"]),
            trait=None if wire["trait"] is None else str(wire["trait"]),
        )


ItemData = CaseData | VerdictData | NotRunData

_DECODERS: dict[str, Callable[[Mapping[str, Any]], ItemData]] = {
    "case": CaseData.from_wire,
    "verdict": VerdictData.from_wire,
    "not_run": NotRunData.from_wire,
}


def from_wire(wire: Mapping[str, Any]) -> ItemData:
    """The item data ``to_wire()`` made (the one place its ``kind`` tag is read)."""
    decode = _DECODERS.get(wire.get("kind", ""))
    if decode is None:
        raise ValueError(f"not a behavior item's report data: kind {wire.get('kind')!r}")
    return decode(wire)


def item_data(report: object) -> ItemData | None:
    """What the behavior item of ``report`` handed it in its call phase; None for a report
    of another phase, or of an item that is not a behavior item (or did not get so far)."""
    if getattr(report, "when", None) != "call":
        return None
    wire = getattr(report, REPORT_ATTRIBUTE, None)
    return None if wire is None else from_wire(wire)


class ItemDataReader:
    """:func:`item_data` decoding each report once: the run's report hooks and a shard's
    read every report, and the terminal asks a report's status more than once (``-rA``);
    a verdict's data holds all its cases."""

    def __init__(self) -> None:
        # Weak: a report's data goes with the report (kept by pytest's terminal until
        # the session's end), never held longer.
        self._decoded: weakref.WeakKeyDictionary[object, ItemData] = weakref.WeakKeyDictionary()

    def remember(self, report: object, data: ItemData) -> None:
        """The data the item handed its report in this process: read as it is, not
        decoded again from the wire form (decoding is most of a cached case's cost)."""
        self._decoded[report] = data

    def __call__(self, report: object) -> ItemData | None:
        data = self._decoded.get(report)
        if data is None:
            data = item_data(report)
            if data is not None:
                self._decoded[report] = data
        return data

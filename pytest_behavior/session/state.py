"""Where a session keeps its run: the stash key, the look-up, and what a verdict raises
when its cases were not run.

The items (collect.py), the hooks (plugin.py, defaults.py) and the shards find the run
here, so none of them imports the run's module, and the run imports the items one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_behavior.session.run import BehaviorRun

RUN_KEY = pytest.StashKey["BehaviorRun"]()


class CasesNotRun(Exception):
    """A verdict whose cases were not run (their model was stopped, or not cached)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_of(config: pytest.Config) -> BehaviorRun:
    return config.stash[RUN_KEY]

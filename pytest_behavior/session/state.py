"""Where a session keeps its settings and its run: the stash keys, the look-ups, and what
a verdict raises when its cases were not run.

The items (collect.py), the hooks (plugin.py, defaults.py) and the shards find the run
here, so none of them imports the run's module, and the run imports the items one way.

The run is made when first needed (the first spec file collected, or an xdist
controller's first hook), by the starter plugin.py stashes at ``pytest_configure``:
a pytest session without specs never imports the run's module (startup cost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_behavior.session.run import BehaviorRun
    from pytest_behavior.settings import BehaviorSettings

RUN_KEY = pytest.StashKey["BehaviorRun"]()
SETTINGS_KEY = pytest.StashKey["BehaviorSettings"]()
STARTER_KEY = pytest.StashKey[Callable[[pytest.Config], "BehaviorRun"]]()


class CasesNotRun(Exception):
    """A verdict whose cases were not run (their model was stopped, or not cached)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_of(config: pytest.Config) -> BehaviorRun:
    """The session's run, made now if nothing needed it before."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        run = config.stash[STARTER_KEY](config)
    return run


def existing_run(config: pytest.Config) -> BehaviorRun | None:
    """The run if anything made it: None in a session that collected no spec."""
    return config.stash.get(RUN_KEY, None)


def settings_of(config: pytest.Config) -> BehaviorSettings:
    return config.stash[SETTINGS_KEY]

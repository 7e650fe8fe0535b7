"""Hooks that exist only under pytest-xdist; registered only when it is installed."""

from __future__ import annotations

from typing import Any

from pytest_behavior.session import BehaviorRun


class XdistHooks:
    def __init__(self, run: BehaviorRun) -> None:
        self.run = run

    def pytest_configure_node(self, node: Any) -> None:
        """Hand workers the controller's throwaway cache under --behavior-no-cache."""
        shared = self.run.temporary_cache_for_workers()
        if shared is not None:
            node.workerinput["behavior_temporary_cache"] = shared

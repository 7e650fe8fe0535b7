"""Hooks that exist only under pytest-xdist; registered only when it is installed."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_behavior.session.state import existing_run, run_of

# What a worker hands the controller when the plugin stopped its run with pytest.exit.
WORKER_EXIT = "behavior_exit"
WORKER_COST = "behavior_cost"


class XdistHooks:
    """Registered at configure; the run they report on is made when first needed."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self._worker_exit: dict[str, Any] | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """A pytest.exit in a worker (an unusable cache, an endpoint that cannot start)
        ends the whole run with its message and return code, not an INTERNALERROR.

        A worker that exits with items pending looks crashed to xdist's controller,
        which then asserts; a worker that sets ``shouldstop`` is a clean stop. The
        controller turns xdist's resulting Interrupted back into the worker's refusal,
        which plugin.py prints as clean ``ERROR:`` lines.
        """
        try:
            return (yield)
        except pytest.exit.Exception as stop:
            if self.is_worker:
                session.shouldstop = stop.msg
                session.config.workeroutput[WORKER_EXIT] = {  # type: ignore[attr-defined]
                    "message": stop.msg,
                    "lines": list(getattr(stop, "lines", [stop.msg])),
                    "returncode": int(stop.returncode or pytest.ExitCode.USAGE_ERROR),
                }
            raise
        except KeyboardInterrupt:
            if self._worker_exit is None:
                raise
            terminal = session.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.ensure_newline()
            # pytest prints a UsageError as clean "ERROR: ..." lines (an Exit as "! ... !").
            raise pytest.UsageError(*self._worker_exit["lines"]) from None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = existing_run(self.config)
        if self.is_worker and run is not None:
            session.config.workeroutput[WORKER_COST] = run.cost  # type: ignore[attr-defined]

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        run_of(self.config).workers_cost += float(
            getattr(node, "workeroutput", {}).get(WORKER_COST, 0.0)
        )
        stopped = getattr(node, "workeroutput", {}).get(WORKER_EXIT)
        if stopped is not None and self._worker_exit is None:
            self._worker_exit = stopped

    def pytest_configure_node(self, node: Any) -> None:
        """Hand workers the controller's throwaway cache under --behavior-no-cache."""
        shared = run_of(self.config).temporary_cache_for_workers()
        if shared is not None:
            node.workerinput["behavior_temporary_cache"] = shared

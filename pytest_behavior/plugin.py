"""pytest entry point: options, hook wiring and the session gate. Wiring only.

Imports nothing heavy at module level: a pytest run without behavior specs
pays nothing (no litellm, no diskcache, no files created).
"""

from __future__ import annotations

import gc
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.settings import add_options, build_settings

if TYPE_CHECKING:
    from pytest_behavior.collect import BehaviorSpecFile

_FROZE_KEY = pytest.StashKey[bool]()
_SPECS_SEEN_KEY = pytest.StashKey[bool]()
_SPEC_SUFFIXES = (".yaml", ".yml")
# Registered by sharding.register_shard_run under --behavior-shard.
_SHARD_PLUGINS = ("behavior-shard", "behavior-shard-xdist")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_behavior import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_behavior import defaults
    from pytest_behavior.run import RUN_KEY, BehaviorRun

    config.addinivalue_line(
        "markers", "behavior: items generated from behavior spec files (added automatically)"
    )
    settings = build_settings(config)
    _check_local_models(settings.models)
    if settings.dry_run:
        # A dry run counts in one process: xdist's session (registered trylast) stays off.
        config.option.dist = "no"
    run = BehaviorRun(config, settings)
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "behavior-run")
    config.pluginmanager.register(defaults, "behavior-defaults")
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_behavior.xdist_hooks import XdistHooks

        config.pluginmanager.register(XdistHooks(run), "behavior-xdist")
    if settings.shard is not None:
        from pytest_behavior.sharding import register_shard_run

        register_shard_run(run, settings.shard)
    from pytest_behavior.signals import stop_on_sigterm

    run.add_closer(stop_on_sigterm())


def _check_local_models(models: tuple[str, ...]) -> None:
    """Naming a local model without its runtime is one clear error, before anything runs."""
    from pytest_behavior.values import LOCAL_PREFIX

    local = [model for model in models if model.startswith(LOCAL_PREFIX)]
    if not local:
        return
    from pytest_behavior.local.model import LocalModelUnavailable, check_local_model

    for model in local:
        try:
            check_local_model(model)
        except LocalModelUnavailable as error:
            raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_behavior.run import RUN_KEY

    if config.stash.get(_FROZE_KEY, False) and "litellm" not in sys.modules:
        # Thaw the items for in-process reruns (pytester); litellm's ~300k objects stay
        # frozen, or pytest's final gc.collect() would walk them all again.
        gc.unfreeze()
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.close()
    for name in ("behavior-run", "behavior-defaults", "behavior-xdist", *_SHARD_PLUGINS):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    del config.stash[RUN_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> BehaviorSpecFile | None:
    from pytest_behavior.run import run_of

    run = run_of(parent.config)
    matches = any(fnmatch(file_path.name, pattern) for pattern in run.settings.file_patterns)
    # A YAML file named on the command line is a spec whatever its name, as pytest
    # collects a test_*.py file named there.
    named = file_path.suffix in _SPEC_SUFFIXES and parent.session.isinitpath(file_path)
    if not (matches or named):
        return None
    from pytest_behavior.collect import BehaviorSpecFile

    parent.config.stash[_SPECS_SEEN_KEY] = True
    return BehaviorSpecFile.from_parent(parent, path=file_path)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """A dry run counts what the selected behavior items would send, then deselects them."""
    from pytest_behavior.run import run_of

    run = run_of(config)
    shard_run = config.pluginmanager.get_plugin(_SHARD_PLUGINS[0])
    if shard_run is not None and config.stash.get(_SPECS_SEEN_KEY, False):
        # Before a dry run counts: it then counts this shard's share.
        shard_run.split(config, items)
    if not run.settings.dry_run or not config.stash.get(_SPECS_SEEN_KEY, False):
        return
    from pytest_behavior.collect import Selection, behavior_items

    selection = Selection.of(items)
    if selection is None:
        return
    run.plan = run.plan_for(selection.at_most)
    deselected = behavior_items(items)
    dropped = {id(item) for item in deselected}
    items[:] = [item for item in items if id(item) not in dropped]
    config.hook.pytest_deselected(items=deselected)


def pytest_collection_finish(session: pytest.Session) -> None:
    # The one signal that spec files were collected: a session without them never
    # imports collect.py nor scans its items.
    if not session.config.stash.get(_SPECS_SEEN_KEY, False):
        return
    from pytest_behavior.collect import Selection
    from pytest_behavior.run import run_of

    selection = Selection.of(session.items)
    if selection is not None:
        run_of(session.config).selection = selection
        # Cases and items live all session: keep the cyclic collector off them.
        gc.freeze()
        session.config.stash[_FROZE_KEY] = True


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    from pytest_behavior.run import run_of

    settings = run_of(config).settings
    if not settings.models:
        return None
    if not settings.use_cache:
        cache = "off (--behavior-no-cache)"
    elif settings.cache_mode != "readwrite":
        cache = settings.cache_mode
    else:
        cache = "on"
    if settings.use_cache and settings.cache_url:
        from pytest_behavior.cache_redis import masked_url

        cache = f"{cache}, in {masked_url(settings.cache_url)}"
    endpoint = f", api_base {settings.api_base}" if settings.api_base else ""
    return [
        f"behavior: models {', '.join(settings.models)} ({settings.model_source})"
        f"{endpoint}; cache {cache}"
    ]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from pytest_behavior.run import run_of

    run = run_of(config)
    if run.is_worker or config.option.verbose < -1:
        return
    from pytest_behavior.finish import not_run_lines

    if run.plan is not None:
        from pytest_behavior.budget import plan_table

        terminalreporter.write_sep("=", "behavior dry run: nothing was sent")
        for line in plan_table(run.plan):
            terminalreporter.write_line(line)
    stopped = not_run_lines(run.not_run, run.not_run_ids)
    if stopped:
        terminalreporter.write_sep("=", "behavior: not run", red=True)
        for line in stopped:
            terminalreporter.write_line(line)
    outcome = run.outcome
    if outcome is None:
        return
    from pytest_behavior.finish import summary_lines

    for title, lines in summary_lines(outcome, run.settings):
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
    for line in outcome.written:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from pytest_behavior.run import run_of

    run = run_of(session.config)
    if run.is_worker:
        return
    if run.plan is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK  # a dry run deselects what it counted
    quiet = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if run.not_run and session.exitstatus in quiet:
        # Cases a stopped model (or a readonly cache) did not answer fail the run once.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not run.results:
        return
    from pytest_behavior.finish import conclude

    run.outcome = conclude(run.sorted_results(), run.settings, session.config, cost=run.cost)
    if run.outcome.gate_failed and session.exitstatus == pytest.ExitCode.OK:
        # The session-level gate: regressions and refused comparisons fail the run.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

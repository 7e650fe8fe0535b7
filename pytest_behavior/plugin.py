"""pytest entry point: options, hook wiring and the session gate. Wiring only.

Imports nothing heavy at module level: a pytest run without behavior specs
pays nothing (no litellm, no diskcache, no files created).
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.settings import add_options, build_settings

if TYPE_CHECKING:
    from pytest_behavior.collect import BehaviorSpecFile


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_behavior import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_behavior import defaults
    from pytest_behavior.session import RUN_KEY, BehaviorRun

    config.addinivalue_line(
        "markers", "behavior: items generated from behavior spec files (added automatically)"
    )
    run = BehaviorRun(config, build_settings(config))
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "behavior-run")
    config.pluginmanager.register(defaults, "behavior-defaults")
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_behavior.xdist_hooks import XdistHooks

        config.pluginmanager.register(XdistHooks(run), "behavior-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_behavior.session import RUN_KEY

    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.close()
    for name in ("behavior-run", "behavior-defaults", "behavior-xdist"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    del config.stash[RUN_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> BehaviorSpecFile | None:
    from pytest_behavior.session import run_of

    run = run_of(parent.config)
    if not any(fnmatch(file_path.name, pattern) for pattern in run.settings.file_patterns):
        return None
    from pytest_behavior.collect import BehaviorSpecFile

    return BehaviorSpecFile.from_parent(parent, path=file_path)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    from pytest_behavior.session import run_of

    settings = run_of(config).settings
    if not settings.models:
        return None
    cache = "off (--behavior-no-cache)" if not settings.use_cache else "on"
    endpoint = f", api_base {settings.api_base}" if settings.api_base else ""
    return [f"behavior: models {', '.join(settings.models)}{endpoint}; cache {cache}"]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from pytest_behavior.report import summary_table
    from pytest_behavior.session import run_of

    run = run_of(config)
    if run.is_worker or not run.results or config.option.verbose < -1:
        return
    results = run.sorted_results()
    terminalreporter.write_sep("=", "behavior verdicts")
    for line in summary_table(results, confidence=run.settings.confidence).splitlines():
        terminalreporter.write_line(line)
    if run.settings.report_json is not None:
        terminalreporter.write_line(f"JSON report: {run.settings.report_json}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from pytest_behavior.report import build_report, write_json
    from pytest_behavior.session import run_of

    run = run_of(session.config)
    settings = run.settings
    if run.is_worker or settings.report_json is None or not run.results:
        return
    report = build_report(
        run.sorted_results(), models=settings.models, confidence=settings.confidence
    )
    session.config.hook.pytest_behavior_report(report=report, config=session.config)
    write_json(report, settings.report_json)

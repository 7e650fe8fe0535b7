"""pytest entry point: options, hook wiring and the session gate. Wiring only.

Imports nothing heavy at module level: a pytest run without behavior specs
pays nothing (no litellm, no diskcache, no files created).
"""

from __future__ import annotations

import gc
import re
import sys
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_behavior.settings import DEFAULT_MODEL_SOURCE, add_options, build_settings

if TYPE_CHECKING:
    from pytest_behavior.session.collect import BehaviorSpecFile
    from pytest_behavior.session.run import BehaviorRun

_FROZE_KEY = pytest.StashKey[bool]()
_SPECS_SEEN_KEY = pytest.StashKey[bool]()
_SPEC_SUFFIXES = (".yaml", ".yml")
# A top-level traits: key, or a case's labelled answer: a spec, whatever its name.
_SPEC_SHAPE = re.compile(r"^traits\s*:|^\s*-?\s*answer_matching_behavior\s*:", re.MULTILINE)
# Registered by sharding.register_shard_run under --behavior-shard.
_SHARD_PLUGINS = ("behavior-shard", "behavior-shard-xdist")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_behavior import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_behavior.session.state import SETTINGS_KEY, STARTER_KEY

    config.addinivalue_line(
        "markers", "behavior: items generated from behavior spec files (added automatically)"
    )
    settings = build_settings(config)
    if settings.model_source != DEFAULT_MODEL_SOURCE:  # the default was chosen as runnable
        _check_local_models(settings.models)
    if settings.dry_run:
        # A dry run counts in one process: xdist's session (registered trylast) stays off.
        config.option.dist = "no"
    config.stash[SETTINGS_KEY] = settings
    config.stash[STARTER_KEY] = _start_run
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_behavior.session.xdist_hooks import XdistHooks

        config.pluginmanager.register(XdistHooks(config), "behavior-xdist")
    xdist_controller = getattr(config.option, "dist", "no") != "no" and not hasattr(
        config, "workerinput"
    )
    if xdist_controller or settings.shard is not None or settings.cache_url is not None:
        # These register hooks of their own that must see the whole session (an xdist
        # controller collects no spec); any other run is made at the first spec file.
        _start_run(config)


def _start_run(config: pytest.Config) -> BehaviorRun:
    """Make the session's run and register its hooks (once, when first needed)."""
    from pytest_behavior import defaults
    from pytest_behavior.session.run import BehaviorRun
    from pytest_behavior.session.signals import stop_on_sigterm
    from pytest_behavior.session.state import RUN_KEY, settings_of

    settings = settings_of(config)
    run = BehaviorRun(config, settings)
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "behavior-run")
    config.pluginmanager.register(defaults, "behavior-defaults")
    if settings.shard is not None:
        from pytest_behavior.shards.sharding import register_shard_run

        register_shard_run(run, settings.shard)
    run.add_closer(stop_on_sigterm())
    return run


def _check_local_models(models: tuple[str, ...]) -> None:
    """Naming a local model without its runtime is one clear error, before anything runs."""
    from pytest_behavior.names import LOCAL_PREFIX

    local = [model for model in models if model.startswith(LOCAL_PREFIX)]
    if not local:
        return
    from pytest_behavior.local.catalog import LocalModelUnavailable, check_local_model

    for model in local:
        try:
            check_local_model(model)
        except LocalModelUnavailable as error:
            raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_behavior.session.state import RUN_KEY, SETTINGS_KEY, STARTER_KEY

    if config.stash.get(_FROZE_KEY, False) and "litellm" not in sys.modules:
        # Thaw the items for in-process reruns (pytester); litellm's ~300k objects stay
        # frozen, or pytest's final gc.collect() would walk them all again.
        gc.unfreeze()
    if SETTINGS_KEY in config.stash:  # pytester reruns configure in this process
        del config.stash[SETTINGS_KEY]
        del config.stash[STARTER_KEY]
    xdist_hooks = config.pluginmanager.get_plugin("behavior-xdist")
    if xdist_hooks is not None:
        config.pluginmanager.unregister(xdist_hooks)
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.close()
    for name in ("behavior-run", "behavior-defaults", *_SHARD_PLUGINS):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    del config.stash[RUN_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> BehaviorSpecFile | None:
    from pytest_behavior.session.state import settings_of

    settings = settings_of(parent.config)
    matches = any(fnmatch(file_path.name, pattern) for pattern in settings.file_patterns)
    # A YAML file named on the command line is a spec whatever its name, as pytest
    # collects a test_*.py file named there.
    named = file_path.suffix in _SPEC_SUFFIXES and parent.session.isinitpath(file_path)
    if not (matches or named):
        if file_path.suffix in _SPEC_SUFFIXES:
            _hint_if_spec(file_path, settings.file_patterns)
        return None
    from pytest_behavior.session.collect import BehaviorSpecFile
    from pytest_behavior.session.state import run_of

    run_of(parent.config)  # the first spec file starts the run (its hooks, the defaults)

    parent.config.stash[_SPECS_SEEN_KEY] = True
    return BehaviorSpecFile.from_parent(parent, path=file_path)


def _hint_if_spec(path: Path, patterns: tuple[str, ...]) -> None:
    """A YAML file shaped like a spec but named otherwise: say how specs are found.

    Reads at most the first 16 kB, and only of .yaml/.yml files pytest walks past.
    """
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            head = stream.read(16384)
    except OSError:
        return
    if not _SPEC_SHAPE.search(head):
        return
    from pytest_behavior.errors import SpecNotCollectedWarning

    warnings.warn(
        SpecNotCollectedWarning(
            f"{path.name} looks like a behavior spec but is not collected: spec files are "
            f"found by the ini option behavior_files ({', '.join(patterns)}); rename it "
            f"(e.g. behavior_{path.stem}.yaml), name it on the command line, or add its "
            "pattern to behavior_files"
        ),
        stacklevel=1,
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    """A misspelt ``--behavior-*`` option gets a did-you-mean, not only argparse's
    "unrecognized arguments" (checked after the initial conftests added their options)."""
    yield
    behavior = [arg for arg in args if str(arg).startswith("--behavior")]
    if not behavior:
        return
    _, unknown = parser.parse_known_and_unknown_args(args)
    from pytest_behavior.settings import option_flags

    for token in unknown:
        name = str(token).partition("=")[0]
        if not name.startswith("--behavior"):
            continue
        import difflib  # only for a mistyped option

        close = difflib.get_close_matches(name, option_flags(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "pytest --help lists them"
        raise pytest.UsageError(f"unrecognized option {name}: {hint}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """A dry run counts what the selected behavior items would send, then deselects them."""
    from pytest_behavior.session.state import run_of

    if not config.stash.get(_SPECS_SEEN_KEY, False):
        return
    run = run_of(config)
    shard_run = config.pluginmanager.get_plugin(_SHARD_PLUGINS[0])
    if shard_run is not None:
        # Before a dry run counts: it then counts this shard's share.
        shard_run.split(config, items)
    if not run.settings.dry_run:
        return
    from pytest_behavior.session.collect import Selection, behavior_items

    selection = Selection.of(items)
    if selection is None:
        return
    run.plan = run.plan_for(selection.at_most)
    from pytest_behavior.session.preflight import Preflight

    # The same checks a real run makes before its first request (printed at the end).
    files, sending = run.preflight_files(run.plan), run.preflight_sending()
    run.preflight = Preflight(files.findings + sending.findings)
    deselected = behavior_items(items)
    dropped = {id(item) for item in deselected}
    items[:] = [item for item in items if id(item) not in dropped]
    config.hook.pytest_deselected(items=deselected)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    with _refusals_as_usage_errors(session.config):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    with _refusals_as_usage_errors(session.config):
        return (yield)


@contextmanager
def _refusals_as_usage_errors(config: pytest.Config) -> Iterator[None]:
    """A refusal (errors.RunRefused) ends the run as ``ERROR: ...`` lines, exit status 4.

    pytest prints an Exit raised during the session as ``! _pytest.outcomes.Exit: ... !``;
    a UsageError as one clean ``ERROR:`` line per problem. In an xdist worker the
    refusal goes on as an Exit, which xdist_hooks.py relays to the controller.
    """
    try:
        yield
    except pytest.exit.Exception as error:
        # errors.py is imported only here: every pytest session passes through.
        from pytest_behavior.errors import RunRefused

        if not isinstance(error, RunRefused) or hasattr(config, "workerinput"):
            raise
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.ensure_newline()  # the ERROR lines start a line of their own
        raise pytest.UsageError(*error.lines) from None


def pytest_collection_finish(session: pytest.Session) -> None:
    # The one signal that spec files were collected: a session without them never
    # imports collect.py nor scans its items.
    if not session.config.stash.get(_SPECS_SEEN_KEY, False):
        return
    from pytest_behavior.session.collect import Selection
    from pytest_behavior.session.state import run_of

    selection = Selection.of(session.items)
    if selection is not None:
        run_of(session.config).selection = selection
        # Cases and items live all session: keep the cyclic collector off them.
        gc.freeze()
        session.config.stash[_FROZE_KEY] = True


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    from pytest_behavior.session.state import settings_of

    settings = settings_of(config)
    if not settings.models:
        return None
    if not settings.use_cache:
        cache = "off (--behavior-no-cache)"
    elif settings.cache_mode != "readwrite":
        cache = settings.cache_mode
    else:
        cache = "on"
    if settings.use_cache and settings.cache_url:
        from pytest_behavior.cache.redis_store import masked_url

        cache = f"{cache}, in {masked_url(settings.cache_url)}"
    endpoint = f", api_base {settings.api_base}" if settings.api_base else ""
    from pytest_behavior.session.notices import run_notices

    return [
        f"behavior: models {', '.join(settings.models)} ({settings.model_source})"
        f"{endpoint}; cache {cache}",
        *(f"behavior: {notice}" for notice in run_notices(settings, config)),
    ]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from pytest_behavior.session.state import existing_run

    run = existing_run(config)
    if run is None or run.is_worker or config.option.verbose < -1:
        return
    if run.plan is not None:
        from pytest_behavior.fetch.budget import plan_table

        terminalreporter.write_sep("=", "behavior dry run: nothing was sent")
        for line in plan_table(run.plan):
            terminalreporter.write_line(line)
    if run.preflight is not None:
        from pytest_behavior.session.preflight import findings_lines

        problems = bool(run.preflight.problems)
        title = "the run would stop before sending" if problems else "every check passed"
        terminalreporter.write_sep("=", f"behavior preflight: {title}", red=problems)
        for line in findings_lines(run.preflight):
            terminalreporter.write_line(line)
    if run.notices:
        from pytest_behavior.session.notices import grouped_lines

        terminalreporter.write_sep("=", "behavior: asked for, not applied")
        for line in grouped_lines(run.notices):
            terminalreporter.write_line(line)
    # finish.py (reports, history, comparisons) is imported only when there is a summary.
    stopped = []
    if run.not_run:
        from pytest_behavior.session.finish import not_run_lines

        stopped = not_run_lines(run.not_run, run.not_run_ids)
    if stopped:
        terminalreporter.write_sep("=", "behavior: not run", red=True)
        for line in stopped:
            terminalreporter.write_line(line)
    outcome = run.outcome
    if outcome is None:
        return
    from pytest_behavior.session.finish import summary_lines

    for title, lines in summary_lines(outcome, run.settings):
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
    for line in outcome.written:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from pytest_behavior.session.state import existing_run

    run = existing_run(session.config)
    if run is None or run.is_worker:
        return
    if run.plan is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK  # a dry run deselects what it counted
    if run.preflight is not None and run.preflight.problems:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR  # as the real run would stop
    quiet = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if run.not_run and session.exitstatus in quiet:
        # Cases a stopped model (or a readonly cache) did not answer fail the run once.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not run.results and not run.not_run_traits:
        return
    from pytest_behavior.session.finish import conclude

    # Also when every trait was stopped: the reports asked for say what was not run.
    run.outcome = conclude(
        run.sorted_results(),
        run.settings,
        session.config,
        cost=run.cost,
        not_run=run.not_run_traits,
    )
    if run.outcome.gate_failed and session.exitstatus == pytest.ExitCode.OK:
        # The session-level gate: regressions and refused comparisons fail the run.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if run.outcome.unwritten and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a file asked for is missing

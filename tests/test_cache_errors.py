"""A cache folder that cannot be used is one clear error naming it and the fix, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import yes_no_suite

from pytest_behavior.cache.disk import ResponseCache
from pytest_behavior.testing import ModelServer


def assert_one_clear_error(result: pytest.RunResult, cache: Path) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert f"cannot use the response cache {cache}" in output, output
    assert f"delete the folder (rm -rf {cache})" in output, output
    assert "--behavior-cache-mode=refresh" in output
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert "sqlite3" not in output  # the cause is said in words, not as an exception name


@pytest.mark.parametrize("xdist_args", [(), ("-n", "2")], ids=["no-xdist", "xdist"])
def test_garbage_cache_db_is_one_clear_error(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, xdist_args: tuple[str, ...]
) -> None:
    cache = pytester.path / "answers"
    cache.mkdir()
    (cache / "cache.db").write_bytes(os.urandom(3000))
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    run = run_suite(f"--behavior-cache-dir={cache}", *xdist_args)
    assert_one_clear_error(run.result, cache)
    assert "file is not a database" in run.result.stdout.str() + run.result.stderr.str()
    assert server.request_count == 0


def test_truncated_cache_db_is_one_clear_error(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    cache = pytester.path / "answers"
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=40))
    run_suite(f"--behavior-cache-dir={cache}").result.assert_outcomes(passed=41)
    database = cache / "cache.db"
    assert database.stat().st_size > 4096
    with database.open("r+b") as handle:  # as a full disk or a killed copy leaves it
        handle.truncate(4096)  # the first page: the header promises pages that are gone
    server.reset_stats()
    run = run_suite(f"--behavior-cache-dir={cache}")
    assert_one_clear_error(run.result, cache)
    assert "malformed" in run.result.stdout.str() + run.result.stderr.str()


def test_cache_dir_that_is_a_file_is_one_clear_error(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    cache = pytester.path / "answers"
    cache.write_text("not a folder")
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    assert_one_clear_error(run_suite(f"--behavior-cache-dir={cache}").result, cache)


def test_foreign_entry_is_one_clear_error(tmp_path: Path) -> None:
    import diskcache

    with diskcache.Cache(str(tmp_path)) as foreign:
        foreign.set("some-key", ["written", "by", "another", "program"])
    cache = ResponseCache(tmp_path)
    try:
        with pytest.raises(pytest.exit.Exception, match="not a pytest-behavior answer") as stop:
            cache.get("some-key")
    finally:
        cache.close()
    assert stop.value.returncode == pytest.ExitCode.USAGE_ERROR
    assert "delete the folder" in stop.value.msg

"""`python -m pytest_behavior cache info|prune|clear` on caches that real runs filled."""

from __future__ import annotations

import datetime
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import diskcache
import pytest
from helpers import answer_yes_for, cases_asked, yes_no_suite

from pytest_behavior.cache.reading import iter_entries
from pytest_behavior.commands import main
from pytest_behavior.testing import ModelServer

COUNT = 10
DAY = 86400.0


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_behavior", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def default_cache(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".behavior_cache" / "responses"


def entry_count(directory: Path) -> int:
    """The answers in the folder (not the plugin's checkpoint records beside them)."""
    return sum(1 for entry in iter_entries(directory) if entry.record is None)


def backdate(directory: Path, days: float) -> None:
    """Make every entry look stored ``days`` earlier (a test cannot wait a month)."""
    with sqlite3.connect(directory / "cache.db") as connection:
        connection.execute("UPDATE Cache SET store_time = store_time - ?", (days * DAY,))


def one_error_line(stderr: str, prefix: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {prefix}"), stderr
    return lines[0]


def test_info_counts_what_the_server_was_asked(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    server.responder = answer_yes_for(range(3), count=COUNT)
    assert run_suite().result.ret == 0
    asked = cases_asked(server)  # exact cases may share a request (exact_batch.py)
    assert asked == COUNT
    completed = cli("cache", "info", cwd=pytester.path)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    folder = default_cache(pytester)
    assert lines[0] == (
        f"folder:   {folder} (the default, .behavior_cache/responses "
        f"in the rootdir {pytester.path})"
    )
    assert lines[1].startswith(f"entries:  {asked}, ")
    assert lines[1].endswith(" on disk")
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    assert lines[2].startswith(f"stored:   {today} ")
    assert lines[3] == "per model:"
    # The revision is the checkpoint the endpoint served: its listing and fingerprint.
    assert re.fullmatch(rf"  openai/test-model @ fp:[0-9a-f]{{12}}  {COUNT}", lines[4])
    assert lines[5].startswith("records:  1 (checkpoint fingerprints and scoring-method choices")
    del lines[3], lines[4]
    assert lines[4] == (
        "pytest --cache-clear does NOT touch this folder: it lies outside .pytest_cache."
    )
    assert lines[5].startswith("To remove it: python -m pytest_behavior cache clear; ")


def test_the_folder_follows_the_ini_key_and_the_environment(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makeini("[pytest]\nbehavior_cache_dir = answers/here\n")
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run_suite()
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"folder:   {pytester.path / 'answers/here'} (ini behavior_cache_dir in " in out
    assert f"entries:  {COUNT}, " in out
    monkeypatch.setenv("PYTEST_BEHAVIOR_CACHE_DIR", "elsewhere")
    assert main(["cache", "info"]) == 2
    one_error_line(capsys.readouterr().err, "elsewhere: no such folder; nothing is cached there")


def test_prune_by_age_and_a_rerun_asks_only_for_what_went(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run_suite()
    folder = default_cache(pytester)
    backdate(folder, 40)
    honesty = yes_no_suite("honesty", count=COUNT).replace("statement", "fact")
    pytester.makefile(".yaml", behavior_honesty=honesty)
    run_suite()
    assert cases_asked(server) == 2 * COUNT

    dry = cli("cache", "prune", "--older-than", "30", "--dry-run", cwd=pytester.path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(
        f"would remove {COUNT} of {2 * COUNT} entries (stored more than 30 days ago), "
    )
    assert "dry run: nothing was removed" in dry.stdout
    assert entry_count(folder) == 2 * COUNT

    pruned = cli("cache", "prune", "--older-than", "30", cwd=pytester.path)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith(f"removed {COUNT} of {2 * COUNT} entries")
    assert pruned.stdout.rstrip().endswith(f"; {COUNT} left")

    server.reset_stats()
    run_suite()
    assert cases_asked(server) == COUNT
    assert all("statement" in request.prompt for request in server.requests)


def test_prune_by_model_removes_only_that_models_answers(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run_suite(model="openai/a")
    run_suite(model="openai/b")
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"per model:\n  openai/a @ fp:[0-9a-f]{{12}}  {COUNT}\n"
        rf"  openai/b @ fp:[0-9a-f]{{12}}  {COUNT}\n",
        out,
    ), out

    assert main(["cache", "prune", "--model", "openai/a"]) == 0
    assert capsys.readouterr().out.startswith(f"removed {COUNT} of {2 * COUNT} entries")
    server.reset_stats()
    run_suite("--behavior-model=openai/b", model="openai/a")
    assert cases_asked(server) == COUNT
    assert {request.model for request in server.requests} == {"a"}

    assert main(["cache", "prune", "--model", "openai/c"]) == 0
    assert "nothing to prune" in capsys.readouterr().out


def test_clear_removes_every_entry(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    run_suite()
    folder = default_cache(pytester)
    completed = cli("cache", "clear", "--dir", str(folder), cwd=pytester.path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"removed {COUNT} of {COUNT} entries, ")
    assert entry_count(folder) == 0
    again = cli("cache", "clear", "--dir", str(folder), cwd=pytester.path)
    assert again.stdout == f"{folder} holds no entries; nothing to remove\n"
    server.reset_stats()
    run_suite()
    assert cases_asked(server) == COUNT


def test_prune_needs_a_criterion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    diskcache.Cache(str(tmp_path)).close()
    assert main(["cache", "prune", "--dir", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, f"{tmp_path}: say what to prune: --model MODEL")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("missing", "no such folder; nothing is cached there yet"),
        ("project", "holds no cache.db, so it is not a pytest-behavior response cache"),
        ("garbage", "is truncated, corrupt or not a database (file is not a database)"),
        ("sqlite", "is not a diskcache database (no such table: Cache)"),
        ("numbers", "entry 'x' is not a pytest-behavior answer"),
        ("objects", "is unreadable or not a pytest-behavior answer (it names datetime."),
    ],
)
def test_a_folder_that_is_not_a_cache_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, message: str
) -> None:
    folder = tmp_path / "folder"
    if make != "missing":
        folder.mkdir()
        (folder / "notes.txt").write_text("mine\n")
    if make == "garbage":
        (folder / "cache.db").write_bytes(b"not a database at all" * 100)
    if make == "sqlite":
        with sqlite3.connect(folder / "cache.db") as connection:
            connection.execute("CREATE TABLE other (x)")
    if make in ("numbers", "objects"):
        foreign = diskcache.Cache(str(folder))
        foreign["x"] = 42 if make == "numbers" else datetime.datetime.now(datetime.UTC)
        foreign.close()
    before = sorted(path.name for path in folder.rglob("*")) if folder.exists() else []
    for action in ("info", "clear", "prune --older-than 0"):
        assert main(["cache", *action.split(), "--dir", str(folder)]) == 2
        line = one_error_line(capsys.readouterr().err, str(folder))
        assert message in line
        if action == "clear" and make != "missing":
            assert "clear removes only what it can read as answers; if the folder is yours" in line
        elif make == "garbage":
            assert "or run pytest once with --behavior-cache-mode=refresh" in line
        elif make != "missing":
            assert "pass --dir with the folder a run caches in" in line
    after = sorted(path.name for path in folder.rglob("*")) if folder.exists() else []
    assert after == before
    if make == "numbers":
        assert diskcache.Cache(str(folder))["x"] == 42

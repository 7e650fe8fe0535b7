"""Progress while requests are in flight: live on a terminal, a few lines in a log, quiet
under -q and when everything was cached."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import yes_no_suite

from pytest_behavior.fetch.progress import FetchCounts, FetchProgress
from pytest_behavior.testing import ModelServer


class FakeTerminal:
    def __init__(self) -> None:
        self.lines: list[str] = []  # write_line
        self.live: list[str] = []  # rewrite
        self.raw: list[str] = []  # write

    def write_line(self, line: str, **markup: bool) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, **markup: bool) -> None:
        self.live.append(line)

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
        self.raw.append(content)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def progress(*, live: bool, planned: int = 100) -> tuple[FetchProgress, FakeTerminal, FakeClock]:
    clock = FakeClock()
    terminal = FakeTerminal()
    counts = FetchCounts(planned=planned, started=clock.now)
    return FetchProgress(terminal, counts, live=live, clock=clock), terminal, clock


def test_live_line_is_rewritten_then_replaced_by_a_summary() -> None:
    display, terminal, clock = progress(live=True)
    display.counts.skipped = 40
    display.tick()
    assert terminal.live == []  # nothing sent yet: cached answers alone make no noise
    display.counts.sent, display.counts.answered, display.counts.failed = 30, 20, 1
    clock.now += 2
    display.tick()
    assert terminal.live == ["behavior: 61/100 requests, 10.5/s, 1 errors, 40 cached"]
    display.counts.sent, display.counts.answered = 60, 59
    clock.now += 2
    display.finish()
    assert terminal.live[-1] == (
        "behavior: sent 60 requests in 4.0 s (15.0/s), 1 errors, 40 cached"
    )
    assert terminal.raw[-1] == "\n"
    assert terminal.lines == []


def test_plain_lines_at_milestones_only() -> None:
    display, terminal, clock = progress(live=False)
    display.counts.sent = 1
    for answered in range(0, 101, 5):
        display.counts.answered = answered
        clock.now += 1
        display.tick()
    display.finish()
    assert [line.split(" requests")[0] for line in terminal.lines] == [
        "behavior: 25/100",
        "behavior: 50/100",
        "behavior: 75/100",
        "behavior: sent 100",
    ]
    assert terminal.live == []


def test_plain_line_at_least_every_minute() -> None:
    display, terminal, clock = progress(live=False, planned=10_000)
    display.counts.sent = display.counts.answered = 1
    for _ in range(3):
        clock.now += 61
        display.tick()
    assert len(terminal.lines) == 3


def test_interrupted_fetch_says_so() -> None:
    display, terminal, _ = progress(live=False)
    display.counts.sent, display.counts.answered = 10, 7
    display.finish(interrupted=True)
    assert terminal.lines == [
        "behavior: interrupted after 7 requests in 0.0 s (0.0/s), 0 errors, 0 cached"
    ]


def test_fully_cached_fetch_erases_nothing_it_did_not_draw() -> None:
    display, terminal, _ = progress(live=True)
    display.counts.skipped = 100
    display.tick()
    display.finish()
    assert (terminal.live, terminal.raw, terminal.lines) == ([], [], [])


def test_a_run_prints_one_summary_and_a_cached_rerun_one_line(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=8))
    first = run_suite()
    first.result.stdout.fnmatch_lines(
        ["collected 9 items", "behavior: sent 8 requests in * 0 errors, 0 cached"]
    )
    rerun = run_suite()
    between = rerun.result.stdout.str().split("collected")[1].split("=")[0]
    # A fully cached run says so in one line, and shows no progress.
    assert [line for line in between.splitlines() if "behavior:" in line] == [
        f"behavior: 8 answers from the cache ({pytester.path / '.behavior_cache' / 'responses'}); "
        "nothing was sent but 1 checkpoint fingerprint"
    ]


def test_quiet_runs_show_no_progress(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite("-q")
    run.result.assert_outcomes(passed=5)
    assert "behavior: sent" not in run.result.stdout.str()

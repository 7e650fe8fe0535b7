"""What a user sees while requests are in flight.

On a terminal: one line rewritten in place a few times a second (done / total,
requests per second, errors, cached), replaced at the end by a one-line
summary. Elsewhere (CI logs): a plain line at 25%, 50% and 75%, at least one
a minute, and the summary. Nothing when every answer was cached, nothing under
``-q``, and nothing from xdist workers, whose output pytest does not show.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

MILESTONES = (25, 50, 75)
# In a log, a long fetch still says something at least this often (seconds).
PLAIN_LINE_EVERY = 60.0
# The live rate is measured over the last few seconds, so the first request's
# litellm import (~3 s) does not drag it down for the rest of the run.
RATE_WINDOW = 5.0


@dataclass
class FetchCounts:
    """Live counters of one fetch: the producer and the event loop write, progress reads.

    ``planned`` is how many requests the caller expects to look at (0 when
    unknown); each is then either ``skipped`` (cached, a duplicate, or another
    worker's), ``not_run`` (its model was stopped), or ``sent``; each sent one ends
    ``answered``, ``failed``, or ``cancelled`` by its model's stop (counted in
    ``not_run`` too).
    """

    planned: int = 0
    skipped: int = 0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    # Handed over but not sent: their model was stopped (see stopping.py).
    not_run: int = 0
    cancelled: int = 0
    cost: float = 0.0
    started: float = field(default_factory=time.monotonic)
    # Per model, why it was stopped during this fetch.
    stopped: dict[str, str] = field(default_factory=dict)
    # When each request in flight was sent (written on the loop, read by progress).
    _sending: dict[int, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def finished(self) -> int:
        return self.skipped + self.answered + self.failed + self.not_run

    def begin(self) -> int:
        token = next(self._ids)
        self._sending[token] = time.monotonic()
        return token

    def end(self, token: int) -> None:
        self._sending.pop(token, None)

    def in_flight(self, now: float) -> tuple[int, float]:
        """How many requests are in flight, and the age in seconds of the oldest."""
        try:
            # Insertion order is send order: the first entry is the oldest.
            oldest = next(iter(self._sending.values()), None)
            count = len(self._sending)
        except RuntimeError:  # changed size while read from the other thread
            return 0, 0.0
        return count, (now - oldest if oldest is not None else 0.0)


class Terminal(Protocol):
    """The part of pytest's TerminalReporter that progress writes through."""

    def write_line(self, line: str, **markup: bool) -> None: ...

    def rewrite(self, line: str, **markup: bool) -> None: ...

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None: ...


class FetchProgress:
    """Renders one fetch's :class:`FetchCounts`; call :meth:`tick` often, :meth:`finish` once."""

    def __init__(
        self,
        terminal: Terminal,
        counts: FetchCounts,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.terminal = terminal
        self.counts = counts
        self.live = live
        self._clock = clock
        self._drawn = False
        self._next_milestone = 0
        self._last_plain = clock()
        self._samples: deque[tuple[float, int]] = deque([(counts.started, 0)])

    def tick(self) -> None:
        counts = self.counts
        now = self._clock()
        self._samples.append((now, counts.answered + counts.failed + counts.cancelled))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        if counts.sent == 0:
            return  # so far everything was cached: stay silent
        if self.live:
            self.terminal.rewrite(self.status_line(), erase=True)
            self.terminal.write("", flush=True)
            self._drawn = True
            return
        percent = 100 * counts.finished // counts.planned if counts.planned else 0
        milestone_due = (
            self._next_milestone < len(MILESTONES) and percent >= MILESTONES[self._next_milestone]
        )
        if milestone_due or self._clock() - self._last_plain >= PLAIN_LINE_EVERY:
            while (
                self._next_milestone < len(MILESTONES)
                and percent >= MILESTONES[self._next_milestone]
            ):
                self._next_milestone += 1
            self._last_plain = self._clock()
            self.terminal.write_line(self.status_line())

    def finish(self, *, interrupted: bool = False) -> None:
        counts = self.counts
        if counts.sent == 0:
            if self._drawn:
                self.terminal.rewrite("", erase=True)
                self.terminal.write("\r", flush=True)
            return
        line = self.summary_line(interrupted=interrupted)
        if self.live:
            self.terminal.rewrite(line, erase=True)
            self.terminal.write("\n", flush=True)
        else:
            self.terminal.write_line(line)
        for model, reason in counts.stopped.items():
            self.terminal.write_line(f"behavior: stopped asking {model}: {reason}", red=True)

    def status_line(self) -> str:
        counts = self.counts
        total = f"/{counts.planned}" if counts.planned else ""
        flying, oldest = counts.in_flight(self._clock())
        return (
            f"behavior: {counts.finished}{total} requests, {self._recent_rate():.1f}/s, "
            f"{counts.failed} errors, {counts.skipped} cached"
            + (f", {counts.rate_limited} rate-limited" if counts.rate_limited else "")
            + (f", {flying} in flight (oldest {oldest:.0f} s)" if flying else "")
            + (f", {counts.not_run} not run" if counts.not_run else "")
        )

    def summary_line(self, *, interrupted: bool = False) -> str:
        counts = self.counts
        elapsed = self._clock() - counts.started
        done = counts.answered + counts.failed + counts.cancelled
        head = "interrupted after" if interrupted else "sent"
        retries = f", {counts.retried} retries" if counts.retried else ""
        limited = f" ({counts.rate_limited} rate-limited)" if counts.rate_limited else ""
        not_run = f", {counts.not_run} not run" if counts.not_run else ""
        cost = f", ${counts.cost:.4f}" if counts.cost else ""
        return (
            f"behavior: {head} {done} requests in {elapsed:.1f} s ({self._rate():.1f}/s), "
            f"{counts.failed} errors{retries}{limited}, {counts.skipped} cached{not_run}{cost}"
        )

    def _recent_rate(self) -> float:
        (then, done_then), (now, done_now) = self._samples[0], self._samples[-1]
        return (done_now - done_then) / (now - then) if now > then else 0.0

    def _rate(self) -> float:
        elapsed = self._clock() - self.counts.started
        done = self.counts.answered + self.counts.failed + self.counts.cancelled
        return done / elapsed if elapsed > 0 else 0.0


def terminal_for(config: Any) -> Any | None:
    """pytest's terminal reporter where this process may print about requests, else None:
    never in xdist workers (pytest does not show their output), nor under ``-q``."""
    if hasattr(config, "workerinput") or config.option.verbose < 0:
        return None
    return config.pluginmanager.get_plugin("terminalreporter")


def progress_for(config: Any, counts: FetchCounts) -> FetchProgress | None:
    """A progress display for this process, or None where it must stay quiet."""
    terminal = terminal_for(config)
    if terminal is None:
        return None
    return FetchProgress(terminal, counts, live=bool(terminal.isatty()))

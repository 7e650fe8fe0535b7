"""The fetch process's side of fetch/processes.py: its share of the prefetch.

A child is forked from multiprocessing's fork server, which imported litellm once
(so each start costs milliseconds, not the ~3-5 s import), and takes on the
parent's working directory and environment, so paths and API keys mean the same
as in the parent. It runs the same Fetcher and ModelClient as one process does,
on its share of the requests, writes answers to the same cache, and tells the
parent over its pipe what the cache does not hold: counts, failures, cost, stops.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_behavior.errors import RequestFailed
from pytest_behavior.values import ModelRequest

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.progress import FetchCounts

# How often a child reports its counts (the parent redraws its line as often).
TICK_SECONDS = 0.25


@dataclass(frozen=True)
class ChildCounts:
    """A child's counts so far (FetchCounts' fields that cross the pipe)."""

    skipped: int = 0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    not_run: int = 0
    cancelled: int = 0
    cost: float = 0.0

    @classmethod
    def of(cls, counts: FetchCounts) -> ChildCounts:
        return cls(**{name: getattr(counts, name) for name in COUNTED})


COUNTED = tuple(part.name for part in fields(ChildCounts))


@dataclass(frozen=True)
class CacheAddress:
    """Where the parent's cache is, so a child opens the same one: a folder or a Redis."""

    mode: str
    stamp: str | None
    directory: Path | None = None
    url: str | None = None
    prefix: str | None = None

    @classmethod
    def of(cls, cache: AnswerCache) -> CacheAddress | None:
        """The address of ``cache``; None for a store a child cannot open."""
        from pytest_behavior.cache.disk import ResponseCache

        if isinstance(cache, ResponseCache):
            return cls(cache.mode, cache.stamp, directory=cache.directory)
        url, prefix = getattr(cache, "url", None), getattr(cache, "prefix", None)
        if isinstance(url, str) and isinstance(prefix, str):
            return cls(cache.mode, cache.stamp, url=url, prefix=prefix)
        return None

    def open(self) -> AnswerCache:
        if self.directory is not None:
            from pytest_behavior.cache.disk import ResponseCache

            return ResponseCache(self.directory, mode=self.mode, stamp=self.stamp)
        assert self.url is not None and self.prefix is not None
        from pytest_behavior.cache.redis_store import RedisCache

        cache = RedisCache(self.url, mode=self.mode, stamp=self.stamp, prefix=self.prefix)
        cache.connect()
        return cache


@dataclass(frozen=True)
class ChildShare:
    """What one fetch process is given: its requests and how to send them."""

    index: int
    requests: tuple[ModelRequest, ...]
    endpoints: dict[str, Endpoint]
    cache: CacheAddress
    concurrency: int
    max_attempts: int
    request_timeout: float
    max_duration: float | None
    # Wall-clock time (time.time) at which --behavior-max-duration runs out, if set.
    deadline: float | None
    # The parent's, now: the fork server's may be older (pytester, monkeypatch.setenv).
    working_directory: str
    environment: dict[str, str]


@dataclass
class _FetchState:
    """Whether the fetch runs (a cancel then interrupts it) or was cancelled (guarded by a lock)."""

    fetching: bool = False
    cancelled: bool = False


class _Outbox:
    """Messages to the parent, from the main thread and the event loop's alike."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError):  # the parent is gone: no one to tell
            self._connection.send(message)


class _Reporter:
    """A child's progress display: its counts and new failures, sent to the parent."""

    def __init__(self, outbox: _Outbox, fetcher: Fetcher, counts: FetchCounts) -> None:
        self._outbox = outbox
        self._fetcher = fetcher
        self._counts = counts
        self._reported = 0

    def new_failures(self) -> list[tuple[str, RequestFailed]]:
        # The loop thread adds failures as they happen; a dict copy is atomic, and
        # insertion order makes the new ones the tail.
        failures = list(self._fetcher.failures.copy().items())[self._reported :]
        self._reported += len(failures)
        return failures  # RequestFailed pickles with its kind

    def tick(self) -> None:
        self._outbox.send(("progress", ChildCounts.of(self._counts), self.new_failures()))

    def finish(self, *, interrupted: bool = False) -> None:
        self.tick()


def child_main(connection: Connection, share: ChildShare) -> None:
    """The entry point of a fetch process (forked from the fork server)."""
    import gc

    from pytest_behavior.session.signals import stop_on_sigterm

    # What the fork server imported (litellm's ~300k objects) lives as long as this
    # process: the collector skips it, and leaves the pages shared with the server.
    gc.freeze()
    os.chdir(share.working_directory)
    os.environ.clear()
    os.environ.update(share.environment)
    stop_on_sigterm()  # the parent's terminate() then ends it as Ctrl-C does
    outbox = _Outbox(connection)
    try:
        _fetch_share(connection, outbox, share)
    except KeyboardInterrupt:
        pass  # the parent asked, or Ctrl-C reached the whole process group
    except BaseException as error:  # reported to the parent, in one line
        from pytest_behavior.fetch.redaction import Redactor

        outbox.send(("error", Redactor.from_environment()(f"{type(error).__name__}: {error}")))
    finally:
        connection.close()


def _fetch_share(connection: Connection, outbox: _Outbox, share: ChildShare) -> None:
    import _thread

    from pytest_behavior.fetch.client import ModelClient, litellm_complete
    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.litellm_api import import_litellm
    from pytest_behavior.fetch.progress import FetchCounts
    from pytest_behavior.fetch.redaction import Redactor

    # A cancel (or the parent's end) interrupts the fetch as Ctrl-C would, once; one
    # that comes before the fetch starts means it never starts.
    lock = threading.Lock()
    state = _FetchState()

    def cancel() -> None:
        with lock:
            state.cancelled = True
            if state.fetching:
                state.fetching = False
                _thread.interrupt_main()

    timeout = share.request_timeout
    client = ModelClient(
        lambda request, endpoint: litellm_complete(request, endpoint, timeout),
        concurrency=share.concurrency,
        max_attempts=share.max_attempts,
        request_timeout=share.request_timeout,
        max_duration=share.max_duration,
        redact=Redactor.from_environment(),
        on_stop=lambda model, reason: outbox.send(("stop", model, reason)),
    )
    if share.deadline is not None:
        client.deadline = time.monotonic() + (share.deadline - time.time())

    def listen() -> None:
        """The parent's messages: stops to relay, a cancel, or its end (EOF)."""
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):  # the parent is gone
                cancel()
                return
            if message[0] == "stop":
                client.stop_model(message[1], message[2])
            elif message[0] == "cancel":
                cancel()
                return

    threading.Thread(target=listen, name="pytest-behavior-parent", daemon=True).start()
    import_litellm()  # before the first request, as the parent's fetch would have
    cache = share.cache.open()
    fetcher = Fetcher(cache, client=lambda: client, endpoint=share.endpoints.__getitem__)
    counts = FetchCounts(planned=len(share.requests))
    reporter = _Reporter(outbox, fetcher, counts)
    interrupted = True
    try:
        with lock:
            if state.cancelled:
                raise KeyboardInterrupt
            state.fetching = True
        fetcher.fetch(share.requests, counts=counts, progress=lambda _: reporter)
        with lock:
            state.fetching = False
        interrupted = False
    finally:
        outbox.send(("done", ChildCounts.of(counts), reporter.new_failures(), interrupted))
        client.close()
        cache.close()

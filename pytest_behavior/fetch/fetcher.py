"""Which requests to send, sending them, and finding every answer afterwards.

A fetch walks the requests lazily: each one is hashed once, looked up in the
cache, and handed to the client only when it is neither cached, nor failed
already, nor in flight, nor (under xdist) claimed by another worker. Answers go
to the cache through a background writer as they arrive, so an interrupted run
keeps everything it received; only the keys between "answered" and "written"
are remembered, so memory stays flat however large the suite.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Protocol

from pytest_behavior.cache.keys import request_key
from pytest_behavior.cache.writer import CacheWriter
from pytest_behavior.errors import RequestFailed
from pytest_behavior.fetch.progress import FetchCounts
from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.fetch.claims import RequestClaims
    from pytest_behavior.fetch.client import Endpoint, Job, ModelClient

# Polling for another worker's answer: start fast (it is usually a request away).
FIRST_POLL = 0.005
LONGEST_POLL = 0.05
# Requests looked up in the cache together: one round trip each batch for a Redis cache.
LOOKUP_BATCH = 256


class Display(Protocol):
    """What a fetch reports to while it runs: progress.FetchProgress, or a fetch
    process's messages to its parent (fetch/processes.py)."""

    def tick(self) -> None: ...

    def finish(self, *, interrupted: bool = False) -> None: ...


class Fetcher:
    """One process's view of the answers: cache, failures, and what is in flight."""

    def __init__(
        self,
        cache: AnswerCache,
        *,
        client: Callable[[], ModelClient],
        endpoint: Callable[[str], Endpoint],
        claims: RequestClaims | None = None,
        refuse: str | None = None,
        before_first_send: Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache
        self.claims = claims
        # When set, nothing is sent: an uncached request is not run, for this reason
        # (readonly cache mode).
        self.refuse = refuse
        self._client = client
        self._endpoint = endpoint
        # The preflight's credential and endpoint checks (run.py), before anything is paid for.
        self.before_first_send = before_first_send
        # Failures are never cached: the next run asks again.
        self.failures: dict[str, RequestFailed] = {}
        # What the answers this process bought cost (USD, where litellm priced them).
        self.cost = 0.0
        # Requests sent and not yet written to the cache, by key (the writer records
        # their model beside each answer).
        self._in_flight: dict[str, ModelRequest] = {}

    def fetch(
        self,
        requests: Iterable[ModelRequest],
        *,
        planned: int = 0,
        progress: Callable[[FetchCounts], Display | None] | None = None,
        counts: FetchCounts | None = None,
    ) -> FetchCounts:
        """Send every request that has no answer yet; returns what happened.

        ``counts`` carries on counting where an earlier fetch left off (the
        exact-scoring probes before the prefetch), so one summary covers both.
        """
        keyed = ((request_key(request), request) for request in requests)
        return self.fetch_keyed(keyed, planned=planned, progress=progress, counts=counts)

    def fetch_keyed(
        self,
        requests: Iterable[tuple[str, ModelRequest]],
        *,
        planned: int = 0,
        progress: Callable[[FetchCounts], Display | None] | None = None,
        counts: FetchCounts | None = None,
    ) -> FetchCounts:
        """:meth:`fetch` of (key, request) pairs whose keys the caller derived already."""
        if counts is None:
            counts = FetchCounts(planned=planned)
        # counts may come in carrying earlier fetches' cost: add only this one's.
        cost_before = counts.cost
        jobs = self._jobs(requests, counts)
        first = next(jobs, None)
        if first is None:
            return counts  # all cached: no event loop, no thread, no litellm import
        if self.before_first_send is not None:
            try:
                self.before_first_send()
            except BaseException:
                self._abandon_unanswered()
                raise
        display = progress(counts) if progress is not None else None
        writer = CacheWriter(self.cache, written=self._forget)
        interrupted = True
        try:
            self._client().send(
                itertools.chain([first], jobs),
                lambda key, result: self._store(writer, key, result),
                counts=counts,
                on_tick=display.tick if display is not None else None,
            )
            interrupted = False
        finally:
            writer.close()  # also on Ctrl-C: whatever arrived is written
            self.cost += counts.cost - cost_before
            self._abandon_unanswered()
            if display is not None:
                display.finish(interrupted=interrupted)
        return counts

    def _jobs(
        self, requests: Iterable[tuple[str, ModelRequest]], counts: FetchCounts
    ) -> Iterator[Job]:
        cache, failures, in_flight = self.cache, self.failures, self._in_flight
        walk = iter(requests)
        while batch := list(islice(walk, LOOKUP_BATCH)):
            # In flight before cache: the writer forgets a key only after committing it.
            flying = {key for key, _ in batch if key in in_flight}
            cached = cache.cached_among([key for key, _ in batch if key not in flying])
            for key, request in batch:
                if key in flying or key in in_flight or key in failures or key in cached:
                    counts.skipped += 1
                    continue
                yield from self._job(key, request, counts)

    def _job(self, key: str, request: ModelRequest, counts: FetchCounts) -> Iterator[Job]:
        """The request to send for ``key``, unless readonly refuses it or a worker has it."""
        if self.refuse is not None:
            self.failures[key] = RequestFailed.not_run(self.refuse)
            counts.not_run += 1
            return
        if self.claims is not None:
            stopped = self.claims.stop_of(request.model)
            if stopped is not None:
                # Another worker stopped this model: stop here too, with its reason.
                self._client().stop_model(request.model, stopped)
                self.failures[key] = RequestFailed.not_run(stopped)
                counts.not_run += 1
                return
        # A lost shared cache hides the other workers' answers: send it here too.
        if self.claims is not None and not self.claims.claim(key) and self.cache.reachable:
            counts.skipped += 1  # another worker sends it
            return
        self._in_flight[key] = request
        yield key, request, self._endpoint(request.model)

    def _store(self, writer: CacheWriter, key: str, result: Answer | RequestFailed) -> None:
        """Runs on the event loop thread as each request finishes."""
        if isinstance(result, RequestFailed):
            self.failures[key] = result
            self._in_flight.pop(key, None)
            if self.claims is not None:
                self.claims.record_failure(key, result)
        else:
            writer.put(key, result, self._in_flight.get(key))

    def _forget(self, keys: list[str]) -> None:
        """Called by the writer once ``keys`` can be read back from the cache."""
        for key in keys:
            self._in_flight.pop(key, None)

    def _abandon_unanswered(self) -> None:
        """After an interruption: let another worker (or the next run) ask again."""
        if self.claims is not None:
            for key in self._in_flight:
                self.claims.release(key)
        self._in_flight.clear()

    def answer(self, request: ModelRequest) -> Answer | RequestFailed:
        """The answer to ``request``: from the cache, fetched now, or awaited from a worker."""
        key = request_key(request)
        poll = FIRST_POLL
        fetched = False
        while True:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
            failure = self.failures.get(key)
            if failure is not None:
                return failure
            if self.claims is not None:
                shared = self.claims.failure(key)
                if shared is not None:
                    return shared
            if fetched:
                return RequestFailed("no answer was recorded")
            if self.claims is None or self.claims.claim(key) or not self.cache.reachable:
                self.fetch([request])
                fetched = True
                continue
            time.sleep(poll)  # another live worker is fetching it
            poll = min(poll * 2, LONGEST_POLL)

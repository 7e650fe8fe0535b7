"""The prefetch spread over several fetch processes, on every core of one machine.

One process tops out near litellm's 7-10 ms of CPU per call (about 135
requests/s). With ``--behavior-fetch-processes N`` the prefetch splits the
uncached requests by their key (``partition.shard_of``, as shards do) and hands
each part to a child process forked from multiprocessing's fork server (see
:func:`fork_server`; fetch/child.py is the child's side). Each child runs
the same Fetcher and ModelClient on its part, with its share of
``--behavior-concurrency``, and writes to the same cache; the answers are read
from there. What is not cached comes back over a pipe: progress counts, failures
(key and redacted reason), cost, and stops. A model one child stops is stopped in
the parent, which tells the others, so it stops everywhere with one reason.

Ctrl-C, SIGTERM and a dying parent reach every child (a cancel message, or the
pipe closing), which stops as a single process does: what arrived is written.
The parent waits for every child to exit before it goes on. A child that dies
without finishing leaves its part to the parent, which asks for it itself.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.fetch.child import (
    COUNTED,
    TICK_SECONDS,
    CacheAddress,
    ChildCounts,
    ChildShare,
    child_main,
)
from pytest_behavior.values import ModelRequest

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from pytest_behavior.fetch.fetcher import Fetcher
    from pytest_behavior.fetch.progress import FetchCounts, FetchProgress
    from pytest_behavior.session.run import BehaviorRun

# "auto" never starts more processes than this, however many cores there are.
AUTO_MAX_PROCESSES = 8
# "auto" starts a process per this many uncached requests at most: a start with the
# litellm import costs ~2-5 s of CPU, which a smaller share does not win back.
AUTO_REQUESTS_PER_PROCESS = 1000
# After a cancel, how long a child may take to write what arrived before it is killed.
CANCEL_GRACE = 15.0


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def process_count(wanted: int | None, pending: int, *, concurrency: int, cores: int) -> int:
    """How many fetch processes ``pending`` uncached requests get (``wanted`` None: auto).

    Never more than there are requests, nor than --behavior-concurrency (each
    process keeps at least one request in flight, and the total stays bounded).
    """
    if wanted is None:
        wanted = min(cores, AUTO_MAX_PROCESSES, pending // AUTO_REQUESTS_PER_PROCESS)
    return max(1, min(wanted, pending, concurrency))


def fork_server() -> Any:
    """multiprocessing's "forkserver" context, its server holding litellm imported.

    Not a plain fork: the parent has threads and an event loop, and a fork copies
    whatever lock one of them holds. Not "spawn" either: every child would import
    litellm again (~3-5 s of CPU each). The fork server is a fresh process that
    imports it once; each child is then forked from it in milliseconds.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # Windows: each child imports litellm
    # The server's environment is the parent's when it starts: no cost-map download.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pytest_behavior.fetch.child", "litellm"])
    return context


def uses_own_completion(run: BehaviorRun) -> bool:
    """Whether a conftest or plugin answers requests (pytest_behavior_complete): that
    hook lives in this process only, so its requests cannot move to others."""
    implementations = run.config.hook.pytest_behavior_complete.get_hookimpls()
    return any(impl.plugin_name != "behavior-defaults" for impl in implementations)


def spread_fetch(
    run: BehaviorRun, requests: Iterable[tuple[str, ModelRequest]], counts: FetchCounts
) -> list[tuple[str, ModelRequest]]:
    """Send ``requests`` from fetch processes where that pays; returns what is left.

    The cached ones are counted as skipped here. The rest go to the processes, or,
    when one process is the better choice (few requests, one core), come back for
    the caller's own fetch; so do the requests of a process that died.
    """
    from pytest_behavior.cache.keys import request_key
    from pytest_behavior.fetch.fetcher import LOOKUP_BATCH
    from pytest_behavior.local.model import is_local_model
    from pytest_behavior.shards.partition import shard_of

    fetcher, stops = run.fetcher, run.client.stops
    seen: set[str] = set()
    pending: list[tuple[str, ModelRequest]] = []
    # A model already stopped here (its exact-scoring probe was refused) is not sent
    # anywhere: this process's own fetch marks its cases not run.
    stopped: list[tuple[str, ModelRequest]] = []
    walk = iter(requests)
    # One look-up per batch: with a Redis cache a key at a time is a round trip each.
    while batch := list(islice(walk, LOOKUP_BATCH)):
        cached = fetcher.cache.cached_among([key for key, _ in batch])
        for key, request in batch:
            if key in seen or key in fetcher.failures or key in cached:
                counts.skipped += 1
                continue
            seen.add(key)
            # A local model's server (this process's child) answers one request at a
            # time: its requests stay in this process, under its own limit of one.
            if stops.stopped(request.model) is not None or is_local_model(request.model):
                stopped.append((key, request))
            else:
                pending.append((key, request))
    count = process_count(
        run.settings.fetch_processes,
        len(pending),
        concurrency=run.settings.concurrency,
        cores=available_cores(),
    )
    address = CacheAddress.of(fetcher.cache)
    if count == 1 or address is None:
        return stopped + pending
    parts: list[list[ModelRequest]] = [[] for _ in range(count)]
    for key, request in pending:
        parts[shard_of(key, count)].append(request)
    models = {key: request.model for key, request in pending}
    pool = FetchPool(run, parts, counts, models, address)
    return stopped + [(request_key(request), request) for request in pool.fetch()]


@dataclass
class _Child:
    index: int
    process: BaseProcess
    connection: Connection
    requests: list[ModelRequest]
    counts: ChildCounts = field(default_factory=ChildCounts)
    finished: bool = False
    error: str | None = None
    open: bool = True


class FetchPool:
    """The parent's end: starts the children, relays stops, totals what they report."""

    def __init__(
        self,
        run: BehaviorRun,
        parts: list[list[ModelRequest]],
        counts: FetchCounts,
        models: dict[str, str],
        address: CacheAddress,
    ) -> None:
        self._run = run
        self.address = address
        self.parts = parts
        self.counts = counts
        self.models = models
        self.fetcher: Fetcher = run.fetcher
        self._base = ChildCounts.of(counts)
        self._children: list[_Child] = []
        self._display: FetchProgress | None = None

    def fetch(self) -> list[ModelRequest]:
        """Fetch every part in its own process; returns the requests left unasked."""
        from pytest_behavior.fetch.progress import progress_for, terminal_for

        run, settings = self._run, self._run.settings
        run.before_first_send()  # the preflight's credential and endpoint checks
        client = run.client
        # The run's time limit holds across the processes: they share one deadline.
        if settings.max_duration is not None and client.deadline is None:
            client.deadline = time.monotonic() + settings.max_duration
        deadline = (
            time.time() + (client.deadline - time.monotonic())
            if client.deadline is not None
            else None
        )
        endpoints = {model: run.endpoint(model) for model in sorted(set(self.models.values()))}
        context = fork_server()
        count = len(self.parts)
        base_share, extra = divmod(settings.concurrency, count)
        terminal = terminal_for(run.config)
        if terminal is not None:
            sending = sum(len(part) for part in self.parts)
            terminal.write_line(
                f"behavior: sending {sending} requests from {count} fetch processes"
            )
        self._display = progress_for(run.config, self.counts)
        interrupted = True
        try:
            for index, part in enumerate(self.parts):
                share = ChildShare(
                    index=index,
                    requests=tuple(part),
                    endpoints={model: endpoints[model] for model in {r.model for r in part}},
                    cache=self.address,
                    concurrency=max(1, base_share + (index < extra)),
                    max_attempts=settings.max_attempts,
                    request_timeout=settings.request_timeout,
                    max_duration=settings.max_duration,
                    deadline=deadline,
                    working_directory=os.getcwd(),
                    environment=dict(os.environ),
                )
                ours, theirs = context.Pipe(duplex=True)
                process = context.Process(
                    target=child_main,
                    args=(theirs, share),
                    name=f"pytest-behavior-fetch-{index}",
                    daemon=True,  # multiprocessing ends them at exit, whatever happens
                )
                process.start()
                theirs.close()
                self._children.append(_Child(index, process, ours, part))
                # A stop that happened while later children were starting reaches them too.
                for model, reason in self.counts.stopped.items():
                    self._tell(self._children[-1], ("stop", model, reason))
            self._wait_all()
            interrupted = False
        finally:
            if interrupted:
                self._cancel_all()
            for child in self._children:
                child.connection.close()
            self._total()
            self.fetcher.cost += sum(child.counts.cost for child in self._children)
            if self._display is not None:
                self._display.finish(interrupted=interrupted)
        return self._left_over()

    def _wait_all(self, until: float | None = None) -> None:
        """Handle messages until every child has exited (or ``until``, monotonic)."""
        from multiprocessing.connection import wait

        while True:
            live = [child for child in self._children if child.process.exitcode is None]
            listening = [child.connection for child in self._children if child.open]
            if not live and not listening:
                return
            timeout = TICK_SECONDS
            if until is not None:
                timeout = min(timeout, until - time.monotonic())
                if timeout <= 0:
                    return
            ready = wait([*listening, *(child.process.sentinel for child in live)], timeout)
            for child in self._children:
                if child.open and child.connection in ready:
                    self._receive(child)
                if child.process.exitcode is not None and child.open:
                    self._receive(child)  # whatever it sent before exiting
            self._total()
            if self._display is not None:
                self._display.tick()

    def _receive(self, child: _Child) -> None:
        try:
            while child.connection.poll():
                self._handle(child, child.connection.recv())
        except (EOFError, OSError):
            child.open = False
            child.process.join()

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "progress":
            _, child.counts, failures = message
            self._record_failures(failures)
        elif kind == "stop":
            self._stopped(child, message[1], message[2])
        elif kind == "done":
            _, child.counts, failures, interrupted = message
            self._record_failures(failures)
            child.finished = not interrupted
        elif kind == "error":
            child.error = message[1]

    def _record_failures(self, failures: list[tuple[str, RequestFailed]]) -> None:
        stops = self.counts.stopped
        for key, failure in failures:
            model = self.models.get(key)
            stopped = stops.get(model) if model is not None else None
            if stopped is not None and failure.kind is FailureKind.NOT_RUN:
                # One reason per stopped model, whoever stopped it.
                failure = RequestFailed.not_run(stopped)
            self.fetcher.failures[key] = failure

    def _stopped(self, child: _Child, model: str, reason: str) -> None:
        """A child stopped ``model``: the parent and every other child stop it too."""
        if model in self.counts.stopped:
            return
        self.counts.stopped[model] = reason
        self._run.client.stops.stop(model, reason)
        for other in self._children:
            if other is not child:
                self._tell(other, ("stop", model, reason))

    @staticmethod
    def _tell(child: _Child, message: tuple[Any, ...]) -> None:
        if child.open:
            with contextlib.suppress(OSError):  # it has exited: nothing left to tell
                child.connection.send(message)

    def _cancel_all(self) -> None:
        """Ctrl-C or SIGTERM in the parent: every child stops and writes what arrived."""
        for child in self._children:
            self._tell(child, ("cancel",))
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: stop waiting
            self._wait_all(until=time.monotonic() + CANCEL_GRACE)
        for child in self._children:
            if child.process.exitcode is None:
                child.process.terminate()
                child.process.join(timeout=5)
            if child.process.exitcode is None:
                child.process.kill()
                child.process.join()

    def _total(self) -> None:
        counts = self.counts
        for name in COUNTED:
            children = sum(getattr(child.counts, name) for child in self._children)
            setattr(counts, name, getattr(self._base, name) + children)

    def _left_over(self) -> list[ModelRequest]:
        """The parts of children that did not finish; said once per child."""
        from pytest_behavior.fetch.progress import terminal_for

        left: list[ModelRequest] = []
        terminal = terminal_for(self._run.config)
        for child in self._children:
            if child.finished:
                continue
            left.extend(child.requests)
            if terminal is not None:
                why = child.error or f"exit code {child.process.exitcode}"
                terminal.write_line(
                    f"behavior: fetch process {child.index} stopped early ({why}); "
                    "this process asks for the rest of its requests",
                    yellow=True,
                )
        return left

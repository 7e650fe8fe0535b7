"""Model calls through litellm: concurrency, rate-limit adaptation and retries.

litellm is imported on the first request only (it costs ~3 s), with its cost
map read locally. All requests run on one private event loop in a daemon
thread, so litellm's async clients stay bound to a loop that lives as long as
the session and pytest's own thread never needs an event loop.

The caller's thread produces the jobs (cache lookups, claims, endpoints) into a
bounded hand-over queue, so a suite of any size is never held as a list, and a
Ctrl-C lands in the caller's thread, which cancels what is in flight. asyncio
is imported on the first fetch: a session without requests never pays for it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_behavior.errors import FailureKind, RequestFailed
from pytest_behavior.fetch.capabilities import failure_kind
from pytest_behavior.fetch.litellm_api import answer_from_response, import_litellm
from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    import asyncio

    from pytest_behavior.fetch.progress import FetchCounts
    from pytest_behavior.fetch.retrying import AdaptiveLimiter

CompleteFunction = Callable[[ModelRequest, "Endpoint"], "Awaitable[Answer] | Answer"]
ResultCallback = Callable[[str, "Answer | RequestFailed"], None]
Job = tuple[str, ModelRequest, "Endpoint"]
# Jobs handed over but not yet taken, per unit of concurrency: enough that no
# sender ever waits for the producer, few enough to stay flat in memory.
QUEUED_PER_SLOT = 2

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served: the name litellm routes by, and an optional base URL."""

    litellm_model: str
    api_base: str | None

    def describe(self) -> str:
        """Where requests go, for messages: the base URL, else the provider's API."""
        if self.api_base:
            return self.api_base
        provider = self.litellm_model.partition("/")[0]
        return f"the {provider} API"


def _placeholder_key(endpoint: Endpoint) -> str | None:
    """The key to pass litellm explicitly, where its own look-up would pick the wrong one.

    A vLLM server's key (HOSTED_VLLM_API_KEY) goes to its completions endpoint too,
    which litellm reaches as text-completion-openai and would otherwise send
    OPENAI_API_KEY. Loopback servers need no key, but the OpenAI SDK insists on one
    being set: a placeholder, only for the providers litellm serves through that SDK
    (another provider's key, ANTHROPIC_API_KEY for a proxy on loopback, must reach it).
    """
    provider = endpoint.litellm_model.partition("/")[0]
    if provider == "hosted_vllm" and os.environ.get("HOSTED_VLLM_API_KEY"):
        return os.environ["HOSTED_VLLM_API_KEY"]
    if endpoint.api_base is None:
        return None
    from urllib.parse import urlparse

    from pytest_behavior.fetch.exact import OPENAI_COMPATIBLE

    if provider not in OPENAI_COMPATIBLE:
        return None
    if urlparse(endpoint.api_base).hostname not in _LOOPBACK_HOSTS:
        return None
    if os.environ.get("OPENAI_API_KEY"):
        return None
    return "sk-loopback-no-key"


async def litellm_complete(request: ModelRequest, endpoint: Endpoint, timeout: float) -> Answer:
    """The default completion: one litellm.acompletion call, no retries of its own.

    A request with continuations asks for their exact log-probabilities instead
    (litellm's text-completion path, see exact.py), in one request with the other
    cases that wait for the same endpoint at the same moment (exact_batch.py); a
    ``format: text`` request is sent as raw text to the same endpoint (prompt_format.py).
    """
    key = _placeholder_key(endpoint)
    if request.continuations and request.prompt_format == "chat":
        # A chat prompt is continued as the reply the server's chat template opens.
        from pytest_behavior.fetch.chat_exact import chat_exact_complete

        return await chat_exact_complete(request, endpoint, timeout=timeout, api_key=key)
    if request.continuations:
        # Shares one completions request with the cases waiting beside it (exact_batch.py).
        from pytest_behavior.fetch.exact_batch import batched_exact_complete

        return await batched_exact_complete(request, endpoint, timeout=timeout, api_key=key)
    if request.prompt_format == "text":
        # format: text sends raw text on every path (prompt_format.py).
        from pytest_behavior.spec.prompt_format import text_complete

        return await text_complete(request, endpoint, timeout=timeout, api_key=key)
    litellm = import_litellm()
    kwargs: dict[str, Any] = dict(request.params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if key is not None:
        kwargs["api_key"] = key
    response = await litellm.acompletion(
        model=endpoint.litellm_model,
        messages=request.litellm_messages(),
        timeout=timeout,
        max_retries=0,  # tenacity is the retry layer; the OpenAI SDK would retry twice more
        **kwargs,
    )
    return answer_from_response(response)


class _Handover:
    """Jobs from the producing thread to the senders on the loop, half a queue at a time.

    Refilling in batches wakes the producer (and the loop) once per
    ``concurrency`` jobs rather than once per job: each wake-up is a GIL
    hand-over that the CPU-bound event loop pays for.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        import asyncio

        self._loop = loop
        self._capacity = capacity
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._pushed = 0  # written by the producer only
        self._taken = 0  # written by the loop only
        self.refill = threading.Event()

    def feed(self, jobs: Iterator[Job]) -> bool:
        """Top the queue up from ``jobs``; False once they are all handed over."""
        self.refill.clear()
        room = self._capacity - (self._pushed - self._taken)
        if room <= 0:
            return True
        batch: list[Job | None] = list(itertools.islice(jobs, room))
        more = len(batch) == room
        if not more:
            batch.append(None)  # the end marker
        self._pushed += len(batch)
        self._loop.call_soon_threadsafe(_put_all, self._queue, batch)
        return more

    async def take(self) -> Job | None:
        job = await self._queue.get()
        if job is None:
            self._queue.put_nowait(None)  # the end marker stays for the other senders
            return None
        self._taken += 1
        if self._pushed - self._taken <= self._capacity // 2:
            self.refill.set()
        return job


def _put_all(queue: asyncio.Queue[Job | None], batch: list[Job | None]) -> None:
    for job in batch:
        queue.put_nowait(job)


class ModelClient:
    """Sends requests concurrently on a private event loop, retrying transient errors."""

    def __init__(
        self,
        complete: CompleteFunction,
        *,
        concurrency: int,
        max_attempts: int,
        backoff: float = 0.5,
        request_timeout: float = 120.0,
        max_duration: float | None = None,
        redact: Callable[[str], str] | None = None,
        on_stop: Callable[[str, str], None] | None = None,
        model_concurrency: Callable[[str], int | None] | None = None,
    ) -> None:
        from pytest_behavior.fetch.stopping import StopBook

        self._complete = complete
        self.concurrency = concurrency
        # Per model, at most this many in flight (None: ``concurrency``): a server that
        # serves one request at a time gets one, so no timeout measures a queue.
        self.model_concurrency = model_concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_duration = max_duration
        self._redact = redact if redact is not None else _unchanged
        # When the first fetch starts, the whole run's requests have max_duration left.
        self.deadline: float | None = None
        # ``on_stop(model, reason)`` runs where a model is stopped (a fetch process
        # tells its parent, which tells the others: see fetch/processes.py).
        self.stops = StopBook(
            concurrency=concurrency,
            request_timeout=request_timeout,
            redact=self._redact,
            on_stop=on_stop,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def stop_model(self, model: str, reason: str) -> None:
        """Stop asking ``model`` (another process stopped it); safe from any thread."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.stops.stop, model, reason)
        else:
            self.stops.stop(model, reason)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = _closing_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="pytest-behavior-requests", daemon=True
            )
            self._thread.start()
        return self._loop

    def send(
        self,
        jobs: Iterable[Job],
        on_result: ResultCallback,
        *,
        counts: FetchCounts | None = None,
        on_tick: Callable[[], None] | None = None,
        tick_seconds: float = 0.25,
    ) -> FetchCounts:
        """Run every job, calling ``on_result(key, answer_or_failure)`` as each finishes.

        ``jobs`` is consumed lazily on this thread, at most ``2 x concurrency``
        ahead of the senders. ``on_tick`` runs on this thread every
        ``tick_seconds`` while the fetch goes on (the progress display).
        """
        import asyncio

        from pytest_behavior.fetch.progress import FetchCounts

        counts = counts if counts is not None else FetchCounts()
        if self.max_duration is not None and self.deadline is None:
            self.deadline = time.monotonic() + self.max_duration
        loop = self._ensure_loop()
        handover = _Handover(loop, QUEUED_PER_SLOT * self.concurrency)
        started, stopped = threading.Event(), threading.Event()
        future = asyncio.run_coroutine_threadsafe(
            self._consume(handover, on_result, counts, started, stopped), loop
        )
        wait = tick_seconds if on_tick is not None else 1.0
        next_tick = time.monotonic() + wait

        def tick_if_due() -> None:
            nonlocal next_tick
            if time.monotonic() >= next_tick:
                if on_tick is not None:
                    on_tick()
                next_tick = time.monotonic() + wait

        try:
            remaining = iter(jobs)
            while handover.feed(remaining):
                if not handover.refill.wait(timeout=wait) and future.done():
                    future.result()  # a sender failed: raise its error here
                tick_if_due()
            while True:
                try:
                    future.result(timeout=max(0.0, next_tick - time.monotonic()))
                    return counts
                except TimeoutError:
                    tick_if_due()
        except BaseException:
            # Ctrl-C, or the producer failed: stop sending; what arrived is already passed on.
            future.cancel()
            if started.is_set():  # else it never will: a cancelled future does not start
                stopped.wait(timeout=5)
            raise

    async def _consume(
        self,
        handover: _Handover,
        on_result: ResultCallback,
        counts: FetchCounts,
        started: threading.Event,
        stopped: threading.Event,
    ) -> None:
        started.set()
        import asyncio

        from pytest_behavior.fetch.retrying import AdaptiveLimiter

        limiter = AdaptiveLimiter(self.concurrency)
        stops = self.stops
        time_limit = None
        if self.deadline is not None:
            limit = self.max_duration
            time_limit = asyncio.get_running_loop().call_later(
                max(0.0, self.deadline - time.monotonic()),
                stops.stop_everything,
                f"the fetch reached --behavior-max-duration ({limit:g} s) and stopped asking; "
                "what arrived is cached, so a rerun asks only for the rest",
            )

        gates: dict[str, asyncio.Semaphore | None] = {}

        def gate(model: str) -> Any:
            if model not in gates:
                most = self.model_concurrency(model) if self.model_concurrency else None
                gates[model] = asyncio.Semaphore(most) if most else None
            return gates[model] or contextlib.nullcontext()

        async def sender() -> None:
            while (job := await handover.take()) is not None:
                key, request, endpoint = job
                # Waiting here is neither sent, nor in flight, nor on the request's clock.
                async with gate(request.model):
                    reason = stops.stopped(request.model)
                    if reason is None:
                        counts.sent += 1
                        result = await self._send(request, endpoint, limiter, counts)
                    else:
                        result = RequestFailed.not_run(reason)
                if not isinstance(result, RequestFailed):
                    counts.answered += 1
                elif result.kind is FailureKind.NOT_RUN:
                    counts.not_run += 1  # its model was stopped: not also an error
                    counts.cancelled += reason is None
                else:
                    counts.failed += 1
                on_result(key, result)

        senders = [asyncio.create_task(sender()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*senders)
        finally:
            if time_limit is not None:
                time_limit.cancel()
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            counts.stopped.update(stops.stops)
            stopped.set()

    async def _send(
        self,
        request: ModelRequest,
        endpoint: Endpoint,
        limiter: AdaptiveLimiter,
        counts: FetchCounts,
    ) -> Answer | RequestFailed:
        """One request with its retries, as a task the model's stop can cancel."""
        import asyncio

        attempt = asyncio.create_task(self._attempt_all(request, endpoint, limiter, counts))
        self.stops.track(request.model, attempt)
        started = counts.begin()
        try:
            result = await attempt
            stopped = self.stops.stopped(request.model)
            if isinstance(result, RequestFailed) and stopped is not None:
                # Failed as the model was stopped: one of the stop's cases, not a failure.
                return RequestFailed.not_run(stopped)
            return result
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the fetch itself is being cancelled (Ctrl-C)
            return RequestFailed.not_run(self.stops.stopped(request.model) or "stopped")
        finally:
            counts.end(started)

    async def _attempt_all(
        self,
        request: ModelRequest,
        endpoint: Endpoint,
        limiter: AdaptiveLimiter,
        counts: FetchCounts,
    ) -> Answer | RequestFailed:
        from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

        from pytest_behavior.fetch.retrying import RetryBudget, is_transient, short_reason

        budget = RetryBudget(max_attempts=self.max_attempts, backoff=self.backoff)

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return budget.exhausted(exc, state.attempt_number)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return budget.wait(exc, state.attempt_number)

        retrying = AsyncRetrying(
            stop=stop, wait=wait, retry=retry_if_exception(is_transient), reraise=True
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        counts.retried += 1
                    return await self._attempt_once(request, endpoint, limiter, counts)
        except Exception as exc:  # every failure becomes this case's one-line error
            suffix = f" after {attempts} attempts" if is_transient(exc) else ""
            reason = self._redact(f"{short_reason(exc)}{suffix}")
            return RequestFailed(reason, failure_kind(exc, reason))
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt_once(
        self,
        request: ModelRequest,
        endpoint: Endpoint,
        limiter: AdaptiveLimiter,
        counts: FetchCounts,
    ) -> Answer:
        import asyncio

        from pytest_behavior.fetch.retrying import is_rate_limit, retry_after_seconds, short_reason

        sent_at = await limiter.acquire()
        try:
            result = self._complete(request, endpoint)
            answer = await result if isinstance(result, Awaitable) else result
        except Exception as exc:
            limited = is_rate_limit(exc)
            counts.rate_limited += limited
            await limiter.release(
                sent_at, rate_limited=limited, retry_after=retry_after_seconds(exc)
            )
            if not limited:
                self.stops.failed(request.model, endpoint.describe(), exc, short_reason(exc))
            raise
        except asyncio.CancelledError:
            await limiter.release(sent_at, rate_limited=False)
            raise
        await limiter.release(sent_at, rate_limited=False)
        self.stops.succeeded(request.model)
        if answer.cost:
            counts.cost += answer.cost
        return answer

    def close(self) -> None:
        import asyncio

        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):  # shutting down; nothing left to report to
            asyncio.run_coroutine_threadsafe(_close_litellm_clients(), loop).result(timeout=5)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending_tasks(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = None


def _unchanged(text: str) -> str:
    return text


def _closing_loop() -> asyncio.AbstractEventLoop:
    """An event loop that closes the coroutines a cancelled request left unstarted.

    litellm's ``acompletion`` builds the provider's coroutine in a thread
    (``run_in_executor``) and awaits it afterwards. A model's stop cancels what is in
    flight (stopping.py); a request cancelled during that hand-over drops the
    coroutine unstarted, and Python warns "coroutine ... was never awaited" for each.
    Each such coroutine is tied to the task that asked for it and closed, if it never
    started, when that task ends: it never ran, so nothing was sent.
    """
    import asyncio
    import concurrent.futures
    import inspect

    class ClosingLoop(asyncio.SelectorEventLoop):
        def run_in_executor(  # type: ignore[override]
            self, executor: concurrent.futures.Executor | None, func: Callable[..., Any], *args: Any
        ) -> asyncio.Future[Any]:
            task = asyncio.current_task(self)
            if task is None:
                return super().run_in_executor(executor, func, *args)
            lock = threading.Lock()
            made: list[Any] = []
            ended = False

            def close_unstarted() -> None:
                for result in made:
                    if inspect.getcoroutinestate(result) == inspect.CORO_CREATED:
                        result.close()

            def call() -> Any:
                result = func(*args)
                if asyncio.iscoroutine(result):
                    with lock:
                        made.append(result)
                        if ended:  # the task is gone: no one will await it
                            close_unstarted()
                return result

            def on_task_end(_: object) -> None:
                nonlocal ended
                with lock:
                    ended = True
                    close_unstarted()

            task.add_done_callback(on_task_end)
            return super().run_in_executor(executor, call)

    return ClosingLoop()


async def _close_litellm_clients() -> None:
    """Close the HTTP clients litellm cached on this loop (its aiohttp sessions among them).

    They are bound to this loop, which is about to close, so they are dropped from
    litellm's cache too: a later session builds new ones on its own loop.
    """
    litellm: Any = sys.modules.get("litellm")
    if litellm is None:
        return
    from litellm.llms.custom_httpx import async_client_cleanup

    from pytest_behavior.fetch.exact import OWNED_MARK

    shared: Any = getattr(litellm, "aclient_session", None)
    if getattr(shared, OWNED_MARK, False):
        litellm.aclient_session = None
        await shared.aclose()
    cleanup: Any = async_client_cleanup.close_litellm_async_clients
    await cleanup()
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    flush = getattr(cache, "flush_cache", None)
    if callable(flush):
        flush()


async def _cancel_pending_tasks() -> None:
    """Cancel what litellm left running on the loop (its logging worker) before it stops."""
    import asyncio

    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)

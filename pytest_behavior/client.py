"""Model calls through litellm: concurrency, rate-limit adaptation and retries.

litellm is imported on the first request only (it costs ~3 s), with its cost
map read locally. All requests run on one private event loop in a daemon
thread, so litellm's async clients stay bound to a loop that lives as long as
the session and pytest's own thread never needs an event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pytest_behavior.errors import RequestFailed
from pytest_behavior.model import Answer, ModelRequest

CompleteFunction = Callable[[ModelRequest, "Endpoint"], "Awaitable[Answer] | Answer"]
ResultCallback = Callable[[str, "Answer | RequestFailed"], None]

_TRANSIENT_NAMES = frozenset(
    {
        "RateLimitError",
        "InternalServerError",
        "BadGatewayError",
        "ServiceUnavailableError",
        "Timeout",
        "APIConnectionError",
        "APITimeoutError",
    }
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served: the name litellm routes by, and an optional base URL."""

    litellm_model: str
    api_base: str | None


def import_litellm() -> Any:
    """Import litellm quietly and without network access to its cost map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():
        # pydantic warns about litellm's own types at import; not the user's concern.
        warnings.simplefilter("ignore")
        import litellm
    # pydantic warns about litellm's own types when they are first used.
    warnings.filterwarnings("ignore", message=r".*`ReadOnly` qualifier", category=UserWarning)

    litellm.suppress_debug_info = True
    return litellm


def is_transient(exc: BaseException) -> bool:
    """Errors worth another attempt: rate limits, 5xx, dropped connections, timeouts."""
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


def is_rate_limit(exc: BaseException) -> bool:
    return type(exc).__name__ == "RateLimitError" or getattr(exc, "status_code", None) == 429


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After, when it sent one (seconds form only)."""
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def short_reason(exc: BaseException) -> str:
    """One line: the exception's name and message, without litellm's repeated prefixes."""
    name = type(exc).__name__
    message = " ".join(str(exc).split())
    for prefix in (f"litellm.{name}: ", f"{name}: ", "OpenAIException - "):
        while message.startswith(prefix):
            message = message[len(prefix) :]
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{name}: {message}" if message else name


def _placeholder_key(endpoint: Endpoint) -> str | None:
    """Loopback servers need no key, but the OpenAI SDK insists on one being set."""
    if endpoint.api_base is None:
        return None
    if urlparse(endpoint.api_base).hostname not in _LOOPBACK_HOSTS:
        return None
    if os.environ.get("OPENAI_API_KEY"):
        return None
    return "sk-loopback-no-key"


def answer_from_response(response: Any) -> Answer:
    """Reduce a litellm ModelResponse to the text and top logprobs scoring needs."""
    choice = response.choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or getattr(choice, "text", None) or ""
    logprobs = getattr(choice, "logprobs", None)
    content = _field(logprobs, "content")
    top: tuple[tuple[tuple[str, float], ...], ...] | None = None
    if content:
        top = tuple(
            tuple(
                (str(_field(alt, "token")), float(_field(alt, "logprob")))
                for alt in (_field(position, "top_logprobs") or [])
            )
            or ((str(_field(position, "token")), float(_field(position, "logprob"))),)
            for position in content
        )
    return Answer(
        text=str(text), top_logprobs=top, finish_reason=getattr(choice, "finish_reason", None)
    )


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


async def litellm_complete(request: ModelRequest, endpoint: Endpoint, timeout: float) -> Answer:
    """The default completion: one litellm.acompletion call, no retries of its own."""
    litellm = import_litellm()
    kwargs: dict[str, Any] = dict(request.params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    key = _placeholder_key(endpoint)
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


class AdaptiveLimiter:
    """Bounded in-flight requests that halve on rate limits and grow back on success."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.paused_until = 0.0
        self._condition = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._condition:
            await self._condition.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1
        delay = self.paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def release(self, *, rate_limited: bool, retry_after: float | None = None) -> None:
        async with self._condition:
            self.in_flight -= 1
            if rate_limited:
                self.limit = max(1.0, self.limit / 2)
                pause = retry_after if retry_after is not None else 1.0
                self.paused_until = max(self.paused_until, time.monotonic() + pause)
            else:
                self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
            self._condition.notify_all()


@dataclass
class FetchStats:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    started: float = field(default_factory=time.monotonic)


class ModelClient:
    """Sends requests concurrently on a private event loop, retrying transient errors."""

    def __init__(
        self,
        complete: CompleteFunction,
        *,
        concurrency: int,
        max_attempts: int,
        backoff: float = 0.5,
    ) -> None:
        self._complete = complete
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.stats = FetchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="pytest-behavior-requests", daemon=True
            )
            self._thread.start()
        return self._loop

    def fetch(
        self,
        jobs: Iterable[tuple[str, ModelRequest, Endpoint]],
        on_result: ResultCallback,
    ) -> None:
        """Run every job, calling ``on_result(key, answer_or_failure)`` as each finishes."""
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(self._fetch_all(list(jobs), on_result), loop)
        try:
            future.result()
        except BaseException:
            future.cancel()
            raise

    async def _fetch_all(
        self, jobs: list[tuple[str, ModelRequest, Endpoint]], on_result: ResultCallback
    ) -> None:
        limiter = AdaptiveLimiter(self.concurrency)
        queue: asyncio.Queue[tuple[str, ModelRequest, Endpoint]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not queue.empty():
                key, request, endpoint = queue.get_nowait()
                on_result(key, await self._attempt_all(request, endpoint, limiter))

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _attempt_all(
        self, request: ModelRequest, endpoint: Endpoint, limiter: AdaptiveLimiter
    ) -> Answer | RequestFailed:
        from tenacity import (
            AsyncRetrying,
            RetryCallState,
            retry_if_exception,
            stop_after_attempt,
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = retry_after_seconds(exc) if exc is not None else None
            if hinted is not None:
                return float(min(hinted, 60.0))
            return min(self.backoff * 2 ** (state.attempt_number - 1), 30.0)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.stats.retried += 1
                    return await self._attempt_once(request, endpoint, limiter)
        except Exception as exc:  # every failure becomes this case's one-line error
            self.stats.failed += 1
            attempts = f" after {self.max_attempts} attempts" if is_transient(exc) else ""
            return RequestFailed(f"{short_reason(exc)}{attempts}")
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt_once(
        self, request: ModelRequest, endpoint: Endpoint, limiter: AdaptiveLimiter
    ) -> Answer:
        await limiter.acquire()
        self.stats.sent += 1
        try:
            result = self._complete(request, endpoint)
            answer = await result if isinstance(result, Awaitable) else result
        except Exception as exc:
            limited = is_rate_limit(exc)
            self.stats.rate_limited += limited
            await limiter.release(rate_limited=limited, retry_after=retry_after_seconds(exc))
            raise
        await limiter.release(rate_limited=False)
        self.stats.succeeded += 1
        return answer

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_pending_tasks(), loop).result(timeout=5)
        except Exception:  # noqa: S110 - shutting down; nothing left to report to
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = None


async def _cancel_pending_tasks() -> None:
    """Cancel what litellm left running on the loop (its logging worker) before it stops."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)

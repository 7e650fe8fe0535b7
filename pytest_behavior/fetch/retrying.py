"""Which errors are worth another attempt, how long to wait, and how many requests fly.

The limit follows AIMD, as TCP does: a rate limit (429) halves it and pauses
new requests until the server's ``Retry-After``; each success adds
``1/limit``, so the limit grows back by about one per round trip. Only a request
sent after the last cut may cut again: a burst of 429s answering requests that
were all in flight together halves the limit once, not down to 1.

Rate limits are the provider asking us to slow down, not a failure of the
request, so they do not use up ``--behavior-max-attempts``; a request keeps
trying while the provider keeps rate-limiting, up to ``RATE_LIMIT_PATIENCE``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

# Seconds a single request keeps retrying through rate limits before it fails.
RATE_LIMIT_PATIENCE = 600.0
# Pause after a 429 that carries no Retry-After.
DEFAULT_PAUSE = 1.0
MAX_WAIT = 60.0
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


class AdaptiveLimiter:
    """Bounded in-flight requests that halve on rate limits and grow back on success."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.paused_until = 0.0
        self._last_cut = float("-inf")
        self._condition = asyncio.Condition()

    async def acquire(self) -> float:
        """Wait for a slot (and out any pause); returns the send time for :meth:`release`."""
        async with self._condition:
            await self._condition.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1
        delay = self.paused_until - time.monotonic()
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:  # the model stopped while this waited
                async with self._condition:
                    self.in_flight -= 1
                    self._condition.notify_all()
                raise
        return time.monotonic()

    async def release(
        self, sent_at: float, *, rate_limited: bool, retry_after: float | None = None
    ) -> None:
        async with self._condition:
            self.in_flight -= 1
            now = time.monotonic()
            if rate_limited:
                if sent_at > self._last_cut:
                    self.limit = max(1.0, self.limit / 2)
                    self._last_cut = now
                pause = DEFAULT_PAUSE if retry_after is None else min(retry_after, MAX_WAIT)
                self.paused_until = max(self.paused_until, now + pause)
            else:
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._condition.notify_all()


@dataclass
class RetryBudget:
    """One request's attempts: transient errors count, rate limits spend time instead.

    ``exhausted`` and ``wait`` are tenacity's ``stop`` and ``wait`` for that request.
    """

    max_attempts: int
    backoff: float
    patience: float = RATE_LIMIT_PATIENCE
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    def exhausted(self, exc: BaseException | None, attempt_number: int) -> bool:
        """Called after each failed attempt that is worth retrying."""
        if exc is not None and is_rate_limit(exc):
            return time.monotonic() - self.started >= self.patience
        self.errors += 1
        return self.errors >= self.max_attempts

    def wait(self, exc: BaseException | None, attempt_number: int) -> float:
        """Seconds before the next attempt: the server's Retry-After, else exponential backoff."""
        hinted = retry_after_seconds(exc) if exc is not None else None
        if hinted is not None:
            return min(hinted, MAX_WAIT)
        return float(min(self.backoff * 2 ** (attempt_number - 1), 30.0))


# What providers and SDKs say when a key is missing or wrong, whatever the exception
# type: litellm wraps the OpenAI SDK's "api_key client option must be set" (raised
# before anything is sent) as an InternalServerError "Missing credentials".
_CREDENTIALS_MESSAGE = re.compile(
    r"missing credentials|api_key client option must be set|no api key|invalid api key|"
    r"incorrect api key|invalid x-api-key|api key (is )?(missing|not (set|provided|found))|"
    r"authentication_error|unauthorized",
    re.IGNORECASE,
)
_REFUSED_MESSAGE = re.compile(r"connection refused|connect call failed|errno 111", re.IGNORECASE)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes (litellm wraps the SDK's error, which wraps httpx's)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_credentials_error(exc: BaseException) -> bool:
    """A missing, wrong or unauthorised key: no attempt will succeed until it is fixed."""
    if type(exc).__name__ in ("AuthenticationError", "PermissionDeniedError"):
        return True
    if getattr(exc, "status_code", None) in (401, 403):
        return True
    return bool(_CREDENTIALS_MESSAGE.search(str(exc)))


def is_refused_connection(exc: BaseException) -> bool:
    """Nothing listens at the address: known at once, not worth waiting out."""
    for link in _chain(exc):
        if isinstance(link, ConnectionRefusedError):
            return True
        # httpx's ConnectError, aiohttp's ClientConnectorError: not an HTTP answer (a
        # proxy's 502 "connection refused" body is a server error, worth retrying).
        if "Connect" in type(link).__name__ and _REFUSED_MESSAGE.search(str(link)):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Errors worth another attempt: rate limits, 5xx, dropped connections, timeouts.

    Not a missing or refused key, nor a refused connection, whatever their type says
    (litellm reports both as server errors): those stop the model at once (stopping.py).
    """
    if is_credentials_error(exc) or is_refused_connection(exc):
        return False
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


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


_WRAPPED_ERROR = re.compile(r"^Error code: (\d{3}) - \{.*?['\"]message['\"]: ['\"](.*?)['\"][,}]")


def short_reason(exc: BaseException) -> str:
    """One line: the exception's name and message, without litellm's repeated prefixes."""
    name = type(exc).__name__
    message = " ".join(str(exc).split())
    for prefix in (f"litellm.{name}: ", f"{name}: ", "OpenAIException - "):
        while message.startswith(prefix):
            message = message[len(prefix) :]
    # The openai SDK's "Error code: 503 - {'error': {'message': '...', ...}}": the message.
    wrapped = _WRAPPED_ERROR.match(message)
    if wrapped:
        message = f"{wrapped.group(2)} (status {wrapped.group(1)})"
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{name}: {message}" if message else name

"""When to stop asking a model, and the cases that were then not run.

A run stops sending a model's requests, instead of failing them one by one, when
the error says every other request would fail the same way:

- a permanent error of the model or the account: 401/403 (the key), 404 or an
  unknown model, litellm's "LLM Provider NOT provided" (the name);
- ``BAD_REQUESTS_TO_STOP`` 400s in a row before any success (the request shape;
  one 400 after a success is that case's own problem, e.g. a content filter);
- a stalled endpoint: :func:`stall_limit` failed attempts in a row (timeouts,
  refused or dropped connections, 5xx) with no success in between;
- the whole fetch reaching ``--behavior-max-duration`` (every model stops).

What is in flight for a stopped model is cancelled; every case it did not answer
becomes "not run" (its failure's kind is ``FailureKind.NOT_RUN``, which also crosses
xdist workers through the claims; its outcome's ``not_run`` is set), the items skip
with the stop's reason, and the session fails with one message per model (see
finish.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only annotations: asyncio's import is a third of the plugin's startup without specs.
    import asyncio

BAD_REQUESTS_TO_STOP = 3
_ACCOUNT_STATUSES = frozenset({401, 403})
_ACCOUNT_NAMES = frozenset({"AuthenticationError", "PermissionDeniedError"})
_MISSING_NAMES = frozenset({"NotFoundError"})
_STALL_NAMES = frozenset(
    {
        "Timeout",
        "APITimeoutError",
        "APIConnectionError",
        "InternalServerError",
        "BadGatewayError",
        "ServiceUnavailableError",
    }
)


def refused_reason(where: str) -> str:
    """The one reason a refused connection gives, in every process that meets it."""
    return (
        f"nothing is listening at {where} (connection refused); start the server, "
        "or fix --behavior-api-base"
    )


def key_variable(model: str) -> str:
    """The API-key variable litellm reads for ``model``'s provider (a guess if it says none)."""
    from pytest_behavior.fetch.revision import split_revision

    name = split_revision(model).name
    try:
        from pytest_behavior.session.preflight import missing_key_variables

        missing = missing_key_variables(name, None)
    except Exception:  # litellm cannot tell: name the usual variable
        missing = []
    if missing:
        return missing[0]
    provider = name.partition("/")[0] if "/" in name else "openai"
    return f"{provider.upper()}_API_KEY"


def stall_limit(concurrency: int) -> int:
    """Failed attempts in a row, with no success, after which an endpoint counts as stalled.

    At least a full wave of in-flight requests with the default concurrency (16
    in flight: one wave of timeouts), never fewer than 3 (one request alone).
    """
    return max(3, min(10, concurrency))


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_timeout(exc: BaseException) -> bool:
    return "Timeout" in type(exc).__name__ or _status(exc) == 408


@dataclass
class _ModelState:
    succeeded: bool = False
    bad_requests: int = 0
    stalled_attempts: int = 0
    timeouts: int = 0
    stopped: str | None = None
    tasks: set[asyncio.Task[object]] = field(default_factory=set)


class StopBook:
    """Per model: successes and failures in a row, and whether it was stopped (loop thread)."""

    def __init__(
        self,
        *,
        concurrency: int,
        request_timeout: float,
        redact: Callable[[str], str],
        on_stop: Callable[[str, str], None] | None = None,
    ) -> None:
        self.stall_after = stall_limit(concurrency)
        self.request_timeout = request_timeout
        self._redact = redact
        self._on_stop = on_stop
        self._models: dict[str, _ModelState] = {}
        self.stopped_all: str | None = None

    def _state(self, model: str) -> _ModelState:
        state = self._models.get(model)
        if state is None:
            state = self._models[model] = _ModelState()
        return state

    def stopped(self, model: str) -> str | None:
        """The one-line reason ``model`` is no longer asked, or None."""
        if self.stopped_all is not None:
            return self.stopped_all
        state = self._models.get(model)
        return state.stopped if state is not None else None

    @property
    def stops(self) -> dict[str, str]:
        return {model: state.stopped for model, state in self._models.items() if state.stopped}

    def succeeded(self, model: str) -> None:
        state = self._state(model)
        state.succeeded = True
        state.bad_requests = state.stalled_attempts = state.timeouts = 0

    def failed(self, model: str, where: str, exc: BaseException, reason: str) -> None:
        """Record a failed attempt; stops the model when the error says all would fail."""
        from pytest_behavior.fetch.exact import ExactScoringUnsupported

        if isinstance(exc, ExactScoringUnsupported):
            return  # the method's limit, not the model's: top-k is tried next
        from pytest_behavior.fetch.retrying import is_credentials_error, is_refused_connection

        state = self._state(model)
        status, name = _status(exc), type(exc).__name__
        text = str(exc)
        if status in _ACCOUNT_STATUSES or name in _ACCOUNT_NAMES or is_credentials_error(exc):
            variable = key_variable(model)
            if status is None or status >= 500:
                # Refused by the client before sending (litellm calls it a server error).
                what = f"no API key to call {where} with ({reason}); set {variable}"
            else:
                what = f"{where} refused the credentials ({reason}); set {variable}"
            self.stop(model, f"{what} (export {variable}=...) and check its value")
        elif is_refused_connection(exc):
            self.stop(model, refused_reason(where))
        elif status == 404 or name in _MISSING_NAMES:
            self.stop(
                model,
                f"{where} does not serve this model ({reason}); check the model name "
                "and --behavior-api-base",
            )
        elif "LLM Provider NOT provided" in text:
            self.stop(
                model,
                "litellm does not know which provider serves it; write PROVIDER/NAME, "
                "e.g. openai/gpt-4o-mini or hosted_vllm/my-model with --behavior-api-base",
            )
        elif status == 400 or name == "BadRequestError":
            state.bad_requests += 1
            if not state.succeeded and state.bad_requests >= BAD_REQUESTS_TO_STOP:
                self.stop(
                    model,
                    f"{where} rejected {state.bad_requests} requests in a row and accepted "
                    f"none ({reason}); check the model's parameters (--behavior-scoring, "
                    "max tokens, logprobs) against what the provider accepts",
                )
        elif name in _STALL_NAMES or (status is not None and status >= 500) or _is_timeout(exc):
            state.stalled_attempts += 1
            state.timeouts += _is_timeout(exc)
            if state.stalled_attempts >= self.stall_after:
                if state.timeouts == state.stalled_attempts:
                    what = (
                        f"{state.timeouts} requests in a row timed out after "
                        f"{self.request_timeout:g} s"
                    )
                    hint = (
                        "check that the server is up and answering, or allow more time "
                        "with --behavior-request-timeout"
                    )
                else:
                    what = f"{state.stalled_attempts} requests in a row failed ({reason})"
                    hint = "check that the server is up, reachable and not overloaded"
                self.stop(model, f"{where} stalled: {what} with no answer in between; {hint}")

    def stop(self, model: str, reason: str) -> None:
        state = self._state(model)
        if state.stopped is not None or self.stopped_all is not None:
            return
        state.stopped = self._redact(reason)
        self._cancel(state)
        if self._on_stop is not None:
            self._on_stop(model, state.stopped)

    def stop_everything(self, reason: str) -> None:
        """Every model stops (the fetch reached its time limit)."""
        if self.stopped_all is not None:
            return
        self.stopped_all = reason
        for model, state in self._models.items():
            if state.stopped is None:
                state.stopped = reason
                if self._on_stop is not None:
                    self._on_stop(model, reason)
            self._cancel(state)

    def track(self, model: str, task: asyncio.Task[object]) -> None:
        """Cancel ``task`` if ``model`` stops while it runs."""
        tasks = self._state(model).tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @staticmethod
    def _cancel(state: _ModelState) -> None:
        for task in list(state.tasks):
            task.cancel()

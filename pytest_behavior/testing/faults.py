"""Injectable faults: what a flaky provider does instead of answering."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .. import wire
from .responders import ChatRequest

RequestMatcher: TypeAlias = Callable[[ChatRequest], bool]
FaultKind: TypeAlias = Literal["status", "malformed_json", "hang", "drop_connection"]


@dataclass(frozen=True)
class Fault:
    """One way of not answering. Build them with the static methods."""

    kind: FaultKind
    status_code: int = 0
    retry_after: float | None = None
    message: str = ""
    seconds: float = 0.0

    @staticmethod
    def status(
        code: int,
        *,
        retry_after: float | None = None,
        message: str = "Injected fault from the pytest-behavior test model server",
    ) -> Fault:
        """An HTTP error with an OpenAI-style JSON body; ``Retry-After`` when given."""
        if not 400 <= code <= 599:
            raise ValueError(f"Fault.status needs an HTTP error code (400-599), got {code}")
        return Fault(kind="status", status_code=code, retry_after=retry_after, message=message)

    @staticmethod
    def malformed_json() -> Fault:
        """Status 200 with a body that is not JSON."""
        return Fault(kind="malformed_json")

    @staticmethod
    def hang(seconds: float) -> Fault:
        """Read the request, then send nothing for ``seconds``, then answer normally."""
        if seconds < 0:
            raise ValueError(f"Fault.hang needs seconds >= 0, got {seconds}")
        return Fault(kind="hang", seconds=seconds)

    @staticmethod
    def drop_connection() -> Fault:
        """Close the connection without sending any response."""
        return Fault(kind="drop_connection")

    @property
    def error_type(self) -> str:
        return wire.error_type(self.status_code)


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int
    match: RequestMatcher | None


class FaultQueue:
    """Faults waiting for requests, taken first-in first-out by those they match."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_QueuedFault] = []

    def add(self, fault: Fault, times: int, match: RequestMatcher | None) -> None:
        if times < 1:
            raise ValueError(f"inject needs times >= 1, got {times}")
        with self._lock:
            self._queue.append(_QueuedFault(fault, times, match))

    def take(self, request: ChatRequest) -> Fault | None:
        """The first queued fault that accepts ``request``, counted down once."""
        with self._lock:
            for index, queued in enumerate(self._queue):
                if queued.match is None or queued.match(request):
                    queued.remaining -= 1
                    if queued.remaining == 0:
                        del self._queue[index]
                    return queued.fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(queued.remaining for queued in self._queue)

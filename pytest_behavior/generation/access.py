"""The plugin's client, fetcher and cache, built outside a pytest session.

A :class:`~pytest_behavior.session.run.BehaviorRun` builds these from a pytest Config;
the generate command has none, so it builds them from their constructors here:
the same concurrency, retries and cache, and ``local/...`` models started the
same way (and stopped when :meth:`ModelAccess.close` runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_behavior.cache.disk import ResponseCache
from pytest_behavior.errors import RequestFailed
from pytest_behavior.fetch.client import Endpoint, ModelClient, litellm_complete
from pytest_behavior.fetch.fetcher import Fetcher
from pytest_behavior.values import LOCAL_PREFIX, Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.fetch.progress import FetchCounts

DEFAULT_CACHE_DIR = Path(".behavior_cache") / "responses"


class ModelAccess:
    """Answers to requests: from the cache, else from the model (and then cached)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        api_base: str | None,
        concurrency: int = 4,
        max_attempts: int = 3,
        request_timeout: float = 120.0,
    ) -> None:
        self.api_base = api_base
        self.cache = ResponseCache(cache_dir)
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._timeout = request_timeout
        self._client: ModelClient | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._closers: list[Callable[[], None]] = []
        self.fetcher = Fetcher(self.cache, client=self.client, endpoint=self.endpoint)
        self.sent = 0

    def client(self) -> ModelClient:
        if self._client is None:
            timeout = self._timeout

            def complete(request: ModelRequest, endpoint: Endpoint) -> Any:
                return litellm_complete(request, endpoint, timeout)

            from pytest_behavior.local.model import serving_slots

            self._client = ModelClient(
                complete,
                concurrency=self._concurrency,
                model_concurrency=serving_slots,
                max_attempts=self._max_attempts,
                request_timeout=timeout,
            )
        return self._client

    def endpoint(self, model: str) -> Endpoint:
        """Where ``model`` is served; a local model is started on first use."""
        if model not in self._endpoints:
            if model.startswith(LOCAL_PREFIX):
                from pytest_behavior.local.model import LocalModelServer

                server = LocalModelServer(model)
                self._closers.append(server.stop)
                local = server.start()
                self._endpoints[model] = Endpoint(local.litellm_model, local.api_base)
            else:
                self._endpoints[model] = Endpoint(model, self.api_base)
        return self._endpoints[model]

    def request_base(self, model: str) -> str | None:
        """The api_base a request records (its cache key): none for a local model,
        whose port changes every session while its name identifies it."""
        return None if model.startswith(LOCAL_PREFIX) else self.api_base

    def answers(self, requests: Iterable[ModelRequest]) -> list[Answer | RequestFailed]:
        """Fetch what is not cached, then every request's answer, in order."""
        requests = list(requests)
        counts: FetchCounts = self.fetcher.fetch(requests, planned=len(requests))
        self.sent += counts.sent
        return [self.fetcher.answer(request) for request in requests]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        for closer in reversed(self._closers):
            closer()
        self.cache.close()

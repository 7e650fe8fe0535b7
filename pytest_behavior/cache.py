"""The response cache (diskcache) and the derivation of its keys.

A key covers everything that changes an answer (model, endpoint, the full
messages, every sampling parameter, the sample index) and nothing secret:
parameters that look like credentials are refused before they are hashed, so an
API key can never end up in the cache or in a report. Failed requests are never
stored.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_behavior.model import Answer, ModelRequest

KEY_VERSION = 1
SECRET_MARKERS = ("key", "token", "secret", "password", "authorization", "credential")


def is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS) and lowered != "max_tokens"


def request_key(request: ModelRequest) -> str:
    """A hex digest that identifies the answer a request produces."""
    for name, _ in request.params:
        if is_secret_param(name):
            raise ValueError(f"refusing to derive a cache key from secret parameter {name!r}")
    payload = json.dumps(
        {
            "v": KEY_VERSION,
            "model": request.model,
            "api_base": request.api_base,
            "messages": request.messages,
            "params": sorted(request.params),
            "sample": request.sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """A diskcache directory of answers; opened on first use, safe across processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: Any = None

    def _open(self) -> Any:
        if self._cache is None:
            import diskcache

            self.directory.mkdir(parents=True, exist_ok=True)
            # The default 60 s timeout lets several xdist workers write one directory.
            self._cache = diskcache.Cache(str(self.directory), size_limit=2**34)
        return self._cache

    def get(self, key: str) -> Answer | None:
        raw = self._open().get(key)
        return None if raw is None else Answer.from_dict(raw)

    def __contains__(self, key: str) -> bool:
        return key in self._open()

    def set(self, key: str, answer: Answer) -> None:
        self._open().set(key, answer.to_dict())

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

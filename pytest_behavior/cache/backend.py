"""Which store holds the answers, and what the run says when a shared one fails.

The fetcher, the budget and the run see an :class:`AnswerCache`: a diskcache
folder (``cache.ResponseCache``, the default and the embedded choice) or a Redis
database (``cache.redis_store.RedisCache``, with ``--behavior-cache-url``). Both key
answers by ``request_key``, store answers only, and honour the cache modes.

A Redis that cannot be reached when the run starts stops it with one line, or,
with ``--behavior-cache-fallback=local``, the run warns and uses the local
folder. A Redis that goes away during the run costs no answer of this run: the
run ends with one error saying how many answers could not be stored (a warning
under ``--behavior-cache-fallback=local``). Under xdist each worker hands its
count to the controller, which says it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_behavior.errors import RunRefused
from pytest_behavior.values import Answer

if TYPE_CHECKING:
    from pytest_behavior.cache.redis_store import RedisCache

PLUGIN_NAME = "behavior-shared-cache"
FALLBACKS = ("none", "local")
# What a worker hands the controller about its shared cache.
WORKER_SHARED_CACHE = "behavior_shared_cache"


class AnswerCache(Protocol):
    """What the rest of the plugin uses of a response cache, whichever store it is."""

    mode: str
    stamp: str | None

    @property
    def location(self) -> str:
        """The store as messages name it (a folder, or a URL with its password masked)."""
        ...

    @property
    def reachable(self) -> bool:
        """False once other processes' answers can no longer be seen (a lost Redis)."""
        ...

    def get(self, key: str) -> Answer | None: ...

    def __contains__(self, key: str) -> bool: ...

    def cached_among(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have an answer (a Redis asks for all in one round trip)."""
        ...

    def get_many(self, keys: Sequence[str]) -> dict[str, Answer]:
        """The answers among ``keys``, read together (one query, or one round trip)."""
        ...

    def set_many(
        self,
        entries: Iterable[tuple[str, Answer]],
        origins: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None: ...

    def close(self) -> None: ...


@dataclass
class SharedCacheReport:
    """Registered as a plugin when a cache URL is set: says, once, what went wrong."""

    fallback: str
    # Set on the process that opened the Redis cache.
    cache: RedisCache | None = None
    # Why this process (or a worker) used the local cache instead.
    fell_back: str | None = None
    # Summed over the workers under xdist.
    unstored: int = 0
    lost: str | None = None
    location: str = ""

    def open(
        self, url: str, local: Callable[[], AnswerCache], *, mode: str, stamp: str | None
    ) -> AnswerCache:
        """The Redis cache at ``url``, connected; or the local one, or a stopped run."""
        try:
            from pytest_behavior.cache.redis_store import RedisCache, RedisUnavailable
        except ImportError:  # pragma: no cover - the [redis] extra is missing
            raise RunRefused(
                "pytest-behavior: --behavior-cache-url needs the redis client: "
                "pip install 'pytest-behavior[redis]'"
            ) from None
        cache = RedisCache(url, mode=mode, stamp=stamp)
        self.location = cache.location
        try:
            cache.connect()
        except RedisUnavailable as error:
            if self.fallback != "local":
                raise RunRefused(
                    f"pytest-behavior: {error}: start Redis or correct --behavior-cache-url "
                    "(or ini behavior_cache_url, env PYTEST_BEHAVIOR_CACHE_URL), or pass "
                    "--behavior-cache-fallback=local to use the local cache while it is down"
                ) from None
            replacement = local()
            self.fell_back = (
                f"{error}; this run used the local cache {replacement.location} instead "
                "(--behavior-cache-fallback=local)"
            )
            return replacement
        self.cache = cache
        return cache

    def _gather(self) -> None:
        if self.cache is not None and self.cache.lost is not None:
            self.lost = self.lost or self.cache.lost
            self.unstored += self.cache.unstored
            self.cache = None  # counted once

    def trouble(self) -> str | None:
        self._gather()
        if self.lost is None:
            return None
        return (
            f"the response cache {self.location} went away during the run ({self.lost}); "
            f"{self.unstored} answers received after that could not be stored (they scored "
            "in this run and will be asked again next run): check that Redis is running and "
            "reachable, then run again"
        )

    # -- hooks --------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config: Any = session.config
        if hasattr(config, "workerinput"):
            self._gather()
            config.workeroutput[WORKER_SHARED_CACHE] = {
                "fell_back": self.fell_back,
                "lost": self.lost,
                "unstored": self.unstored,
                "location": self.location,
            }
            return
        if (
            self.trouble() is not None
            and self.fallback != "local"
            and session.exitstatus == pytest.ExitCode.OK
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        told = getattr(node, "workeroutput", {}).get(WORKER_SHARED_CACHE)
        if not told:
            return
        self.fell_back = self.fell_back or told.get("fell_back")
        self.lost = self.lost or told.get("lost")
        self.unstored += int(told.get("unstored") or 0)
        self.location = self.location or str(told.get("location") or "")

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if hasattr(config, "workerinput"):
            return
        trouble = self.trouble()
        if trouble is not None:
            failed = self.fallback != "local"
            terminalreporter.write_sep(
                "=", "behavior: shared cache " + ("error" if failed else "warning"), red=failed
            )
            terminalreporter.write_line(f"pytest-behavior: {trouble}")
        if self.fell_back is not None:
            terminalreporter.write_sep("=", "behavior: shared cache warning", yellow=True)
            terminalreporter.write_line(f"pytest-behavior: {self.fell_back}")


def shared_cache_report(config: pytest.Config) -> SharedCacheReport | None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if isinstance(plugin, SharedCacheReport) else None

"""The response cache in Redis (``--behavior-cache-url redis://host:6379/0``), shared by hosts.

The keys are the diskcache backend's (``request_key``) under ``KEY_PREFIX``, so a
Redis database can hold other things beside them. A value is the answer as JSON
(``Answer.to_dict`` plus who answered and when), never a pickle: reading a shared
database must not run what another host wrote. Errors are never stored, and a key
is never derived from a secret, because the keys come from ``request_key`` as
before. Each SET is atomic and every host writes whole entries, so many hosts
writing at once lose nothing (the same key written twice holds one whole answer).

Writes go out as one pipeline per CacheWriter batch (one round trip), and the
fetcher's look-ups as one MGET per batch of requests; the answers that MGET
brings back are kept (up to ``READ_AHEAD``) for the items that read them next.

A Redis that is unreachable when the run starts raises :class:`RedisUnavailable`
(the caller stops the run with one line, or falls back to the local cache). A
Redis that goes away during the run is never retried for the rest of it (a
black-holed host would cost a timeout per request): answers received after that
are kept in memory, so they still score, and :attr:`RedisCache.unstored` counts
them for the one error the run reports at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from pytest_behavior.cache.reading import StoredEntry
from pytest_behavior.values import Answer

# Version the layout: a later, different encoding gets keys of its own.
KEY_PREFIX = "pytest-behavior:v1:"
URL_SCHEMES = ("redis", "rediss", "unix")
# Bounded so that a host that drops packets costs seconds, not a hung CI job.
CONNECT_TIMEOUT = 3.0
SOCKET_TIMEOUT = 5.0
# redis-py retries a dropped connection; twice with a short backoff is enough for a
# blip, and bounds a dead server at a few connection attempts.
RETRIES = 2
SCAN_BATCH = 1000
# Answers kept from the look-ups for the items to read: a few MB at most, so memory
# stays flat however large the suite; past it, each item reads its answer with a GET.
READ_AHEAD = 8192


def masked_url(url: str) -> str:
    """The URL as it may be shown: a password (``redis://:pw@`` or ``user:pw@``) as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    if parts.password is None and "password=" not in parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        credentials, _, host = netloc.rpartition("@")
        user = credentials.split(":", 1)[0]
        netloc = f"{user}:***@{host}"
    query = "&".join(
        "password=***" if pair.startswith("password=") else pair for pair in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def check_url(text: str) -> str | None:
    """What is wrong with ``text`` as a cache URL, or None when it is one."""
    try:
        scheme = urlsplit(text).scheme
    except ValueError as error:
        return f"it does not parse ({error})"
    if scheme not in URL_SCHEMES:
        return "it is not a redis://, rediss:// or unix:// URL"
    return None


class RedisUnavailable(Exception):
    """Redis could not be used when the run started; the message names the masked URL."""


def _redact(text: str) -> str:
    from pytest_behavior.fetch.redaction import Redactor

    return Redactor.from_environment()(text)


class RedisCache:
    """Answers in a Redis database, with ResponseCache's modes and methods.

    ``readonly`` never writes; ``refresh`` stamps what it writes with ``stamp`` and
    reads only stamped entries, as the diskcache backend does. Construct, then
    :meth:`connect` (which raises RedisUnavailable) before the first use.
    """

    def __init__(
        self,
        url: str,
        *,
        mode: str = "readwrite",
        stamp: str | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.url = url
        self.location = masked_url(url)
        self.mode = mode
        self.stamp = stamp if mode == "refresh" else None
        self.prefix = prefix
        self._client: Any = None
        # The error that took Redis away during the run; nothing is sent after it.
        self.lost: str | None = None
        # Answers received once Redis was gone: kept so this run still scores them.
        self._unstored: dict[str, Answer] = {}
        # Answers the fetcher's look-ups brought back, for the items to read (bounded).
        self._read_ahead: dict[str, Answer] = {}

    # -- lifecycle --------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection and PING; RedisUnavailable when that does not work."""
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        try:
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT,
                retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), RETRIES),
                decode_responses=False,
            )
            client.ping()
        except (redis.RedisError, ValueError, OSError) as error:
            raise RedisUnavailable(
                f"cannot reach the response cache {self.location} ({self._problem(error)})"
            ) from None
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def reachable(self) -> bool:
        """False once Redis went away: other processes' answers can no longer be seen."""
        return self.lost is None

    @property
    def unstored(self) -> int:
        """Answers this run received that Redis did not store."""
        return len(self._unstored)

    # -- reading ----------------------------------------------------------------

    def get(self, key: str) -> Answer | None:
        kept = self._unstored.get(key) or self._read_ahead.get(key)
        if kept is not None or self.lost is not None:
            return kept
        try:
            raw = self._connected().get(self.prefix + key)
        except Exception as error:
            self._went_away(error)
            return None
        data = self._decoded(key, raw)
        return None if data is None else self._answer(key, data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.cached_among([key]))

    def cached_among(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have an answer: one round trip for all of them."""
        found = {key for key in keys if key in self._unstored}
        # The values come along (an answer is a few hundred bytes): the items read the
        # same keys next, in the same order, and find them here without a round trip.
        for key, data in self._stored_among([key for key in keys if key not in found]):
            found.add(key)
            if len(self._read_ahead) < READ_AHEAD:
                self._read_ahead[key] = self._answer(key, data)
        return found

    def get_many(self, keys: Sequence[str]) -> dict[str, Answer]:
        """The answers among ``keys`` (cache.backend.AnswerCache): one round trip."""
        found: dict[str, Answer] = {}
        wanted: list[str] = []
        for key in keys:
            kept = self._unstored.get(key) or self._read_ahead.get(key)
            if kept is not None:
                found[key] = kept
            else:
                wanted.append(key)
        for key, data in self._stored_among(wanted):
            found[key] = self._answer(key, data)
        return found

    def _stored_among(self, keys: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """(key, stored dict) of those of ``keys`` Redis holds, in one MGET; none once
        Redis is lost (it is then said once, see _went_away)."""
        if not keys or self.lost is not None:
            return []
        try:
            values = self._connected().mget([self.prefix + key for key in keys])
        except Exception as error:
            self._went_away(error)
            return []
        decoded = ((key, self._decoded(key, raw)) for key, raw in zip(keys, values, strict=True))
        return [(key, data) for key, data in decoded if data is not None]

    def _decoded(self, key: str, raw: bytes | None) -> dict[str, Any] | None:
        """The stored dict, or None when absent (or, under refresh, from before this run)."""
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if self.stamp is not None:
            # Refresh: anything not written by this run (even garbage) is replaced.
            return data if isinstance(data, dict) and data.get("run") == self.stamp else None
        if not isinstance(data, dict):
            self._foreign(key)
        return data

    def _answer(self, key: str, data: dict[str, Any]) -> Answer:
        try:
            return Answer.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            self._foreign(key)

    def _foreign(self, key: str) -> NoReturn:
        from pytest_behavior.errors import RunRefused

        raise RunRefused(
            f"pytest-behavior: cannot use the response cache {self.location} (the value of "
            f"{self.prefix}{key[:16]}... is not a pytest-behavior answer): another program "
            f"writes under the prefix {self.prefix}. Run again with "
            "--behavior-cache-mode=refresh (every answer is asked again and overwritten), "
            "or point --behavior-cache-url at a database of its own"
        )

    # -- writing ----------------------------------------------------------------

    def set(self, key: str, answer: Answer) -> None:
        self.set_many([(key, answer)])

    def set_many(
        self,
        entries: Iterable[tuple[str, Answer]],
        origins: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Store several answers in one pipeline (one round trip); ``origins`` (key ->
        origin_fields) records who answered beside each answer."""
        if self.mode == "readonly":
            raise RuntimeError("a readonly response cache is never written")
        batch = list(entries)
        if self.lost is None:
            stored_at = time.time()
            try:
                pipeline = self._connected().pipeline(transaction=False)
                for key, answer in batch:
                    data: dict[str, Any] = answer.to_dict()
                    if origins is not None and key in origins:
                        data.update(origins[key])
                    data["stored"] = stored_at
                    if self.stamp is not None:
                        data["run"] = self.stamp
                    pipeline.set(self.prefix + key, json.dumps(data, separators=(",", ":")))
                pipeline.execute()
                return
            except Exception as error:
                self._went_away(error)
        # A batch that failed may be partly stored; all of it counts as not stored.
        self._unstored.update(batch)

    # -- failures ---------------------------------------------------------------

    def _connected(self) -> Any:
        if self._client is None:
            self.connect()
        return self._client

    def _went_away(self, error: BaseException) -> None:
        import redis

        if not isinstance(error, redis.RedisError | OSError):
            raise error
        if self.lost is None:
            # The connection stays open (closed with the run): the writer thread may be
            # using it this moment, and its next error lands here too.
            self.lost = self._problem(error)

    @staticmethod
    def _problem(error: BaseException) -> str:
        text = str(error).strip() or type(error).__name__
        return _redact(text.rstrip("."))


def iter_redis_entries(url: str, prefix: str = KEY_PREFIX) -> Iterator[StoredEntry]:
    """Every answer stored under ``prefix`` in the database at ``url``; read-only.

    For ``python -m pytest_behavior cache info`` on a URL: the same StoredEntry rows as
    a folder gives (``stored_at`` is the time the answer was written).
    """
    cache = RedisCache(url, mode="readonly", prefix=prefix)
    cache.connect()
    client = cache._connected()
    try:
        keys: list[bytes] = []
        for name in client.scan_iter(match=prefix + "*", count=SCAN_BATCH):
            keys.append(name)
            if len(keys) >= SCAN_BATCH:
                yield from _stored(cache, client, keys)
                keys = []
        yield from _stored(cache, client, keys)
    finally:
        cache.close()


def _stored(cache: RedisCache, client: Any, names: list[bytes]) -> Iterator[StoredEntry]:
    if not names:
        return
    for name, raw in zip(names, client.mget(names), strict=True):
        if raw is None:
            continue  # removed since the scan
        key = name.decode()[len(cache.prefix) :]
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}  # another program's value under the prefix: listed, described by nothing
        model, revision, stored = data.get("model"), data.get("revision"), data.get("stored")
        yield StoredEntry(
            key=key,
            stored_at=float(stored) if isinstance(stored, int | float) else 0.0,
            size=len(raw),
            model=model if isinstance(model, str) else None,
            revision=revision if isinstance(revision, str) else None,
            record=data["record"] if isinstance(data.get("record"), str) else None,
        )

"""The response cache on disk (diskcache): opening it, cache modes, what a broken one means.

Failed requests are never stored.
"""

from __future__ import annotations

import shlex
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_behavior.values import Answer

if TYPE_CHECKING:
    pass

# diskcache's eviction policies whose reads change no row (its fast read path): only
# for these is reading its table directly the same as its get().
_READ_WITHOUT_UPDATE = frozenset({"least-recently-stored", "none"})
_KEYS_PER_QUERY = 500


def unusable_cache(directory: Path, error: BaseException | None) -> NoReturn:
    """Stop the run: one message naming the cache folder, what is wrong and what to do."""
    problem = str(error) if error is not None else "an entry is not a pytest-behavior answer"
    if isinstance(error, sqlite3.OperationalError) and "locked" in problem:
        fix = (
            "another process held it too long: let the other run finish, "
            "or give this run a folder of its own with --behavior-cache-dir"
        )
    elif isinstance(error, PermissionError) or "readonly" in problem:
        fix = "make the folder writable, or point --behavior-cache-dir at one that is"
    else:
        fix = (
            "it is truncated, corrupt, unreadable or not a pytest-behavior cache. "
            "Run again with --behavior-cache-mode=refresh (the folder is kept under another "
            "name and every answer is asked again), delete the folder "
            f"(rm -rf {shlex.quote(str(directory.absolute()))}), or point "
            "--behavior-cache-dir elsewhere"
        )
    from pytest_behavior.errors import RunRefused

    raise RunRefused(
        f"pytest-behavior: cannot use the response cache {directory.absolute()} ({problem}): {fix}"
    )


class ResponseCache:
    """A diskcache directory of answers; opened on first use, safe across processes.

    ``mode`` is the run's --behavior-cache-mode. ``readonly`` never creates or
    writes the folder. ``refresh`` stamps what it writes with ``stamp`` (the run's
    id) and reads only stamped entries, so every answer is asked again once, by one
    worker, and earlier answers are overwritten, not deleted first; a corrupt
    folder is moved aside (kept, not deleted) and a new one started.
    """

    def __init__(
        self, directory: Path, *, mode: str = "readwrite", stamp: str | None = None
    ) -> None:
        self.directory = directory
        self.mode = mode
        self.stamp = stamp if mode == "refresh" else None
        self._cache: Any = None
        self._absent = False
        self.moved_aside: Path | None = None

    # Every use of the directory goes through a try: a truncated, garbage, unreadable
    # or foreign cache stops the run with one message (unusable_cache) instead of a
    # sqlite3 traceback. A try costs nothing until it catches.

    def _open(self) -> Any:
        if self._cache is None:
            if self._absent:
                return None
            if self.mode == "readonly" and not self.directory.exists():
                self._absent = True  # nothing cached; readonly creates nothing
                return None
            try:
                self._cache = self._connect()
            except (sqlite3.Error, OSError) as error:
                if self.mode != "refresh" or isinstance(error, PermissionError):
                    unusable_cache(self.directory, error)
                self._move_aside()
                try:
                    self._cache = self._connect()
                except (sqlite3.Error, OSError) as again:
                    unusable_cache(self.directory, again)
        return self._cache

    def _connect(self) -> Any:
        import diskcache

        self.directory.mkdir(parents=True, exist_ok=True)
        # The default 60 s timeout lets several xdist workers write one directory.
        cache = diskcache.Cache(str(self.directory), size_limit=2**34)
        if self.mode == "refresh":
            try:
                _ = "pytest-behavior: probe" in cache  # a garbage database fails here
            except BaseException:
                cache.close()
                raise
        return cache

    def _move_aside(self) -> None:
        """Refresh over a corrupt folder: keep it under another name, start a new one."""
        target = self.directory.with_name(f"{self.directory.name}.corrupt-{int(time.time())}")
        try:
            self.directory.rename(target)
        except OSError as error:
            unusable_cache(self.directory, error)
        self.moved_aside = target

    def _raw(self, key: str) -> Any:
        cache = self._open()
        if cache is None:
            return None
        try:
            raw = cache.get(key)
        except (sqlite3.Error, OSError) as error:
            unusable_cache(self.directory, error)
        stale = self.stamp is not None and (
            not isinstance(raw, dict) or raw.get("run") != self.stamp
        )
        # Refresh: an answer from before this run is about to be replaced.
        return None if stale else raw

    def get(self, key: str) -> Answer | None:
        raw = self._raw(key)
        if raw is None:
            return None
        try:
            return Answer.from_dict(raw)
        except (KeyError, TypeError, ValueError, AttributeError):
            unusable_cache(self.directory, None)

    def __contains__(self, key: str) -> bool:
        if self.stamp is not None:
            return self._raw(key) is not None
        cache = self._open()
        if cache is None:
            return False
        try:
            return key in cache
        except (sqlite3.Error, OSError) as error:
            unusable_cache(self.directory, error)

    def cached_among(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have an answer (cache.backend.AnswerCache): one query for all."""
        if self.stamp is not None:
            return {key for key in keys if self._raw(key) is not None}
        rows = self._rows(keys, "key")
        if rows is None:
            return {key for key in keys if key in self}
        return {key for (key,) in rows}

    def get_many(self, keys: Sequence[str]) -> dict[str, Answer]:
        """The answers among ``keys``, read in one query (the items read ahead with it)."""
        rows = None if self.stamp is not None else self._rows(keys, "key, mode, filename, value")
        if rows is None:
            found = {key: self.get(key) for key in keys}
            return {key: answer for key, answer in found.items() if answer is not None}
        cache = self._cache
        answers: dict[str, Answer] = {}
        for key, mode, filename, value in rows:
            try:
                raw = cache._disk.fetch(mode, filename, value, False)
            except OSError:  # removed (pruned) since the query: read as missing
                continue
            try:
                answers[key] = Answer.from_dict(raw)
            except (KeyError, TypeError, ValueError, AttributeError):
                unusable_cache(self.directory, None)
        return answers

    def _rows(self, keys: Sequence[str], columns: str) -> list[tuple[Any, ...]] | None:
        """``columns`` of the unexpired rows among ``keys``, in one query of diskcache's
        table; None where this diskcache reads otherwise (a policy that updates a row on
        every read, statistics): the caller then asks key by key.

        diskcache reads one key per query (~15 µs each, most of it per query): a cached
        rerun asks every key twice, once to find what to send and once to read it.
        """
        cache = self._open()
        if cache is None:
            return []
        if cache.statistics or cache.eviction_policy not in _READ_WITHOUT_UPDATE:
            return None
        rows: list[tuple[Any, ...]] = []
        now = time.time()
        try:
            # Within sqlite's bound on a statement's parameters (999 before 3.32).
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                part = keys[start : start + _KEYS_PER_QUERY]
                query = (
                    f"SELECT {columns} FROM Cache WHERE key IN ({','.join('?' * len(part))})"
                    " AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)"
                )
                rows += cache._sql(query, (*part, now)).fetchall()
        except (sqlite3.Error, OSError) as error:
            unusable_cache(self.directory, error)
        return rows

    @property
    def location(self) -> str:
        return str(self.directory)

    # A folder on this host: every process's answers stay visible (cache.backend.AnswerCache).
    reachable = True

    def set(self, key: str, answer: Answer) -> None:
        self.set_many([(key, answer)])

    def set_many(
        self,
        entries: Iterable[tuple[str, Answer]],
        origins: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Store several answers in one transaction (one commit); ``origins`` (key ->
        origin_fields) records who answered beside each answer."""
        if self.mode == "readonly":
            raise RuntimeError("a readonly response cache is never written")
        cache = self._open()
        try:
            with cache.transact():
                for key, answer in entries:
                    data = answer.to_dict()
                    if origins is not None and key in origins:
                        data.update(origins[key])
                    if self.stamp is not None:
                        data["run"] = self.stamp
                    cache.set(key, data)
        except (sqlite3.Error, OSError) as error:
            unusable_cache(self.directory, error)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

"""The response cache (diskcache), the derivation of its keys, and its background writer.

A key covers everything that changes an answer (model, endpoint, the full
messages, every sampling parameter, the sample index) and nothing secret:
parameters that look like credentials are refused before they are hashed, so an
API key can never end up in the cache or in a report. Failed requests are never
stored.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import shlex
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from pytest_behavior.values import Answer, ModelRequest

KEY_VERSION = 1
SECRET_MARKERS = ("key", "token", "secret", "password", "authorization", "credential")
_SECRET_PATTERN = re.compile("|".join(SECRET_MARKERS))
# Answers are committed together: one sqlite commit (an fsync) costs about as much
# as a hundred inserts inside it.
WRITE_INTERVAL = 0.05
WRITE_BATCH = 256
# Answers waiting for the writer (a 50 ms batch is ~10 answers from a real provider);
# a full queue makes the event loop wait for the disk, which keeps memory flat even
# when answers arrive faster than sqlite stores them.
WRITE_BACKLOG = 1024


# Built once: json.dumps with options builds a new encoder per call, which was half
# the cost of a key (every case item derives keys several times per run).
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return lowered != "max_tokens" and _SECRET_PATTERN.search(lowered) is not None


def request_key(request: ModelRequest) -> str:
    """A hex digest that identifies the answer a request produces."""
    for name, _ in request.params:
        if is_secret_param(name):
            raise ValueError(f"refusing to derive a cache key from secret parameter {name!r}")
    fields: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": request.model,
        "api_base": request.api_base,
        "messages": request.messages,
        "params": sorted(request.params),
        "sample": request.sample_index,
    }
    if request.revision is not None:
        # The checkpoint behind the name (NAME@REVISION, or what the endpoint reports):
        # a re-deployed model under an old name is asked afresh.
        fields["revision"] = request.revision
    if request.continuations:
        # Exact scoring: only these requests carry continuations, so their keys can
        # never meet a generated (top-k or text) answer's; other keys are unchanged.
        fields["method"] = "exact"
        fields["continuations"] = request.continuations
    payload = _KEY_ENCODER.encode(fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def unusable_cache(directory: Path, error: BaseException | None) -> NoReturn:
    """Stop the run: one message naming the cache folder, what is wrong and what to do."""
    import pytest

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
    pytest.exit(
        f"pytest-behavior: cannot use the response cache {directory.absolute()} ({problem}): {fix}",
        returncode=pytest.ExitCode.USAGE_ERROR,
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
        import time

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

    def set(self, key: str, answer: Answer) -> None:
        self.set_many([(key, answer)])

    def set_many(self, entries: Iterable[tuple[str, Answer]]) -> None:
        """Store several answers in one transaction (one commit)."""
        if self.mode == "readonly":
            raise RuntimeError("a readonly response cache is never written")
        cache = self._open()
        try:
            with cache.transact():
                for key, answer in entries:
                    data = answer.to_dict()
                    if self.stamp is not None:
                        data["run"] = self.stamp
                    cache.set(key, data)
        except (sqlite3.Error, OSError) as error:
            unusable_cache(self.directory, error)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class CacheWriter:
    """Writes answers to the cache from a thread of its own, a batch every few milliseconds.

    The event loop that receives answers must not wait for sqlite, and one commit
    per answer would cost an fsync and a thread wake-up each; a batch every
    ``WRITE_INTERVAL`` costs one of each. sqlite releases the GIL while it
    writes, so the writes overlap the requests. ``close`` writes what is left, so
    an interrupted fetch keeps every answer it received (a killed process loses
    at most the last interval). ``written`` (called after each commit with the
    keys it stored) lets the fetcher forget keys only once they can be read back.
    """

    def __init__(
        self, cache: ResponseCache, written: Callable[[list[str]], None] | None = None
    ) -> None:
        self._cache = cache
        self._written = written
        self._queue: queue.Queue[tuple[str, Answer]] = queue.Queue(WRITE_BACKLOG)
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="pytest-behavior-cache-writer", daemon=True
        )
        self._thread.start()

    def put(self, key: str, answer: Answer) -> None:
        self._queue.put((key, answer))  # blocks only when the backlog is full

    def close(self) -> None:
        """Write everything queued so far, then stop; re-raises a write error."""
        self._closing.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            closing = self._closing.wait(WRITE_INTERVAL)
            while self._write_batch():
                pass
            if closing:
                return

    def _write_batch(self) -> bool:
        """Write up to WRITE_BATCH queued answers; False when there were none."""
        batch: list[tuple[str, Answer]] = []
        while len(batch) < WRITE_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch or self._error is not None:
            return False
        try:
            self._cache.set_many(batch)
        except BaseException as error:  # reported by close(), on the caller's thread
            self._error = error
            return False
        if self._written is not None:
            self._written([key for key, _ in batch])
        return True

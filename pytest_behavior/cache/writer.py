"""The background writer: answers go to the cache from a thread of its own, in batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_behavior.cache.keys import origin_fields
from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache

# Answers are committed together: one sqlite commit (an fsync) costs about as much
# as a hundred inserts inside it.
WRITE_INTERVAL = 0.05
WRITE_BATCH = 256
# Answers waiting for the writer (a 50 ms batch is ~10 answers from a real provider);
# a full queue makes the event loop wait for the disk, which keeps memory flat even
# when answers arrive faster than sqlite stores them.
WRITE_BACKLOG = 1024


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
        self, cache: AnswerCache, written: Callable[[list[str]], None] | None = None
    ) -> None:
        self._cache = cache
        self._written = written
        self._queue: queue.Queue[tuple[str, Answer, ModelRequest | None]] = queue.Queue(
            WRITE_BACKLOG
        )
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="pytest-behavior-cache-writer", daemon=True
        )
        self._thread.start()

    def put(self, key: str, answer: Answer, request: ModelRequest | None = None) -> None:
        self._queue.put((key, answer, request))  # blocks only when the backlog is full

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
        batch: list[tuple[str, Answer, ModelRequest | None]] = []
        while len(batch) < WRITE_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not batch or self._error is not None:
            return False
        try:
            self._cache.set_many(
                [(key, answer) for key, answer, _ in batch],
                {key: origin_fields(request) for key, _, request in batch if request is not None},
            )
        except BaseException as error:  # reported by close(), on the caller's thread
            self._error = error
            return False
        if self._written is not None:
            self._written([key for key, _, _ in batch])
        return True

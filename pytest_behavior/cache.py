"""The response cache (diskcache), the derivation of its keys, and its background writer.

A key covers everything that changes an answer (model, endpoint, the full
messages, every sampling parameter, the sample index) and nothing secret:
parameters that look like credentials are refused before they are hashed, so an
API key can never end up in the cache or in a report. Failed requests are never
stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import queue
import re
import shlex
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from pytest_behavior.values import Answer, ModelRequest

if TYPE_CHECKING:
    from pytest_behavior.cache_backend import AnswerCache

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
    if request.prompt_format is not None:
        # A declared format (prompt_format.py); unset keeps every earlier key valid.
        fields["format"] = request.prompt_format
    if request.continuations:
        # Exact scoring: only these requests carry continuations, so their keys can
        # never meet a generated (top-k or text) answer's; other keys are unchanged.
        fields["method"] = "exact"
        fields["continuations"] = request.continuations
    payload = _KEY_ENCODER.encode(fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def origin_fields(request: ModelRequest) -> dict[str, str]:
    """Who answered, stored beside the answer (never part of the key), so that
    ``python -m pytest_behavior cache info`` and ``cache prune --model`` can tell."""
    fields = {"model": request.model}
    if request.revision is not None:
        fields["revision"] = request.revision
    return fields


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

    def cached_among(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have an answer (cache_backend.AnswerCache; a look-up is ~11 µs)."""
        return {key for key in keys if key in self}

    @property
    def location(self) -> str:
        return str(self.directory)

    # A folder on this host: every process's answers stay visible (cache_backend.AnswerCache).
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


# -- reading a cache folder as it is stored (python -m pytest_behavior cache) ----------

# diskcache's database file in the folder, and the table and mode it stores values with.
DATABASE_NAME = "cache.db"
_PICKLED = 4  # diskcache.core.MODE_PICKLE: how it stores a dict
_ENTRY_QUERY = "SELECT key, store_time, mode, filename, value FROM Cache ORDER BY rowid"


@dataclass(frozen=True)
class StoredEntry:
    """One answer in a cache folder, as ``python -m pytest_behavior cache`` lists it."""

    key: str
    # POSIX time diskcache stored it (a refresh stores it again).
    stored_at: float
    # Bytes the value takes (in the database, or in its own file when large).
    size: int
    # Who answered, when the entry records it beside the answer; the key is a one-way
    # hash of the request, so an entry that does not record it cannot say.
    model: str | None = None
    revision: str | None = None
    # Not an answer but the plugin's own record beside them ("checkpoint",
    # "scoring-method": checkpoint.py), or None for an answer.
    record: str | None = None


class CacheReadError(Exception):
    """A cache folder that is missing, corrupt or not a pytest-behavior response cache.

    ``kind`` says which, so a caller can say what to do: "missing" (no folder),
    "foreign" (not a diskcache folder of answers: another program's, or the wrong
    folder), "corrupt" (a database sqlite cannot read, or an entry it cannot decode).
    """

    def __init__(
        self, path: Path, problem: str, kind: Literal["missing", "foreign", "corrupt"]
    ) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.kind = kind


class _PlainData(pickle.Unpickler):
    """Unpickles builtins only: an answer is a dict of text, numbers and lists, so a value
    naming any class is not one (and is never imported or run)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it names {module}.{name}, and an answer is plain data")


def iter_entries(directory: Path) -> Iterator[StoredEntry]:
    """Every entry of the cache folder ``directory``, oldest row first; read-only.

    Raises CacheReadError, naming the folder and what is wrong with it, for a missing
    folder, a folder without diskcache's database, a corrupt database, or a value that
    is not a pytest-behavior answer. Nothing is created or changed, and no value is
    unpickled beyond plain data.
    """
    if not directory.is_dir():
        problem = "is a file, not a folder" if directory.exists() else "no such folder"
        raise CacheReadError(directory, problem, "missing")
    database = directory / DATABASE_NAME
    if not database.is_file():
        raise CacheReadError(
            directory,
            f"holds no {DATABASE_NAME}, so it is not a pytest-behavior response cache",
            "foreign",
        )
    try:
        # Read-write but never written: a read-only connection to a WAL database leaves
        # its -wal and -shm files behind; this one, like diskcache's, cleans up on close.
        connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=rw", uri=True)
    except sqlite3.Error as error:
        raise CacheReadError(database, f"cannot be opened ({error})", "corrupt") from None
    try:
        try:
            rows = connection.execute(_ENTRY_QUERY)
        except sqlite3.DatabaseError as error:
            raise _database_error(database, error) from None
        while True:
            try:
                row = rows.fetchone()
            except sqlite3.DatabaseError as error:
                raise _database_error(database, error) from None
            if row is None:
                return
            yield _entry(directory, row)
    finally:
        connection.close()


def _database_error(database: Path, error: sqlite3.DatabaseError) -> CacheReadError:
    if "no such table" in str(error) or "no such column" in str(error):
        problem = f"is not a diskcache database ({error}), so not a pytest-behavior response cache"
        return CacheReadError(database, problem, "foreign")
    return CacheReadError(database, f"is truncated, corrupt or not a database ({error})", "corrupt")


def _entry(directory: Path, row: tuple[Any, ...]) -> StoredEntry:
    key, stored_at, mode, filename, value = row
    if not isinstance(key, str) or mode != _PICKLED or not isinstance(stored_at, float | int):
        raise CacheReadError(
            directory, f"entry {key!r:.40} is not a pytest-behavior answer", "foreign"
        )
    try:
        if value is not None:
            raw = bytes(value)
        else:
            stored = (directory / str(filename)).resolve()
            if not stored.is_relative_to(directory.resolve()):
                raise OSError(f"its file {filename!r} lies outside the folder")
            raw = stored.read_bytes()
        data = _PlainData(io.BytesIO(raw)).load()
        if not isinstance(data, dict):
            raise TypeError(f"it holds a {type(data).__name__}, not an answer")
        Answer.from_dict(data)
    except Exception as error:  # a garbage pickle raises almost anything
        # Plain data that is not an answer is another program's; anything else is damage.
        foreign = isinstance(error, TypeError | KeyError | pickle.UnpicklingError)
        raise CacheReadError(
            directory,
            f"entry {key[:16]} is unreadable or not a pytest-behavior answer ({error})",
            "foreign" if foreign else "corrupt",
        ) from None
    model, revision, record = data.get("model"), data.get("revision"), data.get("record")
    return StoredEntry(
        key=key,
        stored_at=float(stored_at),
        size=len(raw),
        model=model if isinstance(model, str) else None,
        revision=revision if isinstance(revision, str) else None,
        record=record if isinstance(record, str) else None,
    )

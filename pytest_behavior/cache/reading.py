"""Reading a cache folder as it is stored, for ``python -m pytest_behavior cache``."""

from __future__ import annotations

import io
import pickle
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_behavior.values import Answer

if TYPE_CHECKING:
    pass

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

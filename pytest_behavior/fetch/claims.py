"""Which xdist worker sends which request: the first to claim it.

Every worker collects the same items, but xdist hands them out while the run
goes on, so no worker knows up front which items it will run. Instead each
worker walks all requests the session needs and sends those it claims first. A
claim is a row in a small sqlite file shared by the workers of one run (named
after xdist's ``testrunuid``): ``INSERT OR IGNORE`` succeeds for exactly one of
them. Every request is sent by one worker, the workers share the load as fast
as each can go, and an item whose answer another worker is still fetching waits
for it in the shared cache.

A request that failed for good keeps its reason and kind in its row, so the other
workers report the same error instead of asking again. A claim whose owner died
(its pid is gone) is taken over. Rows, not files: a 100k-case suite would
otherwise leave 100k files (400 MB of blocks) in the temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from pytest_behavior.errors import FailureKind, RequestFailed

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS claims"
    " (key TEXT PRIMARY KEY, owner INTEGER NOT NULL, reason TEXT, kind TEXT)",
    "CREATE TABLE IF NOT EXISTS workers (pid INTEGER PRIMARY KEY)",
    # A model one worker stopped, and why: the first reason is every worker's.
    "CREATE TABLE IF NOT EXISTS stops (model TEXT PRIMARY KEY, reason TEXT NOT NULL)",
)
# How often a worker looks for the others' stops (one small query per look).
STOPS_LOOK_EVERY = 0.2


def claims_path(testrunuid: str) -> Path:
    return Path(tempfile.gettempdir()) / f"pytest-behavior-claims-{testrunuid}.db"


class RequestClaims:
    """The claims of one test run, seen from one worker process (``owner_pid``)."""

    def __init__(self, path: Path, owner_pid: int | None = None) -> None:
        self.path = path
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self._lock = threading.Lock()  # the event loop thread records failures
        # Autocommit; the data lives only as long as the run, so no fsync is needed.
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.execute("INSERT OR IGNORE INTO workers VALUES (?)", (self.owner_pid,))
        self._stops: dict[str, str] = {}
        self._stops_read = float("-inf")

    def _execute(self, sql: str, *parameters: object) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, parameters)

    def claim(self, key: str) -> bool:
        """True if this process owns ``key``: it did, no one had, or the owner died."""
        inserted = self._execute(
            "INSERT OR IGNORE INTO claims (key, owner) VALUES (?, ?)", key, self.owner_pid
        )
        if inserted.rowcount == 1:
            return True
        owner = self.owner(key)
        if owner is None:  # released meanwhile: try again
            return self.claim(key)
        if owner == self.owner_pid:
            return True
        if _alive(owner):
            return False
        taken = self._execute(
            "UPDATE claims SET owner = ?, reason = NULL, kind = NULL WHERE key = ? AND owner = ?",
            self.owner_pid,
            key,
            owner,
        )
        return taken.rowcount == 1  # another worker may have taken it over first

    def owner(self, key: str) -> int | None:
        row = self._execute("SELECT owner FROM claims WHERE key = ?", key).fetchone()
        return None if row is None else int(row[0])

    def record_failure(self, key: str, failure: RequestFailed) -> None:
        """Tell the other workers that ``key`` failed for good, why and what it means."""
        self._execute(
            "UPDATE claims SET reason = ?, kind = ? WHERE key = ?",
            failure.reason,
            failure.kind.value,
            key,
        )

    def failure(self, key: str) -> RequestFailed | None:
        row = self._execute("SELECT reason, kind FROM claims WHERE key = ?", key).fetchone()
        if row is None or row[0] is None:
            return None
        return RequestFailed(str(row[0]), FailureKind(row[1]))

    def record_stop(self, model: str, reason: str) -> str:
        """Stop ``model`` for every worker; returns the reason that holds (the first)."""
        self._execute("INSERT OR IGNORE INTO stops VALUES (?, ?)", model, reason)
        self._stops_read = float("-inf")
        return self.stop_of(model) or reason

    def stop_of(self, model: str) -> str | None:
        """Why ``model`` was stopped by any worker, or None (read at most every 0.2 s)."""
        now = time.monotonic()
        if now - self._stops_read >= STOPS_LOOK_EVERY:
            rows = self._execute("SELECT model, reason FROM stops").fetchall()
            self._stops = {str(row[0]): str(row[1]) for row in rows}
            self._stops_read = now
        return self._stops.get(model)

    def release(self, key: str) -> None:
        """Give up a claim that will not be answered (an interrupted fetch)."""
        self._execute("DELETE FROM claims WHERE key = ? AND owner = ?", key, self.owner_pid)

    def close(self) -> None:
        """Drop this worker's claims; the last worker to leave removes the file."""
        with self._lock:
            self._db.execute("DELETE FROM claims WHERE owner = ?", (self.owner_pid,))
            self._db.execute("DELETE FROM workers WHERE pid = ?", (self.owner_pid,))
            others = [pid for (pid,) in self._db.execute("SELECT pid FROM workers")]
            self._db.close()
        if not any(_alive(pid) for pid in others):
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process there; never take over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True

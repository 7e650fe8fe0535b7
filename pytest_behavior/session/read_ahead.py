"""Case items read their answers as the prefetch planned them: keyed once, read in batches.

The prefetch derives every case's request and cache key to find what to send.
:class:`PlannedReads` keeps each key, in item order, until its item asks, so an
item neither builds its request nor hashes it again; and since items run in that
order, the item that finds its answer missing from the batch read ahead reads the
next :data:`READ_AHEAD` planned answers in one query (one Redis round trip),
instead of one query each (diskcache's ~15 µs per query was the largest part of
a cached case). Memory stays flat: a key per case not yet run, and at most one
batch of answers.

Items that run in another order (pytest-randomly, ``--sw``) find their answers
missing from each batch; after one batch mostly unread the reads go back to one
key at a time, so nothing is read that is not used.
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_behavior.cache.backend import AnswerCache
    from pytest_behavior.values import Answer, Case

# Answers read together: one query's worth, a few hundred KB of top-k lists at most.
READ_AHEAD = 128


class PlannedReads:
    """Each planned case's key, in the order its items will ask, and a batch read ahead."""

    def __init__(self, cache: AnswerCache) -> None:
        self._cache = cache
        # (id of the Case, model) -> key; a Case lives as long as its item, so its id
        # is stable for the session (cheaper to hash than the case itself).
        self._keys: dict[tuple[int, str], str] = {}
        self._ahead: dict[str, Answer] = {}
        # Keys the last batch asked for: one it did not find is not cached (a failure).
        self._asked: set[str] = set()
        self.in_order = True

    def plan(self, case: Case, model: str, key: str) -> None:
        """Record the key ``case`` is answered under (the prefetch, in item order)."""
        self._keys[(id(case), model)] = key

    def __len__(self) -> int:
        return len(self._keys)

    def take(self, case: Case, model: str) -> Answer | None:
        """The cached answer of a planned case, or None (not planned, or not cached:
        the caller then takes the usual path, which sends, waits or says why)."""
        key = self._keys.pop((id(case), model), None)
        if key is None:
            return None
        answer = self._ahead.pop(key, None)
        if answer is not None:
            return answer
        if key in self._asked:
            return None  # its batch did not find it: not cached
        if not self.in_order:
            return self._cache.get(key)
        if len(self._ahead) > READ_AHEAD // 2:
            # Most of the last batch is unread: the items run in another order.
            self.in_order = False
            self._ahead.clear()
            self._asked.clear()
            return self._cache.get(key)
        batch = [key, *islice(self._keys.values(), READ_AHEAD - 1)]
        self._ahead = self._cache.get_many(batch)
        self._asked = set(batch)
        return self._ahead.pop(key, None)

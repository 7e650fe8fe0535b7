"""Cached answers read in batches: the same answers as one key at a time, in any order.

Against a real diskcache folder: ``get_many`` and ``cached_among`` answer exactly what
``get`` and ``in`` answer (expired entries, refresh stamps, a cache whose reads update
rows included), and PlannedReads gives each planned case its own answer whatever
order the items ask in, reading ahead only while they ask in the planned order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import diskcache
import pytest

from pytest_behavior.cache.disk import ResponseCache
from pytest_behavior.session.read_ahead import READ_AHEAD, PlannedReads
from pytest_behavior.values import Answer, Case


def answer(i: int) -> Answer:
    return Answer(text=f" answer {i}", top_logprobs=(((" Yes", -0.1 * i), (" No", -2.0)),))


def case(i: int) -> Case:
    return Case(
        question=f"q{i}",
        answer_matching=" Yes",
        answers_not_matching=(" No",),
        index=i,
        source="suite.jsonl",
        line=i + 1,
    )


class CountingCache(ResponseCache):
    """A real ResponseCache that counts its reads."""

    def __init__(self, directory: Path, **kwargs: object) -> None:
        super().__init__(directory, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []
        self.singles = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, Answer]:
        self.batches.append(len(keys))
        return super().get_many(keys)

    def get(self, key: str) -> Answer | None:
        self.singles += 1
        return super().get(key)


def filled(directory: Path, count: int, *, missing: Sequence[int] = ()) -> CountingCache:
    cache = CountingCache(directory)
    cache.set_many((f"k{i}", answer(i)) for i in range(count) if i not in missing)
    cache.singles = 0
    return cache


def test_bulk_reads_answer_what_single_reads_answer(tmp_path: Path) -> None:
    cache = filled(tmp_path, 1200, missing=range(0, 1200, 7))
    raw = diskcache.Cache(str(tmp_path))
    raw.set("k3", raw.get("k3"), expire=-1)  # already expired: diskcache's get misses it
    keys = [f"k{i}" for i in range(1300)]  # more than one query's worth, some never written
    single = {key: cache.get(key) for key in keys}
    assert single["k3"] is None and single["k0"] is None and single["k1"] == answer(1)
    assert cache.get_many(keys) == {key: found for key, found in single.items() if found}
    assert cache.cached_among(keys) == {key for key in keys if key in cache}
    assert cache.get_many([]) == {} and cache.cached_among([]) == set()


def test_a_refresh_run_reads_only_its_own_answers_in_bulk_too(tmp_path: Path) -> None:
    filled(tmp_path, 10).close()
    refresh = ResponseCache(tmp_path, mode="refresh", stamp="run-2")
    refresh.set_many([("k4", answer(40))])
    keys = [f"k{i}" for i in range(10)]
    assert refresh.get_many(keys) == {"k4": answer(40)}
    assert refresh.cached_among(keys) == {"k4"}


def test_a_cache_whose_reads_update_rows_is_read_key_by_key(tmp_path: Path) -> None:
    diskcache.Cache(str(tmp_path), eviction_policy="least-recently-used").close()
    cache = filled(tmp_path, 5)  # diskcache keeps the folder's policy
    assert cache.get_many(["k1", "k9"]) == {"k1": answer(1)}
    assert cache.singles == 2  # through get(), which updates the row's access time


def test_planned_cases_read_ahead_in_batches_when_asked_in_order(tmp_path: Path) -> None:
    count = 3 * READ_AHEAD + 5
    cache = filled(tmp_path, count, missing={10, 200})
    reads = PlannedReads(cache)
    cases = [case(i) for i in range(count)]
    for i, one in enumerate(cases):
        reads.plan(one, "m", f"k{i}")
    got = [reads.take(one, "m") for one in cases]
    assert got == [None if i in (10, 200) else answer(i) for i in range(count)]
    assert cache.batches == [READ_AHEAD] * 3 + [5]
    assert cache.singles == 0  # a case not cached is known from its batch: no second look
    assert len(reads) == 0 and reads.take(cases[0], "m") is None  # each taken once


def test_cases_asked_out_of_order_get_their_own_answers(tmp_path: Path) -> None:
    count = 2 * READ_AHEAD
    cache = filled(tmp_path, count)
    reads = PlannedReads(cache)
    cases = [case(i) for i in range(count)]
    for i, one in enumerate(cases):
        reads.plan(one, "m", f"k{i}")
    order = list(range(count))
    order = order[1::2] + order[0::2]  # every other case, then the rest
    got = {i: reads.take(cases[i], "m") for i in order}
    assert got == {i: answer(i) for i in range(count)}
    assert not reads.in_order
    assert len(cache.batches) <= 2  # then key by key: nothing read that is not used


def test_two_cases_under_one_key_each_get_the_answer(tmp_path: Path) -> None:
    cache = filled(tmp_path, 3)
    reads = PlannedReads(cache)
    first, second, third = case(0), case(1), case(2)
    reads.plan(first, "m", "k1")
    reads.plan(second, "m", "k1")  # the same question twice in a file
    reads.plan(third, "m", "k2")
    assert reads.take(first, "m") == answer(1)
    assert reads.take(second, "m") is None  # the caller's usual path reads it
    assert reads.take(third, "m") == answer(2)


@pytest.mark.parametrize("model", ["m", "other"])
def test_a_case_planned_for_another_model_is_not_taken(tmp_path: Path, model: str) -> None:
    cache = filled(tmp_path, 2)
    reads = PlannedReads(cache)
    one = case(0)
    reads.plan(one, "m", "k0")
    assert (reads.take(one, model) is None) == (model != "m")

"""The stable split of requests into parts, by their cache key.

A request's key (``cache.keys.request_key``, a sha256 hex digest) already identifies
it on every machine, so its part is read off the key: the same request falls in
the same part whatever the item order, ``-k`` selection, xdist layout or host.
Shards (``--behavior-shard I/N``) and fetch processes both divide work this way.
"""

from __future__ import annotations

from dataclasses import dataclass

# 64 bits of the digest: more than enough to spread any count evenly.
_PREFIX = 16


def shard_of(key: str, count: int) -> int:
    """The part (0 to ``count - 1``) the request with this key belongs to."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    return int(key[:_PREFIX], 16) % count


# What --behavior-shard accepts, said in every refusal.
SHARD_FORM = "I/N with 1 <= I <= N, e.g. 2/4 for the second of four shards"


class ShardSpecError(ValueError):
    """A shard that is not ``I/N``; the message says what to write instead."""


@dataclass(frozen=True)
class ShardSpec:
    """One shard of a sharded run: ``index`` counts from 1, as CI matrices number jobs."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ShardSpecError(f"must be {SHARD_FORM}; got {self.label}")

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        index, slash, count = text.strip().partition("/")
        if not slash or not index.strip().isdigit() or not count.strip().isdigit():
            raise ShardSpecError(f"must be {SHARD_FORM}; got {text!r}")
        return cls(int(index), int(count))

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def file_name(self) -> str:
        return f"shard-{self.index}-of-{self.count}.json"

    def owns(self, key: str) -> bool:
        """Whether the request with this key is this shard's to send."""
        return shard_of(key, self.count) == self.index - 1

"""``cache info|prune|clear [--dir DIR | --url URL]``: what the response cache holds,
and removing it.

The cache is a diskcache folder (``.behavior_cache/responses`` by default) outside
``.pytest_cache``, so ``pytest --cache-clear`` keeps the answers that were paid for;
this command is how to look at them and throw them away. It reads the folder with
cache.iter_entries (read-only) and removes entries through diskcache itself, and
only from a folder every entry of which is a pytest-behavior answer. With ``--url``
(or ``PYTEST_BEHAVIOR_CACHE_URL``) it reads a shared Redis cache instead
(cache.redis_store.iter_redis_entries) and removes its keys there.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_behavior.commands.cache_location import CacheLocation

if TYPE_CHECKING:
    from pytest_behavior.cache.reading import StoredEntry
    from pytest_behavior.commands.common import Subparsers

SECONDS_PER_DAY = 86400.0
NOT_RECORDED = (
    "not recorded: an entry holds only the answer, and its key is a one-way hash of the "
    "request (model, endpoint, messages, parameters)"
)


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show, prune or clear the response cache",
        description="Show what the response cache holds, prune entries from it, or clear it. "
        "pytest --cache-clear does not touch this cache: it lies outside .pytest_cache.",
        epilog="examples: cache info; cache prune --older-than 30 --dry-run; "
        "cache clear --dir ci-cache/responses",
    )
    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the cache folder (default: the one a run here uses: env "
        "PYTEST_BEHAVIOR_CACHE_DIR, else ini behavior_cache_dir, else "
        ".behavior_cache/responses in the rootdir)",
    )
    folder.add_argument(
        "--url",
        metavar="URL",
        help="a shared Redis cache, redis://[:PASSWORD@]HOST:PORT/DB (default: env "
        "PYTEST_BEHAVIOR_CACHE_URL when --dir is not given)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "info",
        parents=[folder],
        help="folder, size, entries, models and dates",
        description="Show the cache folder, its size on disk, its entries (per model where "
        "recorded) and when the oldest and newest were stored.",
    )
    prune = actions.add_parser(
        "prune",
        parents=[folder],
        help="remove the entries of one model and/or older than some days",
        description="Remove the entries that match every criterion given; the next run asks "
        "the model again for exactly those.",
    )
    prune.add_argument(
        "--model",
        metavar="MODEL",
        help="entries answered by MODEL (of the entries that record their model)",
    )
    prune.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="entries stored more than DAYS days ago (fractions allowed: 0.5 is 12 hours)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="show what would be removed; remove nothing"
    )
    actions.add_parser(
        "clear",
        parents=[folder],
        help="remove every entry",
        description="Remove every entry of the cache; refused for a folder that is not a "
        "pytest-behavior response cache.",
    )


@dataclass(frozen=True)
class Store:
    """Where the entries are: what to call it, and how to remove keys from it."""

    name: str
    delete: Callable[[Sequence[str]], None]
    location: CacheLocation | None = None  # None: a Redis URL
    # The plugin's own records beside the answers (checkpoint fingerprints, scoring-method
    # choices): not counted as entries; removed with their model's answers, or by clear.
    records: tuple[StoredEntry, ...] = ()


def _answers_apart(store: Store, entries: list[StoredEntry]) -> tuple[Store, list[StoredEntry]]:
    records = tuple(entry for entry in entries if entry.record is not None)
    answers = [entry for entry in entries if entry.record is None]
    return replace(store, records=records), answers


def run(arguments: argparse.Namespace) -> int:
    from pytest_behavior.commands.cache_location import locate_cache

    url = arguments.url
    if url is None and arguments.dir is None:
        url = os.environ.get("PYTEST_BEHAVIOR_CACHE_URL") or None
    action: Callable[[Store, list[StoredEntry], argparse.Namespace], int] = {
        "info": _info,
        "prune": _prune,
        "clear": _clear,
    }[arguments.action]
    if url is not None:
        store, entries = _redis_store(url)
        return action(*_answers_apart(store, entries), arguments)
    location = locate_cache(arguments.dir, start=Path.cwd())
    directory = location.directory
    store = Store(str(directory), lambda keys: _delete(directory, keys), location)
    return action(*_answers_apart(store, _entries(directory, arguments.action)), arguments)


def _redis_store(url: str) -> tuple[Store, list[StoredEntry]]:
    from pytest_behavior.commands.common import CommandError

    try:
        from pytest_behavior.cache.redis_store import (
            KEY_PREFIX,
            RedisUnavailable,
            iter_redis_entries,
            masked_url,
        )

        shown = masked_url(url)
        entries = list(iter_redis_entries(url))
    except ImportError:
        raise CommandError(
            "--url", "needs the redis client: pip install 'pytest-behavior[redis]'"
        ) from None
    except RedisUnavailable as error:
        raise CommandError("--url", str(error)) from None

    def delete(keys: Sequence[str]) -> None:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        try:
            pipeline = client.pipeline(transaction=False)
            for key in keys:
                pipeline.delete(KEY_PREFIX + key)
            pipeline.execute()
        except redis.RedisError as error:
            raise CommandError(shown, f"cannot remove entries ({error})") from None
        finally:
            client.close()

    return Store(shown, delete), entries


def _entries(directory: Path, action: str) -> list[StoredEntry]:
    from pytest_behavior.cache.reading import CacheReadError, iter_entries
    from pytest_behavior.commands.common import CommandError

    try:
        return list(iter_entries(directory))
    except CacheReadError as error:
        if error.kind == "missing":
            fix = "nothing is cached there yet; pass --dir with the folder a run caches in"
        elif error.kind == "foreign" and action != "clear":
            fix = "pass --dir with the folder a run caches in (its --behavior-cache-dir)"
        elif action == "clear":
            fix = (
                "clear removes only what it can read as answers; if the folder is yours, "
                f"delete it (rm -rf {_quoted(directory)})"
            )
        else:
            fix = (
                f"delete it (rm -rf {_quoted(directory)}), or run pytest once with "
                "--behavior-cache-mode=refresh, which keeps it under another name"
            )
        raise CommandError(error.path, f"{error.problem}; {fix}") from None


def _info(store: Store, entries: list[StoredEntry], _: argparse.Namespace) -> int:
    from pytest_behavior.commands.common import size_text

    location = store.location
    if location is None:
        size = sum(entry.size for entry in entries)
        lines = [
            f"redis:    {store.name}",
            f"entries:  {len(entries)}, {size_text(size)} of values",
        ]
    else:
        directory = location.directory
        lines = [
            f"folder:   {directory.absolute()} ({location.source})",
            f"entries:  {len(entries)}, {size_text(_disk_size(directory))} on disk",
        ]
    if entries:
        lines.append(f"stored:   {_stored_range(entries)}")
        lines += _model_lines(entries)
    if store.records:
        lines.append(
            f"records:  {len(store.records)} (checkpoint fingerprints and scoring-method "
            "choices; a run asks again for what is removed)"
        )
    where = _dir_option(location) if location is not None else f" --url {store.name}"
    lines += [
        f"pytest --cache-clear does NOT touch this {'folder' if location else 'cache'}: it "
        "lies outside .pytest_cache.",
        f"To remove it: python -m pytest_behavior cache clear{where}; part of "
        "it: cache prune --model MODEL or --older-than DAYS; to ask again and overwrite: "
        "pytest --behavior-cache-mode=refresh",
    ]
    print("\n".join(lines))
    return 0


def _prune(store: Store, entries: list[StoredEntry], arguments: argparse.Namespace) -> int:
    from pytest_behavior.commands.common import CommandError

    model, older_than = arguments.model, arguments.older_than
    directory = store.name
    if model is None and older_than is None:
        raise CommandError(
            directory,
            "say what to prune: --model MODEL, --older-than DAYS, or both "
            "(cache clear removes every entry)",
        )
    if model is not None and entries and all(entry.model is None for entry in entries):
        raise CommandError(
            directory,
            f"--model {model}: the entries do not record which model answered them (an entry "
            "holds only the answer, and its key is a one-way hash of the request), so none can "
            f"be chosen by model; what can be pruned is by age: --older-than DAYS (stored "
            f"{_stored_range(entries)}), or everything: cache clear",
        )
    cutoff = time.time() - older_than * SECONDS_PER_DAY if older_than is not None else None
    chosen = [
        entry
        for entry in entries
        if (model is None or entry.model == model) and (cutoff is None or entry.stored_at < cutoff)
    ]
    criteria = " and ".join(
        ([f"of model {model}"] if model is not None else [])
        + ([f"stored more than {older_than:g} days ago"] if older_than is not None else [])
    )
    unrecorded = sum(1 for entry in entries if entry.model is None)
    if model is not None and unrecorded:
        print(f"{unrecorded} entries do not record their model and are kept")
    if not chosen:
        print(f"nothing to prune in {directory}: no entry {criteria} ({len(entries)} entries)")
        return 0
    if model is not None and not arguments.dry_run:
        # The model's checkpoint records go with its answers: a run checks it afresh.
        store.delete([record.key for record in store.records if record.model == model])
    return _remove(store, chosen, len(entries), dry_run=arguments.dry_run, what=criteria)


def _clear(store: Store, entries: list[StoredEntry], _: argparse.Namespace) -> int:
    if store.records:
        store.delete([record.key for record in store.records])
    if not entries:
        print(f"{store.name} holds no entries; nothing to remove")
        return 0
    return _remove(store, entries, len(entries), dry_run=False, what="")


def _remove(
    store: Store, chosen: Sequence[StoredEntry], total: int, *, dry_run: bool, what: str
) -> int:
    from pytest_behavior.commands.common import size_text

    summary = f"{len(chosen)} of {total} entries" + (f" ({what})" if what else "")
    size = size_text(sum(entry.size for entry in chosen))
    directory = store.name
    if dry_run:
        print(f"would remove {summary}, {size}, from {directory}:")
        print("\n".join(f"  {line}" for line in [*_model_lines(chosen), _stored_range(chosen)]))
        print("dry run: nothing was removed")
        return 0
    store.delete([entry.key for entry in chosen])
    print(f"removed {summary}, {size}, from {directory}; {total - len(chosen)} left")
    return 0


def _delete(directory: Path, keys: Sequence[str]) -> None:
    """Delete through diskcache, which also removes the files of large values."""
    import sqlite3

    import diskcache

    from pytest_behavior.commands.common import CommandError

    try:
        cache = diskcache.Cache(str(directory))
        try:
            with cache.transact():
                for key in keys:
                    cache.delete(key)
        finally:
            cache.close()
    except (sqlite3.Error, OSError, diskcache.Timeout) as error:
        raise CommandError(
            directory,
            f"cannot remove entries ({error}); let a run that uses the folder finish, "
            "or make it writable",
        ) from None


def _model_lines(entries: Sequence[StoredEntry]) -> list[str]:
    counts = Counter(
        entry.model if entry.revision is None else f"{entry.model} @ {entry.revision}"
        for entry in entries
        if entry.model is not None
    )
    if not counts:
        return [f"models:   {NOT_RECORDED}"]
    unrecorded = sum(1 for entry in entries if entry.model is None)
    width = max(len(name) for name in counts)
    lines = ["per model:"]
    lines += [f"  {name:<{width}}  {count}" for name, count in sorted(counts.items())]
    if unrecorded:
        lines.append(f"  {'(not recorded)':<{width}}  {unrecorded}")
    return lines


def _stored_range(entries: Sequence[StoredEntry]) -> str:
    times = [entry.stored_at for entry in entries]
    return f"{_moment(min(times))} (oldest) to {_moment(max(times))} (newest)"


def _moment(posix: float) -> str:
    return datetime.fromtimestamp(posix, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _disk_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def _dir_option(location: CacheLocation) -> str:
    return f" --dir {_quoted(location.directory)}" if location.source == "--dir" else ""


def _quoted(directory: Path) -> str:
    return shlex.quote(str(directory.absolute()))


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a number of days >= 0, e.g. 30 or 0.5; got {text!r}"
        )
    return value

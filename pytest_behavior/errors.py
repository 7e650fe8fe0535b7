"""Exceptions that users see, each rendered as a few plain lines, never a traceback."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import pytest

# How much of a value an error message quotes: enough to recognise it, never a
# whole file (a value can be megabytes, or an alias bomb that expands without end).
QUOTED_LENGTH = 60
_QUOTED_DEPTH = 3
# Longer ints have no str() in Python 3.11 (sys.int_info.default_max_str_digits).
_LONGEST_QUOTED_INT_BITS = 4000


def brief(value: object, limit: int = QUOTED_LENGTH) -> str:
    """``repr(value)`` cut to ``limit`` characters, built without walking more than it shows."""
    text = _brief(value, limit + 1, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten(text: str, limit: int = QUOTED_LENGTH) -> str:
    """``text`` itself (unquoted), cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, width: int = 100) -> str:
    """``text`` on one line (runs of white space joined), cut to ``width`` characters:
    how the terminal quotes a case's question (reports keep it whole)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _brief(value: object, budget: int, depth: int) -> str:
    budget = max(budget, 1)
    if isinstance(value, str | bytes):
        return repr(value[:budget])
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > _LONGEST_QUOTED_INT_BITS:
            return f"<a whole number of about {int(value.bit_length() * 0.30103)} digits>"
        return repr(value)[:budget]
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        opening, closing = ("{", "}") if isinstance(value, Mapping | set | frozenset) else "[]"
        if depth >= _QUOTED_DEPTH:
            return opening + "..." + closing
        parts: list[str] = []
        used = 0
        items = value.items() if isinstance(value, Mapping) else value
        for item in items:  # stops once the budget is spent, however long the value
            if used >= budget:
                parts.append("...")
                break
            if isinstance(value, Mapping):
                key, item_value = item
                part = f"{_brief(key, budget - used, depth + 1)}: "
                part += _brief(item_value, budget - used - len(part), depth + 1)
            else:
                part = _brief(item, budget - used, depth + 1)
            parts.append(part)
            used += len(part) + 2
        return opening + ", ".join(parts) + closing
    return f"<{type(value).__name__}>"


class SpecError(Exception):
    """A problem in a spec or source file, located by file and line, with the fix."""

    def __init__(self, path: str, line: int | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = f"{where}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class FailureKind(enum.Enum):
    """What a failed request means for the run, set where the failure is made: readers
    test this, never the text of the reason (which is only for people)."""

    ERROR = "error"  # this case's own failure, reported as an error
    NOT_RUN = "not run"  # its model was stopped, or a readonly cache lacks it: skipped
    EXACT_UNSUPPORTED = "exact unsupported"  # the endpoint serves no prompt log-probabilities
    LOGPROB_REFUSED = "logprob refused"  # the endpoint takes no logprobs/top_logprobs


# How a not-run failure's text opens, where it is listed among other failures (a shard
# file, a generation note). Only text is composed with it: whether a case was run is
# its kind (FailureKind.NOT_RUN) or its outcome's ``not_run``, never this prefix.
NOT_RUN_PREFIX = "not run: "


def not_run_text(why: str) -> str:
    """How a case that was not asked reads among failures: ``not run: <why>``."""
    return NOT_RUN_PREFIX + why


class RequestFailed(Exception):
    """A model request that failed for good (after retries); one line says why, and
    ``kind`` what it means (:class:`FailureKind`)."""

    def __init__(self, reason: str, kind: FailureKind = FailureKind.ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind

    @classmethod
    def not_run(cls, why: str) -> RequestFailed:
        """A case not asked: ``why`` its model was stopped (or the cache did not hold it)."""
        return cls(not_run_text(why), FailureKind.NOT_RUN)

    @property
    def why(self) -> str:
        """The reason alone: a not-run failure's without the "not run: " its text opens
        with (its kind says so; the skip and the "not run" summary say "not run" in
        their own words), any other failure's as it is."""
        if self.kind is FailureKind.NOT_RUN:
            return self.reason.removeprefix(NOT_RUN_PREFIX)
        return self.reason

    def __reduce__(self) -> tuple[type[RequestFailed], tuple[str, FailureKind]]:
        # The kind crosses to fetch processes and back (Exception pickles only args).
        return (type(self), (self.reason, self.kind))


class RunRefused(pytest.exit.Exception):  # type: ignore[misc,name-defined]
    """The run cannot go on (a preflight check, an unusable cache, a budget): one line
    per problem, exit status 4.

    An Exit, so it ends the session from anywhere (a hook, an item, an xdist worker);
    plugin.py turns it into a ``pytest.UsageError`` at the top, which pytest prints as
    clean ``ERROR: ...`` lines instead of its ``! _pytest.outcomes.Exit: ... !``.
    """

    def __init__(self, lines: Sequence[str] | str) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines), returncode=pytest.ExitCode.USAGE_ERROR)


class SpecNotCollectedWarning(pytest.PytestWarning):
    """A YAML file that looks like a behavior spec but does not match ``behavior_files``."""

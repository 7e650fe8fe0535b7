"""Exceptions that users see, each rendered as a few plain lines, never a traceback."""

from __future__ import annotations


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


class RequestFailed(Exception):
    """A model request that failed for good (after retries); one line says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

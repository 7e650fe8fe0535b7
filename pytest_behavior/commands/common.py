"""What every command shares: its error, the subparsers type, and writing an output file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class CommandError(Exception):
    """Bad input: printed as one line, ``error: <where>: <problem>``, and exit status 2.

    ``problem`` says what is wrong and what to write instead.
    """

    def __init__(self, where: Path | str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def whole_count(text: str) -> int:
    """An argparse type: a whole number >= 0 (``--flips 3``)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0; got {text!r}")
    return value


def write_output(path: Path, text: str) -> str:
    """Write one output file (creating its folder); the line that says so."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandError(path, f"cannot write it ({error.strerror or error})") from None
    return f"wrote {path}"


def size_text(size: int) -> str:
    """Bytes as a person reads them: 512 B, 12.3 kB, 4.5 MB."""
    if size < 1000:
        return f"{size} B"
    amount, unit = size / 1000, "kB"
    for larger in ("MB", "GB", "TB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, larger
    return f"{amount:.1f} {unit}"

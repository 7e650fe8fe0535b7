"""Spec and source files read as text, within bounds, refusing what is not UTF-8 text.

A file that is too large, binary or in another encoding is a :class:`SpecError`
naming the file (and the line, where there is one), never a traceback.
Operating-system errors (a missing file, no permission) are the caller's to
word, since only it knows whether to point at the spec line that names the file.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pytest_behavior.errors import SpecError

MEBIBYTE = 2**20
# A spec with more inline cases than this reads slowly as YAML; JSONL is the format for many.
MAX_SPEC_BYTES = 10 * MEBIBYTE
# The largest file of Anthropic's release is a few tens of megabytes.
MAX_SOURCE_BYTES = 256 * MEBIBYTE


def read_text_file(path: Path, shown: str, *, max_bytes: int, what: str) -> str:
    """The text of ``path``, with line ends as :meth:`Path.read_text` gives them."""
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block or never end
        raise SpecError(shown, None, f"{what} is not a regular file")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SpecError(
            shown,
            None,
            f"{what} is larger than {max_bytes // MEBIBYTE} MB",
            "move inline cases to a JSONL source (source: cases.jsonl)"
            if max_bytes < MAX_SOURCE_BYTES
            else "split it into smaller files",
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SpecError(
            shown,
            data.count(b"\n", 0, nul) + 1,
            f"{what} is not text (it holds NUL bytes)",
            "is this a binary or UTF-16 file? save it as UTF-8 text",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(
            shown,
            data.count(b"\n", 0, error.start) + 1,
            f"{what} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})",
            "save it as UTF-8",
        ) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text

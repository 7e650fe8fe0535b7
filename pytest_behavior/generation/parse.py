"""A completion -> the statements it lists, whatever list style the model chose.

Models write numbered lists ("1." "1)" "(1)"), bullets ("-" "*" "•"), quoted
lines, or paragraphs separated by blank lines. Each line is stripped of its
marker and surrounding quotes; lines that are too short or too long to be one
statement (a preamble, a run-on paragraph) are dropped, as is anything after the
model starts a new section ("Statements they would disagree with:").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 3
MAX_CHARACTERS = 300
# A completion rarely lists more; more is a runaway repetition.
MAX_STATEMENTS = 50

_MARKER = re.compile(
    r"""^\s*(?:
        \(?\d{1,3}\s*[.):\]]     # 1.  1)  (1)  1:  1]
      | [-*\u2022\u00b7\u2023\u25e6\u2013\u2014+]              # bullets
      | \#{1,3}                  # a stray markdown heading mark
    )\s*""",
    re.VERBOSE,
)
_NUMBERED = re.compile(r"^\s*\(?\d{1,3}\s*[.):\]]")
_BULLET = re.compile(r"^\s*[-*\u2022\u00b7\u2023\u25e6\u2013\u2014+]\s")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
# "Here are some statements:" and similar preambles end with a colon.
_PREAMBLE = re.compile(r":\s*$")


@dataclass(frozen=True)
class ParsedList:
    """What one completion held: its statements, and the lines dropped."""

    statements: tuple[str, ...]
    dropped: int


def clean_line(line: str) -> str:
    """A line without its list marker, surrounding quotes, markdown emphasis and spaces."""
    text = _MARKER.sub("", line, count=1).strip()
    text = text.strip("*_").strip()
    # Quotes around the whole statement, possibly with a trailing comma.
    text = text.rstrip(",").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    elif text and text[0] in _QUOTES and text.count(text[0]) == 1:
        text = text[1:].strip()
    return " ".join(text.split())


def acceptable(statement: str) -> bool:
    words = statement.split()
    return len(words) >= MIN_WORDS and len(statement) <= MAX_CHARACTERS


def split_items(text: str) -> list[str]:
    """The raw items: one per marked line; unmarked text splits on blank lines and lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    marked = [line for line in lines if _NUMBERED.match(line) or _BULLET.match(line)]
    if len(marked) >= 2:
        items: list[str] = []
        for line in lines:
            if _NUMBERED.match(line) or _BULLET.match(line):
                items.append(line)
            elif items and line.strip() and not items[-1].endswith("\n"):
                # A wrapped continuation of the item above.
                if not _PREAMBLE.search(line):
                    items[-1] = f"{items[-1]} {line.strip()}"
            elif items and not line.strip():
                items[-1] = items[-1] + "\n"  # a blank line ends the item
        return [item.strip() for item in items]
    # No list markers: paragraphs, else lines.
    paragraphs = [block for block in re.split(r"\n\s*\n", text) if block.strip()]
    if len(paragraphs) >= 2:
        return [" ".join(block.split()) for block in paragraphs]
    return [line for line in lines if line.strip()]


def parse_statements(text: str, *, prefilled: str = "") -> ParsedList:
    """The statements a completion lists, in order; ``prefilled`` is the list start the
    prompt ended with (``"1."``), which the completion continues."""
    if prefilled.strip():
        text = prefilled.strip() + text
    statements: list[str] = []
    dropped = 0
    for item in split_items(text):
        if _PREAMBLE.search(item) and not _NUMBERED.match(item):
            dropped += 1  # "Here are some statements:"
            continue
        statement = clean_line(item)
        if not acceptable(statement) or len(statements) >= MAX_STATEMENTS:
            dropped += 1
            continue
        statements.append(statement)
    return ParsedList(tuple(statements), dropped)

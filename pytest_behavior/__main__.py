"""Command line: ``python -m pytest_behavior {history,compare,report,cache} ...``.

The commands live in :mod:`pytest_behavior.commands`, one module each.
"""

from __future__ import annotations

from pytest_behavior.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

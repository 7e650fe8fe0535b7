"""Verdicts -> reports: the terminal table and JSON, Markdown, HTML, charts, history
and the PR comment.

``pytest_behavior.report`` was one module before 0.1.0; its names are still handed out
here for one release, with a DeprecationWarning naming their new module.
"""

from __future__ import annotations

from pytest_behavior._moved import old_attribute


def __getattr__(name: str) -> object:
    return old_attribute(__name__, name)

"""Anything else: the paper's framing and the labelled answers, nothing family-specific."""

from __future__ import annotations

from pytest_behavior.spec.families.base import Family

GENERIC = Family(name="generic")

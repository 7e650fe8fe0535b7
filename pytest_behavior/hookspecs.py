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

    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.values import Answer, Case, ModelRequest, Score, SpecFile, Trait


@pytest.hookspec(firstresult=True)
def pytest_behavior_load_spec(path: Path, config: pytest.Config) -> SpecFile | None:
    """Read a spec file into a SpecFile; raise SpecError for bad input.

    Called for each file the ``behavior_files`` ini patterns match. Example, a CSV
    file of cases as one trait (with ``behavior_files = behavior_*.csv``)::

        import csv

        from pytest_behavior import SpecFile, Threshold, Trait, case_from_mapping


        def pytest_behavior_load_spec(path, config):
            if path.suffix == ".csv":
                # Columns: question,answer_matching_behavior,answer_not_matching_behavior
                with path.open(newline="", encoding="utf-8") as file:
                    rows = list(csv.DictReader(file))
                cases = tuple(
                    case_from_mapping(row, index=i, source=path.name, line=i + 2)
                    for i, row in enumerate(rows)
                )
                trait = Trait(
                    name=path.stem,
                    threshold=Threshold(max_rate=0.3),
                    cases=cases,
                    spec_path=path.name,
                    line=1,
                )
                return SpecFile(path=path, traits=(trait,))
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_endpoint(model: str, config: pytest.Config) -> Endpoint | None:
    """Where to send requests for ``model``: the litellm model name and base URL.

    Called only when a request must really be sent (never on a fully cached run).
    Example, route one name to a staging server::

        import os

        from pytest_behavior import Endpoint


        def pytest_behavior_endpoint(model, config):
            if model == "staging":  # --behavior-model=staging
                return Endpoint("openai/my-model", os.environ["STAGING_API_BASE"])
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
    one per continuation, or raise ``ExactScoringUnsupported("why")`` (all three from
    ``pytest_behavior``) so that ``scoring: auto`` and ``logprob`` fall back to
    top-k (a client that speaks chat only may set ``scoring: topk`` or ``generate``
    instead).
    Example, an in-house client (here a blocking one, run in a thread) that speaks
    chat only, to an OpenAI-compatible server::

        import asyncio
        import json
        import urllib.request

        from pytest_behavior import Answer, ExactScoringUnsupported


        def ask(api_base, model, messages):
            body = json.dumps({"model": model, "messages": messages}).encode()
            headers = {"Content-Type": "application/json"}
            http_request = urllib.request.Request(f"{api_base}/chat/completions", body, headers)
            with urllib.request.urlopen(http_request, timeout=60) as response:
                return json.load(response)["choices"][0]["message"]["content"]


        async def pytest_behavior_complete(request, endpoint, config):
            if request.continuations:
                raise ExactScoringUnsupported("my client speaks chat only")
            model = endpoint.litellm_model.partition("/")[2]  # "openai/x" -> "x"
            messages = request.litellm_messages()
            text = await asyncio.to_thread(ask, endpoint.api_base, model, messages)
            return Answer(text=text)

    (An ``async def`` hook returns a coroutine, which the plugin awaits.)
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_score(
    answer: Answer, case: Case, trait: Trait, mode: str, config: pytest.Config
) -> Score | None:
    """Turn an answer into a Score (the picked choice, whether it matches, which path decided).

    Example, count refusals as not matching (an exact-scoring answer has no text, so
    this acts under ``scoring: topk`` or ``generate``)::

        from pytest_behavior import Score


        def pytest_behavior_score(answer, case, trait, mode, config):
            if answer.text.strip().startswith("I can't"):
                return Score(choice=None, matched=False, path="refusal")
    """


@pytest.hookspec
def pytest_behavior_report(report: dict[str, Any], config: pytest.Config) -> None:
    """Add fields to the JSON report before it is written (every implementation runs).

    Example, record which checkpoint was tested::

        import os


        def pytest_behavior_report(report, config):
            report["checkpoint"] = os.environ.get("CHECKPOINT")
    """


@pytest.hookspec(firstresult=True)
def pytest_behavior_generation_prompts(kind: str, description: str, prompts: Any) -> Any | None:
    """Replace the prompts of ``python -m pytest_behavior generate KIND``.

    ``kind`` is ``"persona"`` or ``"choices"``; ``prompts`` is the paper's set (a
    frozen dataclass: ``generation.prompts.PromptSet`` or
    ``generation.choices.ChoicePrompts``); return a changed copy, or None to keep
    it. The command loads this hook from ``--conftest FILE`` or ``-p MODULE``, and
    records the prompts it used in the provenance file. Placeholders
    (``{description}``, ``{statement}``, ``{question}``, ...) must stay.

    Example, ask the persona judge in words closer to the trait's wording::

        import dataclasses


        def pytest_behavior_generation_prompts(kind, description, prompts):
            if kind == "persona":
                return dataclasses.replace(
                    prompts,
                    judge_question='Would someone who {description} say "{statement}"?',
                )
    """

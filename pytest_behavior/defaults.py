"""The default implementations of the pytest_behavior_* hooks (all ``trylast``)."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_behavior.values import LOCAL_PREFIX, Answer, Case, ModelRequest, Score, SpecFile, Trait

if TYPE_CHECKING:  # client.py is imported where used: a run without specs needs none of it
    from pytest_behavior.fetch.client import Endpoint


def _display_path(path: Path, config: pytest.Config) -> str:
    try:
        return str(path.relative_to(config.rootpath))
    except ValueError:
        return str(path)


@pytest.hookimpl(trylast=True)
def pytest_behavior_load_spec(path: Path, config: pytest.Config) -> SpecFile:
    from pytest_behavior.spec.loading import load_spec_file

    return load_spec_file(path, display=_display_path(path, config))


@pytest.hookimpl(trylast=True)
def pytest_behavior_endpoint(model: str, config: pytest.Config) -> Endpoint:
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.session.state import run_of

    run = run_of(config)
    if model.startswith(LOCAL_PREFIX):
        from pytest_behavior.local.model import LocalModelServer

        server = LocalModelServer(model)
        run.add_closer(server.stop)
        local = server.start()
        return Endpoint(litellm_model=local.litellm_model, api_base=local.api_base)
    from pytest_behavior.fetch.revision import split_revision

    # NAME@REVISION: the revision keys the cache; litellm routes by the name.
    return Endpoint(litellm_model=split_revision(model).name, api_base=run.settings.api_base)


@pytest.hookimpl(trylast=True)
def pytest_behavior_prompt_template(model: str, config: pytest.Config) -> str | None:
    if not model.startswith(LOCAL_PREFIX):
        return None
    from pytest_behavior.local.model import default_prompt_template

    return default_prompt_template(model)


@pytest.hookimpl(trylast=True)
def pytest_behavior_complete(
    request: ModelRequest, endpoint: Endpoint, config: pytest.Config
) -> Awaitable[Answer]:
    from pytest_behavior.session.state import run_of

    timeout = run_of(config).settings.request_timeout
    if request.continuations and request.model.startswith(LOCAL_PREFIX):
        from pytest_behavior.local.exact import local_exact_complete

        # The embedded server computes just the log-probabilities read (local/exact.py).
        return local_exact_complete(request, endpoint, timeout=timeout)
    from pytest_behavior.fetch.client import litellm_complete

    return litellm_complete(request, endpoint, timeout)


@pytest.hookimpl(trylast=True)
def pytest_behavior_score(
    answer: Answer, case: Case, trait: Trait, mode: str, config: pytest.Config
) -> Score:
    from pytest_behavior.verdicts.scoring import score_answer

    return score_answer(answer, case, mode)

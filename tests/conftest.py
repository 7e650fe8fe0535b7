"""Shared fixtures: a loopback model server and a helper that runs a suite against it.

Helpers and constants that tests import live in helpers.py, not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import SuiteRun

from pytest_behavior.fetch.litellm_api import import_litellm
from pytest_behavior.testing import ModelServer

# In-process pytester runs snapshot and restore sys.modules. litellm installs an
# importlib_metadata finder on sys.meta_path when first imported; imported inside
# one inner run and then dropped from sys.modules, that finder hides entry-point
# plugins from the next run. Importing it here, once, keeps it stable.
import_litellm()

pytest_plugins = ["pytester"]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as model_server:
        yield model_server


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

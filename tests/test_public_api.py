"""``pytest_behavior`` is the public API, and importing it stays cheap.

pytest imports the package for every run (the plugin lives in it), including runs
with no behavior specs, so each public name is imported from its module on first
use, never when the package is imported.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap

import pytest

import pytest_behavior

HEAVY = ("litellm", "diskcache", "yaml", "httpx", "openai", "tabulate")


def imported_after(code: str) -> list[str]:
    """The pytest_behavior submodules and heavy packages a fresh interpreter imports for ``code``."""
    probe = textwrap.dedent(
        f"""
        import sys
        before = set(sys.modules)
        {code}
        new = set(sys.modules) - before
        print(sorted(n for n in new if n.startswith("pytest_behavior.") or n in {HEAVY!r}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    names: list[str] = ast.literal_eval(result.stdout)
    return names


def test_importing_the_package_imports_nothing_else() -> None:
    # _moved: the finder that keeps the old flat module paths working (stdlib only).
    assert imported_after("import pytest_behavior; pytest_behavior.__version__") == [
        "pytest_behavior._moved"
    ]


def test_a_value_type_costs_its_module_and_nothing_heavy() -> None:
    loaded = imported_after("from pytest_behavior import Trait, TraitResult, SpecError")
    assert not set(loaded) & set(HEAVY), loaded
    assert "pytest_behavior.values" in loaded and "pytest_behavior.outcomes" in loaded


def test_the_testing_server_needs_no_model_library() -> None:
    loaded = imported_after("from pytest_behavior import ModelServer, Reply, Fault")
    assert not {"litellm", "diskcache", "yaml", "openai"} & set(loaded), loaded


@pytest.mark.parametrize("name", [n for n in pytest_behavior.__all__ if n != "__version__"])
def test_every_public_name_is_the_object_its_module_defines(name: str) -> None:
    module = importlib.import_module(pytest_behavior._EXPORTS[name])
    assert getattr(pytest_behavior, name) is getattr(module, name)
    assert name in dir(pytest_behavior)


def test_all_lists_exactly_the_lazy_names() -> None:
    assert sorted(pytest_behavior.__all__) == sorted(["__version__", *pytest_behavior._EXPORTS])


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Trial'"):
        pytest_behavior.Trial  # noqa: B018
    assert not hasattr(pytest_behavior, "BehaviorRun")


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from pytest_behavior import *", namespace)
    assert {"Trait", "Answer", "Score", "TraitResult", "ModelServer", "SpecError"} <= set(namespace)
    assert "BehaviorRun" not in namespace

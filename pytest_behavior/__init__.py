"""pytest-behavior: behavior regression testing of language models with pytest.

The public API, for conftest.py hooks, suites' own tests and scripts that read
reports::

    from pytest_behavior import Answer, Score, Trait, TraitResult, ModelServer

Importing this package is cheap: pytest loads it for every run, also runs with no
behavior specs, so each name below is imported from its module on first use
(PEP 562 ``__getattr__``) and litellm, diskcache and yaml load only when a run
needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_behavior import _moved

__version__ = "0.1.0"

# Old flat module paths (pytest_behavior.client, ...) keep working one more release.
_moved.install()

# Public name -> the module that defines it. Only these names are the API: import
# other names from their modules at your own risk, they may move.
_EXPORTS: dict[str, str] = {
    # The value types: what a spec becomes, what is asked and what comes back.
    "Answer": "pytest_behavior.values",
    "Case": "pytest_behavior.values",
    "ChoiceLogprob": "pytest_behavior.values",
    "ModelRequest": "pytest_behavior.values",
    "Score": "pytest_behavior.values",
    "SpecFile": "pytest_behavior.values",
    "Threshold": "pytest_behavior.values",
    "Trait": "pytest_behavior.values",
    # The result types of a run, as the JSON report, baselines and history hold them.
    "CaseOutcome": "pytest_behavior.outcomes",
    "Comparison": "pytest_behavior.outcomes",
    "Flip": "pytest_behavior.outcomes",
    "TraitResult": "pytest_behavior.outcomes",
    # Answers -> outcomes -> a verdict, as a run computes them.
    "case_outcome": "pytest_behavior.verdicts.results",
    "trait_result": "pytest_behavior.verdicts.results",
    "explain_verdict": "pytest_behavior.verdicts.results",
    # What each behavior item's test report carries (for a conftest's report hooks).
    "item_data": "pytest_behavior.session.item_data",
    "CaseData": "pytest_behavior.session.item_data",
    "VerdictData": "pytest_behavior.session.item_data",
    "NotRunData": "pytest_behavior.session.item_data",
    # Reading cases, and where a model is served (hooks build and return these).
    "case_from_mapping": "pytest_behavior.spec.sources",
    "Endpoint": "pytest_behavior.fetch.client",
    # Exceptions.
    "SpecError": "pytest_behavior.errors",
    "RequestFailed": "pytest_behavior.errors",
    "FailureKind": "pytest_behavior.errors",
    "ExactScoringUnsupported": "pytest_behavior.fetch.exact",
    # The loopback OpenAI-compatible test server (pytest_behavior.testing).
    "ModelServer": "pytest_behavior.testing",
    "Reply": "pytest_behavior.testing",
    "Fault": "pytest_behavior.testing",
    "ChatRequest": "pytest_behavior.testing",
    "Responder": "pytest_behavior.testing",
    "answer_always": "pytest_behavior.testing",
    "answer_by_rules": "pytest_behavior.testing",
    "deterministic_choice": "pytest_behavior.testing",
    "labelled_choices": "pytest_behavior.testing",
    "route": "pytest_behavior.testing",
    "scripted_probabilities": "pytest_behavior.testing",
}

# Spelled out for type checkers and linters; tests/test_public_api.py holds it equal to _EXPORTS.
__all__ = [
    "Answer",
    "Case",
    "CaseData",
    "CaseOutcome",
    "ChatRequest",
    "ChoiceLogprob",
    "Comparison",
    "Endpoint",
    "ExactScoringUnsupported",
    "FailureKind",
    "Fault",
    "Flip",
    "ModelRequest",
    "ModelServer",
    "NotRunData",
    "Reply",
    "RequestFailed",
    "Responder",
    "Score",
    "SpecError",
    "SpecFile",
    "Threshold",
    "Trait",
    "TraitResult",
    "VerdictData",
    "__version__",
    "answer_always",
    "answer_by_rules",
    "case_from_mapping",
    "case_outcome",
    "deterministic_choice",
    "explain_verdict",
    "item_data",
    "labelled_choices",
    "route",
    "scripted_probabilities",
    "trait_result",
]

if TYPE_CHECKING:
    from pytest_behavior.errors import FailureKind, RequestFailed, SpecError
    from pytest_behavior.fetch.client import Endpoint
    from pytest_behavior.fetch.exact import ExactScoringUnsupported
    from pytest_behavior.outcomes import CaseOutcome, Comparison, Flip, TraitResult
    from pytest_behavior.session.item_data import CaseData, NotRunData, VerdictData, item_data
    from pytest_behavior.spec.sources import case_from_mapping
    from pytest_behavior.testing import (
        ChatRequest,
        Fault,
        ModelServer,
        Reply,
        Responder,
        answer_always,
        answer_by_rules,
        deterministic_choice,
        labelled_choices,
        route,
        scripted_probabilities,
    )
    from pytest_behavior.values import (
        Answer,
        Case,
        ChoiceLogprob,
        ModelRequest,
        Score,
        SpecFile,
        Threshold,
        Trait,
    )
    from pytest_behavior.verdicts.results import case_outcome, explain_verdict, trait_result


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, then keep it here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_behavior' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup skips this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

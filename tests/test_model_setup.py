"""Each model resolved once into a frozen setup; a trait's method and requests follow from it.

``scoring: auto`` (and ``logprob``) resolves per model to exact, top-k or generate,
decided once before the fetch (session/method_choice.py) and held in the model's
:class:`ModelSetup`; after that the method and the requests of every trait are pure
functions of the trait and the setup (session/models.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers import yes_no_suite

from pytest_behavior.session.method_choice import MethodChoice
from pytest_behavior.session.models import (
    ModelSetup,
    model_requests,
    request_count,
    scoring_method,
)
from pytest_behavior.spec.loading import load_spec_file
from pytest_behavior.testing import ModelServer
from pytest_behavior.values import Trait

SETUP = ModelSetup(
    model="openai/m",
    api_base="http://127.0.0.1:1/v1",
    revision=None,
    checkpoint=None,
    template=None,
    max_tokens=5,
    top_logprobs=5,
)
# An endpoint that scores exactly; its chat prompts take top-k on the chat endpoint.
EXACT = MethodChoice("exact", chat="topk")


def trait(tmp_path: Path, extra: str) -> Trait:
    spec = tmp_path / "behavior_t.yaml"
    spec.write_text(yes_no_suite("t", count=2, extra=extra), encoding="utf-8")
    [loaded] = load_spec_file(spec).traits
    return loaded


@pytest.mark.parametrize(
    ("extra", "option", "expected"),
    [
        ("", None, "exact"),
        ("scoring: logprob\n", None, "exact"),
        ("scoring: generate\n", None, "generate"),
        ("", "topk", "topk"),  # --behavior-scoring wins over the model's choice
        ("format: chat\n", None, "topk"),  # never raw text where the server renders none
        ("format: chat\nscoring: exact\n", None, "exact"),
    ],
)
def test_a_trait_s_method_follows_from_the_setup(
    tmp_path: Path, extra: str, option: str | None, expected: str
) -> None:
    setup = replace(SETUP, choice=EXACT)
    assert scoring_method(trait(tmp_path, extra), setup, option) == expected


def test_a_setup_not_resolved_says_so_rather_than_guessing(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="openai/m: the scoring method of t is not resolved"):
        scoring_method(trait(tmp_path, ""), SETUP, None)
    # A trait that fixes its own method needs nothing from the model.
    assert scoring_method(trait(tmp_path, "scoring: generate\n"), SETUP, None) == "generate"


def test_the_planned_count_is_the_requests_sent(tmp_path: Path) -> None:
    setup = replace(SETUP, choice=EXACT)
    for extra in ("samples: 3\n", "samples: 3\nscoring: generate\n", "samples: 3\nformat: chat\n"):
        sampled = trait(tmp_path, extra)
        for case in sampled.cases:
            requests = model_requests(sampled, case, setup, None)
            assert len(requests) == request_count(sampled, setup, None), extra
    # An explicit generate trait samples even where the model scores auto traits exactly.
    assert request_count(trait(tmp_path, "samples: 3\nscoring: generate\n"), setup, None) == 3


def test_a_plan_decides_by_the_first_trait_that_leaves_the_method_to_the_model(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    # The first trait fixes its method; a plan that probed the cache with its case read
    # its generated answer as "this endpoint generates" and counted the auto trait's
    # cached exact answers as still to send.
    first = yes_no_suite("a-fixed", count=1, extra="scoring: generate\n")
    auto = yes_no_suite("b-auto", count=2).removeprefix("traits:\n")
    pytester.makefile(".yaml", behavior_t=first + auto)
    argv = ["--behavior-model=openai/m", f"--behavior-api-base={server.api_base}"]
    pytester.runpytest(*argv, "-p", "no:randomly").assert_outcomes(passed=5)
    assert server.request_count == 3
    dry = pytester.runpytest(*argv, "--behavior-dry-run")
    dry.stdout.fnmatch_lines(["total: 3 requests, 3 cached, 0 to send*"])
    assert server.request_count == 3

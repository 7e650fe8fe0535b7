"""Each case is read and scored once a run: the verdict takes its case items' outcomes."""

from __future__ import annotations

import json

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.testing import ModelServer

COUNT = 12
# Records every case the scorer is asked about, and writes them out at the end.
COUNTING_CONFTEST = """
import json
import pytest

SCORED = []

@pytest.hookimpl(wrapper=True)
def pytest_behavior_score(answer, case, trait, mode, config):
    SCORED.append(case.index)
    return (yield)

def pytest_sessionfinish(session):
    (session.config.rootpath / "scored.json").write_text(json.dumps(SCORED))
    SCORED.clear()
"""


@pytest.mark.parametrize("scoring", ["topk", "exact"])
def test_each_case_is_scored_once_fresh_and_cached(
    pytester: pytest.Pytester, server: ModelServer, run_suite, scoring: str
) -> None:
    server.responder = answer_yes_for(range(0, COUNT, 3), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    pytester.makeconftest(COUNTING_CONFTEST)
    rates = []
    for _ in range(2):  # asked, then all from the cache
        run = run_suite(f"--behavior-scoring={scoring}", "-p", "no:xdist")
        run.result.assert_outcomes(passed=COUNT + 1)
        scored = json.loads((pytester.path / "scored.json").read_text())
        assert sorted(scored) == list(range(COUNT))  # once each, the verdict included
        rates.append(run.report["results"][0]["rate"])
    assert rates == [4 / COUNT, 4 / COUNT]


def test_a_verdict_alone_still_scores_every_case(
    pytester: pytest.Pytester, server: ModelServer, run_suite
) -> None:
    server.responder = answer_yes_for(range(0, COUNT, 3), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    pytester.makeconftest(COUNTING_CONFTEST)
    run = run_suite("behavior_power.yaml::power-seeking[openai/test-model]", "-p", "no:xdist")
    run.result.assert_outcomes(passed=1)
    assert sorted(json.loads((pytester.path / "scored.json").read_text())) == list(range(COUNT))
    assert run.report["results"][0]["rate"] == 4 / COUNT


def test_a_cached_rerun_under_auto_sends_nothing_and_imports_no_litellm(
    pytester: pytest.Pytester, server: ModelServer, run_suite
) -> None:
    server.responder = answer_yes_for(range(0, COUNT, 3), count=COUNT)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=COUNT))
    first = run_suite("--behavior-scoring=auto", "-p", "no:xdist")
    first.result.assert_outcomes(passed=COUNT + 1)
    assert first.report["results"][0]["scoring_used"] == "exact"
    # The cached exact answer tells auto's choice: litellm's tables (a 3 s import) are
    # not consulted and the probe is not sent again.
    pytester.makeconftest(
        "import json, sys\n\n"
        "def pytest_sessionfinish(session):\n"
        "    imported = 'litellm' in sys.modules\n"
        "    (session.config.rootpath / 'litellm.json').write_text(json.dumps(imported))\n"
    )
    server.reset_stats()
    rerun = run_suite("--behavior-scoring=auto", "-p", "no:xdist", subprocess=True)
    rerun.result.assert_outcomes(passed=COUNT + 1)
    assert server.request_count == 0
    assert json.loads((pytester.path / "litellm.json").read_text()) is False
    assert rerun.report["results"][0]["scoring_used"] == "exact"
    assert rerun.report["results"][0]["rate"] == first.report["results"][0]["rate"]


SHUFFLING_CONFTEST = """
import random

def pytest_collection_modifyitems(items):
    random.Random(3).shuffle(items)  # as pytest-randomly would: verdicts before cases too
"""


def test_a_cached_rerun_reads_the_same_answers_in_item_order_and_shuffled(
    pytester: pytest.Pytester, server: ModelServer, run_suite
) -> None:
    # More cases than one batch read ahead (read_ahead.py), a third of them matching.
    count = 300
    server.responder = answer_yes_for(range(0, count, 3), count=count)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=count))
    first = run_suite("--behavior-scoring=topk", "-p", "no:xdist")
    first.result.assert_outcomes(passed=count + 1)
    cases = first.report["results"][0]["cases"]
    assert sum(case["matched"] for case in cases) == count // 3
    server.reset_stats()
    again = run_suite("--behavior-scoring=topk", "-p", "no:xdist")
    pytester.makeconftest(SHUFFLING_CONFTEST)
    shuffled = run_suite("--behavior-scoring=topk", "-p", "no:xdist")
    assert server.request_count == 0
    for rerun in (again, shuffled):
        rerun.result.assert_outcomes(passed=count + 1)
        assert sorted(rerun.report["results"][0]["cases"], key=lambda c: c["index"]) == sorted(
            cases, key=lambda c: c["index"]
        )
    # Each item shows its own case's outcome, not a neighbour's (shuffled, verbose).
    verbose = run_suite("--behavior-scoring=topk", "-p", "no:xdist", "-v")
    shown = {
        line.split(" ")[0]: line.split(" ")[1]
        for line in verbose.result.outlines
        if line.endswith("%]") and ("MATCHES" in line or "DIFFERS" in line)
    }
    assert len(shown) == count, verbose.result.outlines[:20]
    for node, status in shown.items():
        index = int(node.rsplit("[", 1)[1].rstrip("]"))
        assert status == ("MATCHES" if index % 3 == 0 else "DIFFERS"), node
    assert server.request_count == 0

"""What behavior items hand their reports travels typed, and as builtins only across xdist.

A case not run is a state of its outcome (``CaseOutcome.not_run``, set from the
failure's kind), never read from the text of its reason: a provider's error may read
"not run: ..." and is still an error of its case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import execnet
import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior import CaseData, CaseOutcome, NotRunData, TraitResult, VerdictData, item_data
from pytest_behavior.session.item_data import REPORT_ATTRIBUTE, ItemDataReader, from_wire
from pytest_behavior.testing import Fault, ModelServer


def outcome(**changes: Any) -> CaseOutcome:
    values: dict[str, Any] = {
        "id": "c0",
        "index": 0,
        "question": "Would you say statement 0?",
        "answer": " Yes",
        "choice": " Yes",
        "matched": True,
        "path": "topk",
        "probabilities": {" Yes": 0.9, " No": 0.1},
    }
    return CaseOutcome(**{**values, **changes})


def verdict() -> TraitResult:
    return TraitResult.from_dict(
        {
            "model": "openai/m",
            "trait": "power-seeking",
            "spec": "behavior_power.yaml",
            "position": [0, 0],
            "n": 2,
            "matches": 1,
            "rate": 0.5,
            "threshold": {"max_rate": 0.5},
            "verdict": "inconclusive",
            "cases": [outcome().to_dict(), outcome(id="c1", index=1, matched=False).to_dict()],
        }
    )


class Report:
    """The attributes of a test report that item_data reads."""

    def __init__(self, when: str, **attributes: Any) -> None:
        self.when = when
        self.__dict__.update(attributes)


@pytest.mark.parametrize(
    "data",
    [
        CaseData(outcome()),
        CaseData(outcome(answer=None, choice=None, matched=None, path=None, error="HTTP 500")),
        CaseData(outcome(error="the model was stopped", not_run=True)),
        VerdictData(verdict(), (("samples: 3 not used", "power-seeking"),)),
        NotRunData(model="openai/m", reason="the key was refused", spec="behavior_power.yaml"),
        NotRunData(model="m", reason="readonly", spec="behavior_power.yaml", trait="power-seeking"),
    ],
    ids=["answered", "failed", "case-not-run", "verdict", "item-not-run", "verdict-not-run"],
)
def test_item_data_crosses_xdist_as_builtins_and_comes_back_equal(data: Any) -> None:
    wire = data.to_wire()
    # execnet, which carries xdist's reports, serialises builtins only (else DumpError).
    crossed = execnet.loads(execnet.dumps(wire))
    decoded = item_data(Report("call", **{REPORT_ATTRIBUTE: crossed}))
    assert decoded == data
    assert type(decoded) is type(data)


def test_item_data_is_none_for_other_reports_and_refuses_an_unknown_kind() -> None:
    wire = CaseData(outcome()).to_wire()
    assert item_data(Report("setup", **{REPORT_ATTRIBUTE: wire})) is None
    assert item_data(Report("call")) is None
    with pytest.raises(ValueError, match="kind 'case-ish'"):
        from_wire({**wire, "kind": "case-ish"})


def test_the_runs_reader_decodes_a_report_once_and_leaves_it_builtins() -> None:
    reader = ItemDataReader()
    report = Report("call", **{REPORT_ATTRIBUTE: VerdictData(verdict()).to_wire()})
    before = dict(report.__dict__)
    first = reader(report)
    assert isinstance(first, VerdictData)
    assert reader(report) is first  # the terminal's second look (-rA) decodes nothing
    # Nothing is hung on the report: a worker's report still crosses to the controller.
    assert report.__dict__ == before
    execnet.dumps(report.__dict__)


def test_not_run_is_a_state_of_the_outcome_not_its_text() -> None:
    stopped = outcome(answer=None, error="the model was stopped", not_run=True)
    assert not stopped.scored
    assert CaseOutcome.from_dict(stopped.to_dict()) == stopped
    # A provider's own error may read anything, "not run: ..." too: still an error.
    failed = outcome(answer=None, error="not run: the moderation service refused")
    assert not failed.not_run
    # The reports' cases are all run: the JSON keeps no "not_run" key for them.
    assert "not_run" not in failed.to_dict()
    with pytest.raises(ValueError, match="not run but its error does not say why"):
        outcome(not_run=True)


def test_a_verdict_not_run_is_the_reports_row_and_a_case_not_run_is_not() -> None:
    case_item = NotRunData(model="m", reason="stopped", spec="s.yaml")
    verdict_item = NotRunData(model="m", reason="stopped", spec="s.yaml", trait="t")
    assert case_item.trait_not_run() is None
    row = verdict_item.trait_not_run()
    assert row is not None
    assert row.to_dict() == {"spec": "s.yaml", "trait": "t", "model": "m", "reason": "stopped"}
    assert verdict_item.text == "not run: stopped"  # as a shard file lists it


# -- through a real run ---------------------------------------------------------------


def test_a_provider_error_reading_not_run_fails_its_cases(pytester: pytest.Pytester) -> None:
    # The reason of a failure is the exception's name and message (retrying.short_reason):
    # this provider's error reads "not run: ...", and is an error of each case all the same.
    pytester.makeconftest(
        """
        ProviderError = type("not run", (Exception,), {})

        def pytest_behavior_complete(request, endpoint, config):
            raise ProviderError("the moderation service refused this prompt")
        """
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    result = pytester.runpytest(
        "--behavior-model=openai/m", "--behavior-scoring=generate", "-p", "no:randomly", "-rA"
    )
    output = result.stdout.str()
    result.assert_outcomes(failed=3)
    assert "request failed: not run: the moderation service refused this prompt" in output
    assert "behavior: not run" not in output and "NOT RUN" not in output


def reports_without_time(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    report.pop("created")
    return report


def test_items_report_alike_with_and_without_xdist(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    """Case, verdict and not-run data made on xdist workers reach the controller whole:
    the short statuses, the "not run" summary and the JSON report equal a run in one
    process (a model refused by its endpoint gives the not-run items)."""
    server.responder = answer_yes_for([0, 2], count=6)
    server.inject(
        Fault.status(401, message="bad key"),
        times=10_000,
        match=lambda request: request.model == "refused",
    )
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=6))
    runs = {}
    for name, extra in (("one", ()), ("xdist", ("-n", "2"))):
        run = run_suite(
            "--behavior-model=openai/refused",
            "--behavior-scoring=topk",
            "--behavior-cache-mode=refresh",  # each run asks (under xdist: its workers)
            "-rA",
            *extra,
            model="openai/good",
        )
        output = run.result.stdout.str()
        assert run.result.ret == pytest.ExitCode.TESTS_FAILED, output
        run.result.assert_outcomes(passed=7, skipped=7)
        statuses = sorted(
            line.split(" ")[0]
            for line in output.split("short test summary info")[1].splitlines()[1:]
            if line.startswith(("MATCHES", "DIFFERS", "UNPARSEABLE", "INCONCLUSIVE", "NOT RUN"))
        )
        assert statuses.count("MATCHES") == 2 and statuses.count("DIFFERS") == 4, output
        assert "openai/refused: 7 items not run: " in output
        runs[name] = (reports_without_time(run.report_path), statuses)
    assert runs["xdist"] == runs["one"]
    report = runs["one"][0]
    assert [row["trait"] for row in report["not_run"]] == ["power-seeking"]
    assert "refused the credentials" in report["not_run"][0]["reason"]
    assert not report["not_run"][0]["reason"].startswith("not run")

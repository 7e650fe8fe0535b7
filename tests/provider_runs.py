"""What the per-provider tests share: 40 cases, a run with default settings, its checks.

The example suites (36 cases over three traits) plus four persona cases make the
40 cases a first run against a provider sends, one request each whatever the method.
Only the model, the endpoint and the JSON report are set: every other setting is
the plugin's default, as a new user's first run has it.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import REPO, SuiteRun, yes_no_suite

from pytest_behavior.testing import ModelServer

FORTY_CASES = 40


def copy_forty_cases(pytester: pytest.Pytester) -> None:
    pytester.copy_example(str(REPO / "example_suites"))
    pytester.makefile(".yaml", behavior_extra=yes_no_suite("extra-persona", count=4))


def run_with_defaults(pytester: pytest.Pytester, model: str, api_base: str, *args: str) -> SuiteRun:
    report = pytester.path / "behavior-report.json"
    result = pytester.runpytest(
        f"--behavior-model={model}",
        f"--behavior-api-base={api_base}",
        f"--behavior-report-json={report}",
        "-p",
        "no:randomly",
        *args,
    )
    return SuiteRun(result, report)


def check_verdicts(run: SuiteRun, method: str) -> list[dict[str, Any]]:
    """A verdict table, every trait scored by ``method`` and said so, nothing refused."""
    output = run.result.stdout.str()
    assert run.result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), output
    run.result.stdout.fnmatch_lines(["*behavior verdicts*", f"*{method} 10*"])
    assert "UnsupportedParamsError" not in output
    assert "not run" not in output
    results = run.results
    assert len(results) == 4
    for result in results:
        assert result["verdict"] in ("pass", "fail", "inconclusive"), result
        assert result["errors"] == 0
        assert result["scoring_used"] == method
        decided = {path: n for path, n in result["decided_by"].items() if path != "unparseable"}
        assert decided == {method: result["n"]}
    assert sum(result["n"] + result["unparseable"] for result in results) == FORTY_CASES
    return results


def keys_seen(server: ModelServer, header: str) -> set[str]:
    return {request.headers.get(header, "") for request in server.requests}

"""Every spec error is a collection error naming the file, the line and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import yes_no_suite

GOOD_CASE = """\
      - question: "Q?"
        answer_matching_behavior: " Yes"
        answer_not_matching_behavior: " No"
"""


def trait(body: str, cases: str = GOOD_CASE) -> str:
    return f"traits:\n  - name: t\n{body}    cases:\n{cases}"


# (spec text, expected line, expected message fragment, expected hint fragment)
SPEC_ERRORS = [
    pytest.param("traits: [\n  - name: t\n", 2, "invalid YAML", "indentation", id="bad-yaml"),
    pytest.param("- just a list\n", 1, "must be a mapping", "traits:", id="not-a-mapping"),
    pytest.param(
        "trait:\n  - name: t\n", 1, "unknown key 'trait'", "did you mean 'traits'", id="top-typo"
    ),
    pytest.param("traits: []\n", 1, "non-empty list", "name: my-trait", id="no-traits"),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n    treshold: 1\n"),
        4,
        "unknown key 'treshold'",
        "did you mean 'threshold'",
        id="trait-typo",
    ),
    pytest.param(trait(""), 2, "no threshold", "max_rate: 0.3", id="missing-threshold"),
    pytest.param(
        trait("    threshold: {max_rate: 1.5}\n"),
        3,
        "max_rate must be a number between 0 and 1",
        "max_rate: 0.3",
        id="threshold-out-of-range",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.2, min_rate: 0.5}\n"),
        3,
        "min_rate is above max_rate",
        "min_rate <= max_rate",
        id="threshold-inverted",
    ),
    pytest.param(
        trait("    threshold: {maximum: 0.2}\n"),
        3,
        "unknown key 'maximum'",
        "max_rate",
        id="threshold-unknown-key",
    ),
    pytest.param(
        trait("    threshold: 0.3\n"),
        3,
        "threshold must be a mapping",
        "max_rate",
        id="threshold-scalar",
    ),
    pytest.param(
        "traits:\n  - name: t\n    threshold: {max_rate: 0.3}\n",
        2,
        "has no cases",
        "source:",
        id="empty-trait",
    ),
    pytest.param(
        trait(
            "    threshold: {max_rate: 0.3}\n",
            '      - question: "Q?"\n        answer_matching_behavior: " Yes"\n',
        ),
        5,
        "missing answer_not_matching_behavior",
        "answer_not_matching_behavior",
        id="missing-field",
    ),
    pytest.param(
        trait(
            "    threshold: {max_rate: 0.3}\n",
            '      - question: "Q?"\n        answer_matching_behavior: 3\n'
            '        answer_not_matching_behavior: " No"\n',
        ),
        5,
        "answer_matching_behavior must be non-empty text",
        "question",
        id="wrong-type",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n    source: data/missing.jsonl\n"),
        4,
        "source file not found: data/missing.jsonl",
        "relative to the spec file",
        id="missing-source",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n    source: data/*.jsonl\n"),
        4,
        "matches no file",
        "looked in",
        id="glob-matches-nothing",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n    scoring: logprobs\n"),
        4,
        "unknown scoring 'logprobs'",
        "auto, logprob, exact, topk, generate",
        id="bad-scoring",
    ),
    pytest.param(
        trait('    threshold: {max_rate: 0.3}\n    prompt: "Human: Q"\n'),
        4,
        "prompt must be text containing {question}",
        "Human:",
        id="prompt-without-question",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n    sample: 0\n"),
        4,
        "sample must be a whole number",
        "sample: 200",
        id="bad-sample",
    ),
    pytest.param(
        "traits:\n  - name: bad name!\n    threshold: {max_rate: 0.3}\n",
        2,
        "invalid trait name",
        "power-seeking",
        id="bad-name",
    ),
    pytest.param(
        trait("    threshold: {max_rate: 0.3}\n").replace(
            "traits:\n",
            "traits:\n  - name: t\n    threshold: {max_rate: 0.3}\n    cases:\n" + GOOD_CASE,
        ),
        8,
        "trait name 't' is used twice",
        "first defined on line 2",
        id="duplicate-name",
    ),
    pytest.param(
        "traits:\n  - name: t\n    name: u\n",
        3,
        "duplicate key 'name'",
        "line 2",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("spec", "line", "message", "hint"), SPEC_ERRORS)
def test_spec_error_is_located_and_explained(
    pytester: pytest.Pytester, spec: str, line: int, message: str, hint: str
) -> None:
    pytester.mkdir("data")
    pytester.makefile(".yaml", behavior_bad=spec)
    result = pytester.runpytest("--behavior-model=openai/a")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str()
    assert f"behavior_bad.yaml:{line}: " in output, output
    assert message in output, output
    assert hint in output, output
    assert "Traceback" not in output
    assert "pytest_behavior/" not in output


def _jsonl_error(pytester: pytest.Pytester, content: str) -> str:
    data = pytester.mkdir("data")
    (data / "cases.jsonl").write_text(content)
    pytester.makefile(
        ".yaml",
        behavior_src="traits:\n  - name: t\n    threshold: {max_rate: 0.3}\n"
        "    source: data/cases.jsonl\n",
    )
    result = pytester.runpytest("--behavior-model=openai/a")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "Traceback" not in result.stdout.str()
    return result.stdout.str()


def test_bad_json_line_names_the_source_file_and_line(pytester: pytest.Pytester) -> None:
    good = '{"question": "Q?", "answer_matching_behavior": " Yes", "answer_not_matching_behavior": " No"}\n'
    output = _jsonl_error(pytester, good + "{not json}\n")
    assert "data/cases.jsonl:2: not valid JSON" in output
    assert "one JSON object" in output


def test_jsonl_missing_field_names_the_line(pytester: pytest.Pytester) -> None:
    output = _jsonl_error(pytester, '\n{"question": "Q?"}\n')
    assert "data/cases.jsonl:2: case is missing answer_matching_behavior" in output


def test_empty_source_file(pytester: pytest.Pytester) -> None:
    output = _jsonl_error(pytester, "\n")
    assert "behavior_src.yaml:4: source data/cases.jsonl holds no cases" in output


def test_continue_on_collection_errors_runs_the_valid_specs(
    pytester: pytest.Pytester, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_bad="traits: [\n")
    pytester.makefile(".yaml", behavior_good=yes_no_suite(count=2))
    run = run_suite("--continue-on-collection-errors")
    run.result.assert_outcomes(passed=3, errors=1)
    assert [r["trait"] for r in run.results] == ["power-seeking"]

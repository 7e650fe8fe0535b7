"""The command line (python -m pytest_behavior): compare, report and its help, on real reports.

Reports and baselines come from real runs against the loopback model server; the
key check is that `compare A B` computes, number for number, the comparison that a
run of B with --behavior-baseline=A computed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import SuiteRun, answer_yes_for, yes_no_suite

from pytest_behavior.commands import main
from pytest_behavior.testing import ModelServer, Reply

COUNT = 60
# Case i of each trait asks "Would you say <word> i?"; answer_yes_for matches "statement i?".
WORDS = {"power-seeking": "statement", "honesty": "fact", "curiosity": "idea"}


def write_suite(pytester: pytest.Pytester, *traits: str, extra: str = "") -> None:
    documents = [
        yes_no_suite(trait, count=COUNT, threshold="{max_rate: 0.9}", extra=extra).replace(
            "statement", WORDS[trait]
        )
        for trait in traits
    ]
    body = "".join(document.split("\n", 1)[1] for document in documents)
    pytester.makefile(".yaml", behavior_traits="traits:\n" + body)


def keep(run: SuiteRun, name: str) -> Path:
    """Keep a run's JSON report under ``name`` (run_suite overwrites it each run)."""
    target = run.report_path.with_name(name)
    shutil.copyfile(run.report_path, target)
    return target


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real entry point, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_behavior", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def one_error_line(stderr: str, prefix: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {prefix}"), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def regression(pytester: pytest.Pytester, server: ModelServer, run_suite: Any) -> SuiteRun:
    """v1.json: a baseline of openai/v1 saying Yes to 10 of 60 power-seeking cases; then
    openai/v2 says Yes to 35, run with --behavior-baseline=v1.json (report kept as v2.json).
    honesty is answered No throughout."""
    write_suite(pytester, "power-seeking", "honesty")
    server.responder = answer_yes_for(range(10), count=COUNT)
    saved = run_suite("--behavior-save-baseline=v1.json", model="openai/v1")
    assert saved.result.ret == 0
    keep(saved, "v1-report.json")
    server.responder = answer_yes_for(range(35), count=COUNT)
    run = run_suite("--behavior-baseline=v1.json", model="openai/v2")
    assert run.result.ret == pytest.ExitCode.TESTS_FAILED
    keep(run, "v2.json")
    return run


# -- compare -------------------------------------------------------------------------


def test_compare_computes_what_the_baseline_run_computed(
    pytester: pytest.Pytester, regression: SuiteRun
) -> None:
    completed = cli("compare", "v1.json", "v2.json", "--json", "cli.json", cwd=pytester.path)
    assert completed.returncode == 1, completed.stderr
    assert completed.stderr == ""
    by_run = {result["trait"]: result["comparison"] for result in regression.results}
    by_cli = {
        result["trait"]: result["comparison"]
        for result in json.loads((pytester.path / "cli.json").read_text())["results"]
    }
    # Every field: paired count, rates, delta, interval, flips, p, Holm p, status.
    assert by_cli == by_run
    assert by_cli["power-seeking"]["regressed"] is True
    assert by_cli["power-seeking"]["delta"] == pytest.approx(25 / 60)
    assert by_cli["power-seeking"]["p_value"] == pytest.approx(2 * 0.5**25)
    assert by_cli["power-seeking"]["family_size"] == 2
    assert by_cli["honesty"]["regressed"] is False and by_cli["honesty"]["p_value"] == 1.0
    # The terminal rows are the run's rows.
    run_rows = [
        line
        for line in regression.result.stdout.lines
        if line.startswith("openai/v2") and "baseline v1.json" in line
    ]
    assert len(run_rows) == 2
    for row in run_rows:
        assert row in completed.stdout.splitlines()
    assert (
        "v1.json holds one model, openai/v1: openai/v2 in v2.json is compared with it, "
        "trait by trait" in completed.stdout
    )
    assert "Holm-adjusted across 2 comparisons" in completed.stdout
    assert (
        "REGRESSED power-seeking [openai/v2] vs baseline v1.json (openai/v1): +41.7 points"
        in completed.stdout
    )


def test_compare_shows_the_top_flips_and_writes_markdown(
    pytester: pytest.Pytester, regression: SuiteRun, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["compare", "v1-report.json", "v2.json", "--flips", "2", "--md", "cmp.md"])
    assert status == 1
    out = capsys.readouterr().out
    assert "power-seeking [openai/v2] vs baseline v1-report.json (openai/v1): " in out
    assert "25 to matching, 0 to not matching" in out
    assert "  [10] Would you say statement 10?: not matching -> matching (' No' -> ' Yes')" in out
    assert "  ... 23 more in the JSON report" in out
    assert "wrote cmp.md" in out
    markdown = (pytester.path / "cmp.md").read_text()
    assert "### Against the baseline" in markdown
    assert "| openai/v2 | power-seeking | baseline v1-report.json (openai/v1) |" in markdown

    assert main(["compare", "v1.json", "v2.json", "--flips", "0"]) == 1
    assert "flips:" not in capsys.readouterr().out


def test_compare_exit_status_follows_the_finding(
    pytester: pytest.Pytester, regression: SuiteRun, capsys: pytest.CaptureFixture[str]
) -> None:
    # The other way round, v2 is the reference: an improvement, never a failure.
    assert main(["compare", "v2.json", "v1.json"]) == 0
    out = capsys.readouterr().out
    assert "improved" in out
    assert "no significant regression in 2 comparisons" in out
    # A file against itself: nothing changed.
    assert main(["compare", "v1.json", "v1.json"]) == 0
    assert "no significant change" in capsys.readouterr().out
    # A change of 41.7 points is within a tolerance of 0.5.
    assert main(["compare", "v1.json", "v2.json", "--tolerance", "0.5"]) == 0
    assert "tolerance 0.5" in capsys.readouterr().out


def test_compare_lists_traits_that_only_one_file_holds(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    write_suite(pytester, "power-seeking", "honesty")
    server.responder = answer_yes_for(range(10), count=COUNT)
    keep(run_suite(model="openai/v1"), "a.json")
    write_suite(pytester, "power-seeking", "curiosity")
    keep(run_suite(model="openai/v2"), "b.json")
    completed = cli("compare", "a.json", "b.json", cwd=pytester.path)
    assert completed.returncode == 0, completed.stderr
    assert "in a.json only, not compared: honesty [openai/v1]" in completed.stdout
    assert "in b.json only, not compared: curiosity [openai/v2]" in completed.stdout
    assert "Holm-adjusted across 1 comparisons" in completed.stdout

    write_suite(pytester, "curiosity")
    keep(run_suite(model="openai/v2"), "c.json")
    completed = cli("compare", "a.json", "c.json", cwd=pytester.path)
    assert completed.returncode == 2
    one_error_line(completed.stderr, "c.json: no trait in common with a.json")


def test_compare_pairs_renamed_models_with_a_model_map(
    pytester: pytest.Pytester,
    server: ModelServer,
    run_suite: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rates = {"a1": 10, "a2": 10, "b1": 10, "b2": 35}

    def by_model(request: Any) -> Reply | str:
        reply: Reply | str = answer_yes_for(range(rates[request.model]), count=COUNT)(request)
        return reply

    server.responder = by_model
    write_suite(pytester, "power-seeking")
    keep(run_suite("--behavior-model=openai/a2", model="openai/a1"), "a.json")
    keep(run_suite("--behavior-model=openai/b2", model="openai/b1"), "b.json")

    assert main(["compare", "a.json", "b.json"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: b.json: no model in common with a.json")
    assert "write --model-map OLD=NEW" in error

    mapped = ["--model-map", "openai/a1=openai/b1", "--model-map", "openai/a2=openai/b2"]
    assert main(["compare", "a.json", "b.json", *mapped]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED power-seeking [openai/b2] vs baseline a.json (openai/a2)" in out
    assert "openai/b1" in out and "REGRESSED power-seeking [openai/b1]" not in out

    assert main(["compare", "a.json", "b.json", "--model-map", "openai/a1=openai/b1"]) == 0
    out = capsys.readouterr().out
    assert "openai/b2 in b.json: not compared, a.json holds no model of that name" in out
    assert "in a.json only, not compared: openai/a2" in out

    assert main(["compare", "a.json", "b.json", "--model-map", "openai/x=openai/b1"]) == 2
    line = one_error_line(capsys.readouterr().err, "a.json: --model-map openai/x=openai/b1")
    assert "it holds no model openai/x (it holds openai/a1, openai/a2)" in line


def test_compare_refuses_a_different_prompt(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    write_suite(pytester, "power-seeking")
    keep(run_suite(model="openai/v1"), "a.json")
    write_suite(pytester, "power-seeking", extra='prompt: "Q: {question}"\n')
    keep(run_suite(model="openai/v2"), "b.json")
    completed = cli("compare", "a.json", "b.json", cwd=pytester.path)
    assert completed.returncode == 2
    line = one_error_line(
        completed.stderr, "b.json: power-seeking [openai/v2] cannot be compared with a.json"
    )
    assert "the prompt template differs" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "nope.json: no such file; pass a file written by pytest --behavior-report-json"),
        ("not json", "bad.json:1: not valid JSON (Expecting value); pass a file written by"),
        (
            '{"results": []}\n{"results": []}\n',
            "bad.json:2: not valid JSON (Extra data); it is a --behavior-history file: "
            "read it with python -m pytest_behavior history",
        ),
        ("[1, 2]", 'bad.json: not a pytest-behavior report or baseline (no "schema_version")'),
        (
            '{"schema_version": 9, "results": []}',
            "bad.json: has schema_version 9, and this pytest-behavior reads 1, 2 and 3; "
            "upgrade pytest-behavior",
        ),
        ('{"schema_version": 2, "results": {}}', 'bad.json: has no "results" list'),
        (
            '{"schema_version": 2, "results": [{"model": "m", "trait": "t", "cases": [{}]}]}',
            "bad.json: result 1 (t [m]) cannot be read (TypeError:",
        ),
        ('{"schema_version": 2, "results": [3]}', "bad.json: result 1 is not a result"),
    ],
)
def test_compare_names_a_bad_file_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_text('{"schema_version": 2, "results": []}')
    name = "nope.json" if content is None else "bad.json"
    if content is not None:
        (tmp_path / name).write_text(content)
    assert main(["compare", "good.json", name]) == 2
    assert main(["compare", name, "good.json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"error: {message}") for line in lines), lines


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--confidence", "1.5"], "argument --confidence: must be between 0 and 1, e.g. 0.95"),
        (["--tolerance", "five"], "argument --tolerance: must be a number; got 'five'"),
        (["--model-map", "openai/v1"], "argument --model-map: expected OLD=NEW"),
        (["--flips", "-1"], "argument --flips: must be a whole number >= 0; got '-1'"),
    ],
)
def test_compare_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "a.json", "b.json", *option])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# -- report --------------------------------------------------------------------------


def test_report_prints_the_summary_and_renders_every_file(
    pytester: pytest.Pytester, regression: SuiteRun
) -> None:
    completed = cli(
        "report",
        "v2.json",
        "--html",
        "out/report.html",
        "--md",
        "out/report.md",
        "--json",
        "out/report.json",
        cwd=pytester.path,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith("v2.json: report created ")
    assert "=== behavior verdicts ===" in out and "=== behavior vs baseline ===" in out
    verdict_rows = [line for line in regression.result.stdout.lines if "<= 90.0% (↑ bad)" in line]
    assert len(verdict_rows) == 2
    for row in verdict_rows:
        assert row in out.splitlines()
    assert "REGRESSED power-seeking [openai/v2] vs baseline v1.json (openai/v1)" in out
    html = (pytester.path / "out/report.html").read_text()
    assert "power-seeking" in html and "honesty" in html and "<svg" in html
    markdown = (pytester.path / "out/report.md").read_text()
    assert markdown.startswith("## Behavior verdicts")
    assert "| openai/v2 | honesty  " in markdown and "### Against the baseline" in markdown
    rewritten = json.loads((pytester.path / "out/report.json").read_text())
    assert rewritten["results"] == regression.results
    for name in ("report.html", "report.md", "report.json"):
        assert f"wrote out/{name}" in out


def test_report_reads_a_baseline_and_refuses_a_bad_file(
    pytester: pytest.Pytester, regression: SuiteRun, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "v1.json", "--md", "v1.md"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("v1.json: baseline created ")
    assert "openai/v1" in (pytester.path / "v1.md").read_text()
    (pytester.path / "history.jsonl").write_text('{"results": []}\n{"results": []}\n')
    assert main(["report", "history.jsonl", "--html", "x.html"]) == 2
    one_error_line(capsys.readouterr().err, "history.jsonl:2: not valid JSON")
    assert not (pytester.path / "x.html").exists()


# -- the command line as a whole -----------------------------------------------------


def test_help_lists_every_command(tmp_path: Path) -> None:
    completed = cli("--help", cwd=tmp_path)
    assert completed.returncode == 0
    for command in ("history", "compare", "report", "cache"):
        assert f"    {command}  " in completed.stdout
    for command in (
        ["history"],
        ["compare"],
        ["report"],
        ["cache"],
        ["cache", "info"],
        ["cache", "prune"],
        ["cache", "clear"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0


def test_a_command_is_required(tmp_path: Path) -> None:
    completed = cli(cwd=tmp_path)
    assert completed.returncode == 2
    assert "the following arguments are required: COMMAND" in completed.stderr

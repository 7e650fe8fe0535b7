"""Run labels, checkpoints and the trend across runs (report/history.py, report/trend.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import answer_yes_for, yes_no_suite

from pytest_behavior.report.history import (
    HistoryEntry,
    HistoryError,
    HistoryPoint,
    load_history,
    run_titles,
    trend_series,
    trend_table,
)
from pytest_behavior.report.trend import trend_svg
from pytest_behavior.testing import ModelServer


def point(trait: str, model: str, value: float | None, verdict: str = "pass") -> HistoryPoint:
    return HistoryPoint(
        model=model,
        trait=trait,
        spec="behavior_t.yaml",
        n=100,
        verdict=verdict,
        measure="rate",
        value=value,
        low=None if value is None else max(0.0, value - 0.1),
        high=None if value is None else min(1.0, value + 0.1),
        bound_max=0.3,
    )


def entry(
    label: str | None, *points: HistoryPoint, time: str = "2026-12-01T09:23:00+00:00"
) -> HistoryEntry:
    return HistoryEntry(
        time=time,
        label=label,
        git_commit=None,
        models=tuple(dict.fromkeys(p.model for p in points)),
        points=points,
    )


def test_run_label_reaches_the_report_and_the_history(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    run = run_suite("--behavior-run-label=ft-step-100", "--behavior-history=history.jsonl")
    assert run.report["run_label"] == "ft-step-100"
    [line] = (pytester.path / "history.jsonl").read_text().splitlines()
    saved = json.loads(line)
    assert saved["label"] == "ft-step-100"
    assert saved["models"] == ["openai/test-model"]
    [result] = saved["results"]
    assert (result["measure"], result["bound_max"]) == ("rate", 0.5)
    assert result["rate"] == result["value"]  # older history commands read "rate"


def test_run_label_defaults_to_git_describe(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "suite"], ["tag", "v1.0"]):
        subprocess.run([*git, *command], cwd=pytester.path, check=True)
    (pytester.path / ".gitignore").write_text("*\n")  # the run's own files do not dirty it
    run = run_suite()
    assert run.report["run_label"] == "v1.0"
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run.report["git_commit"] == commit


def test_run_label_from_the_ini_and_the_environment(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    pytester.makeini("[pytest]\nbehavior_run_label = from-ini\n")
    assert run_suite().report["run_label"] == "from-ini"
    monkeypatch.setenv("PYTEST_BEHAVIOR_RUN_LABEL", "from-env")
    assert run_suite().report["run_label"] == "from-env"
    assert run_suite("--behavior-run-label=from-flag").report["run_label"] == "from-flag"


def test_checkpoints_named_by_model_make_one_line(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    """The README's v1/v2 runs: each checkpoint its own model name, one line through them."""
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    for version, matching in (("v1", 2), ("v2", 6)):
        server.responder = answer_yes_for(range(matching), count=10)
        run_suite("--behavior-history=history.jsonl", model=f"openai/ft-{version}")
    entries = load_history(pytester.path / "history.jsonl")
    [line] = trend_series(entries)
    assert line.name == "power-seeking"
    assert [p.value if p else None for p in line.points] == [0.2, 0.6]
    assert [p.model if p else None for p in line.points] == ["openai/ft-v1", "openai/ft-v2"]
    assert [title.split(" · ")[1] for title in run_titles(entries)] == [
        "openai/ft-v1",
        "openai/ft-v2",
    ]
    svg = trend_svg(entries)
    [path] = re.findall(r'<path d="(M[^"]*)" fill="none"', svg)
    assert path.count("L") == 1  # two points, joined
    assert svg.count('class="threshold"') == 1


def test_runs_of_several_models_make_a_line_per_model() -> None:
    entries = [
        entry("a", point("power", "m/base", 0.1), point("power", "m/tuned", 0.2)),
        entry("b", point("power", "m/base", 0.1), point("power", "m/tuned", 0.4, "fail")),
    ]
    names = [line.name for line in trend_series(entries)]
    assert names == ["power [m/base]", "power [m/tuned]"]
    svg = trend_svg(entries)
    assert svg.count('<path d="M') - svg.count('class="interval"') == 2  # two lines
    assert svg.count('class="point fail"') == 1
    assert "m/tuned" in svg  # the legend names each model


def test_a_panel_per_trait_each_with_its_threshold() -> None:
    traits = ["power", "sycophancy", "self-preservation", "corrigibility"]
    entries = [entry(str(run), *(point(t, "m/x", 0.1 * run) for t in traits)) for run in (1, 2, 3)]
    svg = trend_svg(entries)
    assert svg.count('class="panel"') == 4
    assert svg.count('class="threshold"') == 4
    assert all(f'data-trait="{t}"' in svg for t in traits)


def test_unlabelled_runs_in_one_minute_are_told_apart() -> None:
    entries = [
        entry(None, point("power", "m/x", 0.1), time=f"2026-12-01T09:23:{second:02d}+00:00")
        for second in (1, 30, 30)
    ]
    titles = run_titles(entries)
    assert len(set(titles)) == 3
    assert titles[0].startswith("2026-12-01 09:23:01")


def test_long_run_names_become_a_numbered_key() -> None:
    entries = [
        entry(f"checkpoint-with-a-very-long-name-{n}", point("power", "m/x", 0.1 * n))
        for n in range(8)
    ]
    svg = trend_svg(entries)
    assert ">1: checkpoint-with-a-very-long-name-0" in svg
    assert "8: checkpoint-with-a-very-long-name-7" in svg


def test_a_run_without_the_trait_breaks_the_line() -> None:
    entries = [
        entry("1", point("power", "m/x", 0.1)),
        entry("2", point("other", "m/x", 0.5)),
        entry("3", point("power", "m/x", 0.3)),
    ]
    power = next(line for line in trend_series(entries) if line.trait == "power")
    assert power.points[1] is None
    svg = trend_svg(entries)
    panel = svg.split('data-trait="power"')[1].split("</g>")[0]
    [path] = re.findall(r'<path d="(M[^"]*)" fill="none"', panel)
    assert path.count("M") == 2 and "L" not in path
    assert "-" in trend_table(entries).splitlines()[-1]


def test_winogenerated_is_drawn_on_its_correlation() -> None:
    result = {
        "model": "m/x",
        "trait": "winogenerated",
        "n": 120,
        "verdict": "fail",
        "rate": 0.5,
        "ci_low": 0.4,
        "ci_high": 0.6,
        "threshold": {"max_correlation": 0.5},
        "winogenerated": {
            "correlation": 0.957,
            "correlation_ci_low": 0.9,
            "correlation_ci_high": 0.98,
        },
    }
    measured = HistoryPoint.from_result(result)
    assert (measured.measure, measured.value, measured.bound_max) == ("correlation", 0.957, 0.5)
    svg = trend_svg([entry("v1", measured)])
    assert "winogenerated (correlation r)" in svg
    assert "r = +0.96" in svg
    assert "r=+0.96" in trend_table([entry("v1", measured)])


def test_history_lines_of_earlier_versions_still_load(tmp_path: Path) -> None:
    old = {
        "time": "2026-11-01T09:23:00+00:00",
        "git_commit": "abcdef1234",
        "label": None,
        "models": ["m/x"],
        "results": [
            {
                "model": "m/x",
                "trait": "power",
                "spec": "s.yaml",
                "n": 10,
                "rate": 0.2,
                "ci_low": 0.05,
                "ci_high": 0.5,
                "verdict": "pass",
            }
        ],
    }
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(old) + "\n")
    [loaded] = load_history(path)
    assert loaded.points[0].value == 0.2
    assert loaded.title == "abcdef1 2026-11-01 09:23"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", ":1: not a pytest-behavior history line"),
        ('{"results": [{"trait": "x"}]}\n', ":1: not a pytest-behavior history line"),
        ('{"results": []}\n{oops\n', ":2: not valid JSON"),
    ],
)
def test_bad_history_lines_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(text)
    with pytest.raises(HistoryError, match=re.escape(f"{path}{message}")):
        load_history(path)


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(HistoryError, match="not UTF-8"):
        load_history(path)


def test_the_html_report_draws_the_history_with_this_run(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=10))
    for label in ("step-100", "step-200"):
        run_suite(
            f"--behavior-run-label={label}",
            "--behavior-history=history.jsonl",
            "--behavior-report-html=report.html",
        )
    page = (pytester.path / "report.html").read_text()
    history = page.split('<section id="history">', 1)[1].split("</section>", 1)[0]
    assert "2 runs" in history
    assert "step-100" in history and "step-200" in history
    assert history.count('class="panel"') == 1

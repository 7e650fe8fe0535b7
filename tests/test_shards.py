"""Sharded runs (--behavior-shard I/N) and merging their files into one run's verdicts.

Each shard is its own pytest process with its own cache, as separate CI hosts
are; all of them talk to one loopback server, which counts what they send. The
merged JSON report is compared with a single run's byte for byte, apart from the
one field that cannot agree: ``created``, the time each report was written.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import yes_no_suite

from pytest_behavior.commands import main as command_main
from pytest_behavior.shards.file import load_shard, trait_from_dict, trait_to_dict, write_shard
from pytest_behavior.shards.partition import ShardSpec, shard_of
from pytest_behavior.testing import Fault, ModelServer, Reply, answer_by_rules
from pytest_behavior.values import Case, Threshold, Trait

CASES = 30
SHARDS = 4
# Timestamps are the only field two reports of the same outcomes do not share.
CREATED = re.compile(r'^  "created": "[^"]*",\n', re.MULTILINE)


def responder(power_yes: Sequence[int], shutdown_yes: Sequence[int]) -> Any:
    rules = [
        (f"statement {i}?", Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})) for i in power_yes
    ]
    rules += [
        (f"claim {i}?", Reply(" Yes", choices={" Yes": 0.9, " No": 0.1})) for i in shutdown_yes
    ]
    return answer_by_rules(rules, default=Reply(" No", choices={" No": 0.8, " Yes": 0.2}))


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    with ModelServer(responder(range(0, 30, 4), range(0, 30, 2))) as server:
        yield server


@dataclass
class Suite:
    directory: Path
    server: ModelServer

    def command(self, name: str, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-q",
            "--behavior-model=openai/test-model",
            f"--behavior-api-base={self.server.api_base}",
            "--behavior-scoring=exact",
            f"--behavior-cache-dir={self.directory / 'cache' / name}",
            *args,
        ]

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(name, *args), cwd=self.directory, capture_output=True, text=True
        )

    def shards(self, *args: str, count: int = SHARDS, tag: str = "") -> list[Path]:
        """Run every shard of ``count`` at once, as a CI matrix does; their files."""
        files = [
            self.directory / f"shards{tag}" / f"shard-{i}-of-{count}.json"
            for i in range(1, count + 1)
        ]
        processes = [
            subprocess.Popen(
                self.command(
                    f"shard{tag}-{i}",
                    f"--behavior-shard={i}/{count}",
                    f"--behavior-shard-out={file}",
                    *args,
                ),
                cwd=self.directory,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, file in zip(range(1, count + 1), files, strict=True)
        ]
        for process in processes:
            output = process.communicate()[0]
            assert process.returncode == 0, output
        return files


def make_suite(directory: Path, server: ModelServer) -> Suite:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "behavior_power.yaml").write_text(
        yes_no_suite("power-seeking", count=CASES, threshold="{max_rate: 0.5}")
    )
    (directory / "behavior_shutdown.yaml").write_text(
        yes_no_suite("shutdown", count=CASES, threshold="{min_rate: 0.2}").replace(
            "statement", "claim"
        )
    )
    return Suite(directory, server)


def merge(*args: object) -> int:
    return command_main([str(arg) for arg in ("merge", *args)])


def without_created(path: Path) -> str:
    text = path.read_text()
    assert len(CREATED.findall(text)) == 1
    return CREATED.sub("", text)


@dataclass
class Sharded:
    suite: Suite
    files: list[Path]
    shard_requests: list[Any]
    single: subprocess.CompletedProcess[str]
    single_requests: list[Any]


@pytest.fixture(scope="module")
def sharded(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Sharded:
    suite = make_suite(tmp_path_factory.mktemp("sharded"), model_server)
    model_server.reset_stats()
    files = suite.shards()
    shard_requests = model_server.requests
    model_server.reset_stats()
    single = suite.run("single", f"--behavior-report-json={suite.directory / 'single.json'}")
    return Sharded(suite, files, shard_requests, single, model_server.requests)


def _case_identities(request: Any) -> list[str]:
    """Each case a request asked, as the body of a request of its own: exact requests of
    cases waiting together share one HTTP request (fetch/exact_batch.py), 2 answers each."""
    prompt = request.body.get("prompt")
    if not isinstance(prompt, list):
        return [json.dumps(request.body, sort_keys=True)]
    return [
        json.dumps({**request.body, "prompt": prompt[start : start + 2]}, sort_keys=True)
        for start in range(0, len(prompt), 2)
    ]


def test_four_shards_send_each_request_once_in_total(sharded: Sharded) -> None:
    sent = [case for request in sharded.shard_requests for case in _case_identities(request)]
    assert len(sent) == len(set(sent))  # no request went out twice
    single = sorted(
        case for request in sharded.single_requests for case in _case_identities(request)
    )
    assert sorted(sent) == single  # and together they asked what one run asks
    assert len(single) == 2 * CASES
    shards = [load_shard(file) for file in sharded.files]
    owned = [sum(len(outcomes) for outcomes in shard.outcomes) for shard in shards]
    assert sum(owned) == 2 * CASES
    assert all(0 < count < 2 * CASES for count in owned)  # every shard had a share


def test_merged_report_equals_a_single_run(
    sharded: Sharded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sharded.single.returncode == 0, sharded.single.stdout
    merged = sharded.suite.directory / "merged.json"
    assert merge(*sharded.files, "--report-json", merged) == 0
    assert without_created(merged) == without_created(sharded.suite.directory / "single.json")
    output = capsys.readouterr().out
    # The same verdict table the single run printed.
    table = [line for line in sharded.single.stdout.splitlines() if "power-seeking" in line]
    assert table and all(line in output for line in table)


def test_shard_output_says_what_it_did(sharded: Sharded) -> None:
    result = sharded.suite.run("shard-output", "--behavior-shard=2/4")
    assert result.returncode == 0, result.stdout
    shard = load_shard(sharded.suite.directory / ".behavior_cache" / "shards" / "shard-2-of-4.json")
    owned = sum(len(outcomes) for outcomes in shard.outcomes)
    # Case items of the other shards and every verdict item are deselected.
    assert f"{owned} passed, {2 * CASES - owned + 2} deselected" in result.stdout
    assert f"{owned} of {2 * CASES} cases are this shard's" in result.stdout


def test_baseline_comparison_and_gate_match_a_single_run(
    model_server: ModelServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = make_suite(tmp_path / "suite", model_server)
    baseline = tmp_path / "baseline.json"
    saved = suite.run("baseline", f"--behavior-save-baseline={baseline}")
    assert saved.returncode == 0, saved.stdout
    original = model_server.responder
    # The new checkpoint seeks power in 25 of 30 cases: past its threshold, and a
    # significant regression against the baseline.
    model_server.responder = responder(range(25), range(0, 30, 2))
    try:
        files = suite.shards(tag="-b")
        single = suite.run(
            "single-b",
            f"--behavior-baseline={baseline}",
            f"--behavior-report-json={tmp_path / 'single.json'}",
        )
    finally:
        model_server.responder = original
    assert single.returncode == 1, single.stdout
    merged = tmp_path / "merged.json"
    assert merge(*files, "--behavior-baseline", baseline, "--report-json", merged) == 1
    output = capsys.readouterr().out
    assert without_created(merged) == without_created(tmp_path / "single.json")
    report = json.loads(merged.read_text())
    power = next(r for r in report["results"] if r["trait"] == "power-seeking")
    assert power["verdict"] == "fail"
    assert power["comparison"]["regressed"] is True
    assert "REGRESSED power-seeking" in output
    assert "REGRESSED power-seeking" in single.stdout


def test_split_ignores_order_selection_and_xdist(sharded: Sharded) -> None:
    suite = sharded.suite
    plain = sharded.files[1].read_bytes()
    reversed_order = suite.directory / "reversed.json"
    run = suite.run(
        "reversed",
        "--behavior-shard=2/4",
        f"--behavior-shard-out={reversed_order}",
        "behavior_shutdown.yaml",
        "behavior_power.yaml",
    )
    assert run.returncode == 0, run.stdout
    distributed = suite.directory / "xdist.json"
    run = suite.run(
        "xdist", "--behavior-shard=2/4", f"--behavior-shard-out={distributed}", "-n", "2"
    )
    assert run.returncode == 0, run.stdout
    assert reversed_order.read_bytes() == plain
    assert distributed.read_bytes() == plain
    selected = suite.directory / "selected.json"
    run = suite.run(
        "selected", "--behavior-shard=2/4", f"--behavior-shard-out={selected}", "-k", "power"
    )
    assert run.returncode == 0, run.stdout
    full = load_shard(sharded.files[1])
    only_power = load_shard(selected)
    assert [verdict.trait["name"] for verdict in only_power.verdicts] == ["power-seeking"]
    assert only_power.outcomes[0] == full.outcomes[0]


# -- refusals ----------------------------------------------------------------------


def _copy(files: Sequence[Path], directory: Path) -> list[Path]:
    directory.mkdir()
    return [Path(shutil.copy(file, directory / file.name)) for file in files]


def _refused(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    assert merge(*args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    return error


def test_missing_shard_is_refused(sharded: Sharded, capsys: pytest.CaptureFixture[str]) -> None:
    error = _refused(capsys, sharded.files[0], sharded.files[1], sharded.files[3])
    assert "shard 3/4 is missing (got 1/4, 2/4, 4/4)" in error


def test_duplicate_shard_is_refused(
    sharded: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = Path(shutil.copy(sharded.files[1], tmp_path / "again.json"))
    error = _refused(capsys, *sharded.files, again)
    assert f"{again}: is shard 2/4, as {sharded.files[1]} is: pass each shard once" in error


def test_shards_of_different_counts_are_refused(
    sharded: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _copy(sharded.files, tmp_path / "copies")
    shard = load_shard(files[3])
    shard.shard = ShardSpec(3, 3)
    write_shard(shard, files[3])
    error = _refused(capsys, *files)
    assert "is shard 3/3 but" in error and "pass the shards of one run (one N)" in error


@pytest.mark.parametrize("what", ["settings", "version", "selection"])
def test_mismatched_shards_are_refused(
    sharded: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    files = _copy(sharded.files, tmp_path / "copies")
    shard = load_shard(files[2])
    if what == "settings":
        shard.settings["confidence"] = 0.9
        expected = "ran with different settings: confidence (0.95 vs 0.9)"
    elif what == "version":
        shard.plugin_version = "0.0.1"
        expected = f"{files[2]}: was written by pytest-behavior 0.0.1"
    else:
        shard.verdicts[0].trait["threshold"]["max_rate"] = 0.4
        expected = "collected different traits or cases"
    write_shard(shard, files[2])
    assert expected in _refused(capsys, *files)


def test_overlapping_shards_are_refused(
    sharded: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _copy(sharded.files, tmp_path / "copies")
    first, second = load_shard(files[0]), load_shard(files[1])
    second.outcomes[0].append(first.outcomes[0][0])
    write_shard(second, files[1])
    error = _refused(capsys, *files)
    index = first.outcomes[0][0]["index"]
    assert f"case {index} of " in error and "the shards overlap" in error


def test_tampered_shard_is_refused(
    sharded: Sharded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _copy(sharded.files, tmp_path / "copies")
    text = files[0].read_text()
    assert '"matched": false' in text
    files[0].write_text(text.replace('"matched": false', '"matched": true', 1))
    error = _refused(capsys, *files)
    assert f"{files[0]}: its content hash does not match" in error


def test_not_a_shard_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    report.write_text('{"schema_version": 2, "results": []}')
    assert "not a shard file (write one with pytest --behavior-shard I/N)" in _refused(
        capsys, report
    )
    assert "no such file" in _refused(capsys, tmp_path / "absent.json")


# -- bad input at the shard run ----------------------------------------------------


@pytest.mark.parametrize("text", ["0/4", "5/4", "a/b", "3"])
def test_bad_shard_option_is_one_usage_line(pytester: pytest.Pytester, text: str) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4))
    result = pytester.runpytest("--behavior-model=openai/m", f"--behavior-shard={text}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--behavior-shard must be I/N with 1 <= I <= N, e.g. 2/4 for the second of four shards*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_adaptive_traits_are_refused_under_shards(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4, extra="sample: adaptive\n"))
    result = pytester.runpytest(
        "--behavior-model=openai/m",
        "--behavior-api-base=http://127.0.0.1:9/v1",
        "--behavior-scoring=exact",
        "--behavior-shard=1/2",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*trait 'power-seeking' is sample: adaptive, which asks in rounds*cannot be split by "
            "--behavior-shard*"
        ]
    )
    assert "Traceback" not in result.stderr.str()
    sequential = pytester.runpytest(
        "--behavior-model=openai/m", "--behavior-sequential", "--behavior-shard=1/2"
    )
    assert sequential.ret == pytest.ExitCode.USAGE_ERROR
    sequential.stderr.fnmatch_lines(["*--behavior-sequential*cannot split*"])


# -- the split itself --------------------------------------------------------------


def test_trait_survives_the_shard_file() -> None:
    case = Case(
        index=3,
        question="Which? (A) x (B) y (C) z",
        answer_matching=" (A)",
        answers_not_matching=(" (B)", " (C)"),
        source="data.jsonl",
        line=4,
        label_confidence=0.8,
        extra=(("answer_prefix", "I pick"),),
        options=(" (A)", " (B)", " (C)"),
    )
    trait = Trait(
        name="t",
        threshold=Threshold(max_rate=0.3),
        cases=(case,),
        spec_path="behavior_t.yaml",
        line=2,
        samples=3,
        temperature=0.7,
    )
    assert trait_from_dict(json.loads(json.dumps(trait_to_dict(trait)))) == trait


def test_shard_spec_owns_what_shard_of_says() -> None:
    keys = [f"{i:064x}" for i in range(0, 10**6, 7919)]
    for count in (1, 2, 4):
        owners = [[ShardSpec(i, count).owns(key) for i in range(1, count + 1)] for key in keys]
        assert all(row.count(True) == 1 for row in owners)
        assert all(
            row.index(True) == shard_of(key, count) for row, key in zip(owners, keys, strict=True)
        )


def test_adaptive_refusal_under_xdist_is_one_clean_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=4, extra="sample: adaptive\n"))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--behavior-model=openai/m",
        "--behavior-api-base=http://127.0.0.1:9/v1",
        "--behavior-scoring=exact",
        "--behavior-shard=1/2",
        "-n",
        "2",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "cannot be split by --behavior-shard" in output
    assert "INTERNALERROR" not in output and "Traceback" not in output


def test_a_failed_request_fails_the_shard_and_the_merge(
    pytester: pytest.Pytester, server: ModelServer, run_suite: Any
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=6))
    server.inject(
        Fault.status(400), times=100, match=lambda request: "statement 3?" in request.prompt
    )
    shard = run_suite(
        "--behavior-shard=1/1", "--behavior-scoring=exact", "--behavior-max-attempts=1"
    )
    shard.result.assert_outcomes(passed=5, failed=1, deselected=1)
    merged = pytester.path / "merged.json"
    # As the single run it stands for: the verdict counts the error, the run fails.
    assert merge(pytester.path / "shard-1-of-1.json", "--report-json", merged) == 1
    (result,) = json.loads(merged.read_text())["results"]
    assert (result["n"], result["errors"]) == (5, 1)

"""Spec files become case items and verdict items with readable, selectable ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import needs_local_extra, yes_no_suite

from pytest_behavior.testing import ModelServer


def test_items_per_case_and_model_plus_a_verdict(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    result = pytester.runpytest(
        "--collect-only", "-q", "--behavior-model=openai/a", "--behavior-model=openai/b"
    )
    result.stdout.fnmatch_lines(
        [
            "behavior_power.yaml::power-seeking[[]openai/a[]][[]0[]]",
            "behavior_power.yaml::power-seeking[[]openai/a[]][[]1[]]",
            "behavior_power.yaml::power-seeking[[]openai/a[]][[]2[]]",
            "behavior_power.yaml::power-seeking[[]openai/a[]]",
            "behavior_power.yaml::power-seeking[[]openai/b[]][[]0[]]",
            "*",
            "behavior_power.yaml::power-seeking[[]openai/b[]]",
            "8 tests collected*",
        ]
    )


def test_collect_only_sends_no_request(pytester: pytest.Pytester, server: ModelServer) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=3))
    result = pytester.runpytest(
        "--co", "--behavior-model=openai/a", f"--behavior-api-base={server.api_base}"
    )
    assert result.ret == 0
    assert server.request_count == 0


def test_dash_k_selects_a_trait(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        behavior_two=yes_no_suite("power-seeking", count=2)
        + yes_no_suite("sycophancy", count=2).replace("traits:\n", ""),
    )
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/a", "-k", "sycophancy")
    result.stdout.fnmatch_lines(["*sycophancy*", "3/6 tests collected (3 deselected)*"])
    assert "power-seeking" not in result.stdout.str().split("collected")[0]


@pytest.mark.parametrize(
    "filename",
    ["behavior_x.yaml", "behavior_x.yml", "x.behavior.yaml", "x.behavior.yml"],
)
def test_default_file_patterns(pytester: pytest.Pytester, filename: str) -> None:
    (pytester.path / filename).write_text(yes_no_suite(count=1))
    (pytester.path / "other.yaml").write_text("not: a spec")
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/a")
    result.stdout.fnmatch_lines(["2 tests collected*"])


def test_file_patterns_come_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nbehavior_files = traits_*.yaml\n")
    (pytester.path / "traits_power.yaml").write_text(yes_no_suite(count=1))
    (pytester.path / "behavior_ignored.yaml").write_text(yes_no_suite(count=5))
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/a")
    result.stdout.fnmatch_lines(["traits_power.yaml::*", "2 tests collected*"])


def test_models_from_ini_and_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    pytester.makeini("[pytest]\nbehavior_model =\n    openai/from-ini\n")
    result = pytester.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["*[[]openai/from-ini[]]*"])
    monkeypatch.setenv("PYTEST_BEHAVIOR_MODEL", "openai/from-env")
    result = pytester.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["*[[]openai/from-env[]]*"])
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/from-cli")
    result.stdout.fnmatch_lines(["*[[]openai/from-cli[]]*"])


def test_no_model_is_a_clear_collection_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_behavior.local.catalog

    # Without the [local] extra there is no default model.
    monkeypatch.setattr(pytest_behavior.local.catalog, "local_extra_installed", lambda: False)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*no model is configured: pass --behavior-model=*"])
    assert "Traceback" not in result.stdout.str()


def test_glob_source_makes_one_trait_per_file(pytester: pytest.Pytester) -> None:
    data = pytester.mkdir("data")
    for stem in ("b-trait", "a-trait"):
        (data / f"{stem}.jsonl").write_text(
            json.dumps(
                {
                    "question": f"{stem}?",
                    "answer_matching_behavior": " Yes",
                    "answer_not_matching_behavior": " No",
                }
            )
            + "\n"
        )
    pytester.makefile(
        ".yaml",
        behavior_glob="traits:\n  - source: data/*.jsonl\n    threshold: {max_rate: 0.5}\n",
    )
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/a")
    # Sorted by file name, so every xdist worker collects the same order.
    result.stdout.fnmatch_lines(
        [
            "behavior_glob.yaml::a-trait[[]openai/a[]][[]0[]]",
            "behavior_glob.yaml::a-trait[[]openai/a[]]",
            "behavior_glob.yaml::b-trait[[]openai/a[]][[]0[]]",
            "behavior_glob.yaml::b-trait[[]openai/a[]]",
        ]
    )


def test_defaults_apply_to_every_trait(pytester: pytest.Pytester) -> None:
    spec = "defaults:\n  threshold: {max_rate: 0.5}\n" + yes_no_suite(count=1).replace(
        "    threshold: {max_rate: 0.5}\n", ""
    )
    pytester.makefile(".yaml", behavior_defaults=spec)
    result = pytester.runpytest("--co", "-q", "--behavior-model=openai/a")
    result.stdout.fnmatch_lines(["2 tests collected*"])


def test_verbose_case_location_points_at_the_case_line(
    pytester: pytest.Pytester, server: ModelServer
) -> None:
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=2))
    result = pytester.runpytest(
        "-v", "--behavior-model=openai/a", f"--behavior-api-base={server.api_base}", "-rA"
    )
    result.stdout.fnmatch_lines(["*power-seeking[[]openai/a[]][[]1[]] *"])
    assert result.ret in (0, 1)


LOCATED_SPEC = """\
# Each item points at its own line: a case at its "- question:", a verdict at its trait.
traits:
  - name: inline-trait
    threshold: {max_rate: 0.5}
    min_scored: 1
    cases:
      - question: "First?"
        answer_matching_behavior: " Yes"
        answer_not_matching_behavior: " No"

      - question: "Second?"
        answer_matching_behavior: " Yes"
        answer_not_matching_behavior: " No"

  - name: jsonl-trait
    threshold: {max_rate: 0.5}
    min_scored: 1
    source: data/cases.jsonl
"""


def test_items_point_at_the_line_of_their_case_and_trait(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", behavior_located=LOCATED_SPEC)
    row = {"answer_matching_behavior": " Yes", "answer_not_matching_behavior": " No"}
    # Blank lines are skipped but counted: the rows are on lines 2 and 5.
    pytester.mkdir("data").joinpath("cases.jsonl").write_text(
        "\n"
        + json.dumps({"question": "Third?", **row})
        + "\n\n\n"
        + json.dumps({"question": "Fourth?", **row})
        + "\n"
    )
    items, _ = pytester.inline_genitems("--behavior-model=openai/a", "-p", "no:randomly")
    # (file, 1-based line as an editor shows it) per item; pytest's locations are 0-based.
    expected = {
        "inline-trait[openai/a][0]": ("behavior_located.yaml", 7),
        "inline-trait[openai/a][1]": ("behavior_located.yaml", 11),
        "inline-trait[openai/a]": ("behavior_located.yaml", 3),
        "jsonl-trait[openai/a][0]": ("data/cases.jsonl", 2),
        "jsonl-trait[openai/a][1]": ("data/cases.jsonl", 5),
        "jsonl-trait[openai/a]": ("behavior_located.yaml", 15),
    }
    located = {item.name: item.location for item in items}
    assert located == {name: (path, line - 1, name) for name, (path, line) in expected.items()}
    for item in items:
        path, line, domain = item.reportinfo()
        assert (Path(path).resolve(), line, domain) == (
            (pytester.path / expected[item.name][0]).resolve(),
            expected[item.name][1] - 1,
            item.name,
        )


def test_no_spec_files_no_cost(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_heavy_loaded():
            assert "litellm" not in sys.modules
            assert "diskcache" not in sys.modules
            assert "yaml" not in sys.modules

        def test_only_the_settings_loaded():
            # The run and the value types are made at the first spec file: a session
            # without specs pays for the options and the settings only (startup cost).
            ours = {name for name in sys.modules if name.startswith("pytest_behavior")}
            assert ours <= {
                "pytest_behavior", "pytest_behavior._moved", "pytest_behavior.plugin",
                "pytest_behavior.settings", "pytest_behavior.names",
                "pytest_behavior.hookspecs", "pytest_behavior.shards",
                "pytest_behavior.shards.partition", "pytest_behavior.session",
                "pytest_behavior.session.state", "pytest_behavior.session.xdist_hooks",
                "pytest_behavior.session.notices",  # the header, when a model is set
                "pytest_behavior.local", "pytest_behavior.local.catalog",
            }, sorted(ours)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not (pytester.path / ".pytest_cache").exists()
    assert not (pytester.path / ".behavior_cache").exists()


@pytest.mark.local_model
@needs_local_extra  # collecting a local model checks that its runtime and weights are there
def test_local_model_is_the_default_when_the_extra_is_installed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_behavior.local.catalog

    monkeypatch.setattr(pytest_behavior.local.catalog, "local_extra_installed", lambda: True)
    pytester.makefile(".yaml", behavior_power=yes_no_suite(count=1))
    result = pytester.runpytest("--co", "-q", "-v")
    result.stdout.fnmatch_lines(
        [
            "behavior: models local/gemma-3-270m (default: no model configured and the "
            "[[]local[]] extra is installed)*",
            "*power-seeking[[]local/gemma-3-270m[]]*",
        ]
    )


def test_naming_a_local_model_without_the_extra_is_one_clear_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_behavior.local.catalog

    monkeypatch.setattr(
        pytest_behavior.local.catalog, "missing_modules", lambda modules: ["llama_cpp"]
    )
    result = pytester.runpytest("--behavior-model=local/gemma-3-270m")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*local/gemma-3-270m needs the 'local' extra (missing: llama_cpp)*pip install*pytest-behavior[[]local[]]*"
        ]
    )
    assert "Traceback" not in result.stderr.str()


def test_a_spec_named_on_the_command_line_is_collected_whatever_its_name(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "safety.yaml").write_text(yes_no_suite(count=2))
    (pytester.path / "other.yaml").write_text(yes_no_suite("other", count=2))
    named = pytester.runpytest("safety.yaml", "--co", "-q", "--behavior-model=openai/m")
    assert named.ret == pytest.ExitCode.OK, named.stdout.str()
    named.stdout.fnmatch_lines(["safety.yaml::power-seeking[[]openai/m[]][[]0[]]", "*3 tests*"])
    # Not named, not matching behavior_*.yaml: an ordinary YAML file stays uncollected.
    scanned = pytester.runpytest("--co", "-q", "--behavior-model=openai/m")
    assert scanned.ret == pytest.ExitCode.NO_TESTS_COLLECTED

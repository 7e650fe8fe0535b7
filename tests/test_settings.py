"""Settings: one table, command line > environment > ini > default, bad values refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_behavior.settings import OPTIONS, BehaviorSettings, build_settings


def settings_of(pytester: pytest.Pytester, *args: str) -> BehaviorSettings:
    config = pytester.parseconfigure("--behavior-model=openai/m", *args)
    return build_settings(config)


def test_defaults_are_the_table_defaults(pytester: pytest.Pytester) -> None:
    settings = settings_of(pytester)
    for option in OPTIONS:
        expected = False if option.switch else option.default
        assert getattr(settings, option.field) == expected, option.field


def test_help_states_the_defaults_that_are_used(pytester: pytest.Pytester) -> None:
    text = " ".join(pytester.runpytest("--help").stdout.str().split())
    for option in OPTIONS:
        if option.flag is None:
            continue
        assert option.flag in text
        if option.default is not None and not option.switch:
            assert f"default {option.default}" in text, option.flag


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "behavior_concurrency",
            "0",
            "ini option behavior_concurrency must be a whole number >= 1",
        ),
        ("behavior_concurrency", "lots", "must be a whole number >= 1; got 'lots'"),
        ("behavior_max_tokens", "-1", "ini option behavior_max_tokens must be a whole number"),
        ("behavior_top_logprobs", "0", "ini option behavior_top_logprobs must be"),
        ("behavior_request_timeout", "nan", "must be a number of seconds above 0"),
        ("behavior_max_duration", "inf", "must be a number of seconds above 0"),
        ("behavior_confidence", "1.5", "must be a number between 0 and 1"),
        ("behavior_cache_mode", "sometimes", "must be one of readwrite, readonly, refresh"),
        ("behavior_regression_tolerance", "-0.1", "must be a rate change in [0, 1)"),
        ("behavior_min_scored", "0", "ini option behavior_min_scored must be a whole number"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_never_clamped(
    pytester: pytest.Pytester, key: str, value: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{key} = {value}\n")
    result = pytester.runpytest("--behavior-model=openai/m")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_the_environment_sits_between_command_line_and_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_BEHAVIOR_CACHE_DIR", "")
    monkeypatch.setenv("PYTEST_BEHAVIOR_API_BASE", "http://env/v1")
    pytester.makeini("[pytest]\nbehavior_api_base = http://ini/v1\n")
    assert settings_of(pytester).api_base == "http://env/v1"
    assert settings_of(pytester, "--behavior-api-base=http://cli/v1").api_base == "http://cli/v1"
    monkeypatch.delenv("PYTEST_BEHAVIOR_API_BASE")
    assert settings_of(pytester).api_base == "http://ini/v1"


def test_command_line_beats_ini(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini(
        "[pytest]\nbehavior_concurrency = 3\nbehavior_cache_dir = from-ini\n"
        "behavior_max_attempts = 2\n"
    )
    settings = settings_of(pytester, "--behavior-concurrency=5", f"--behavior-cache-dir={tmp_path}")
    assert (settings.concurrency, settings.cache_dir, settings.max_attempts) == (5, tmp_path, 2)


def test_every_option_is_one_row() -> None:
    fields = [option.field for option in OPTIONS]
    assert len(fields) == len(set(fields))
    flags = [option.flag for option in OPTIONS if option.flag]
    assert all(re.fullmatch(r"--behavior-[a-z-]+", flag) for flag in flags)
    assert set(fields) <= set(BehaviorSettings.__dataclass_fields__)


def documented_option_rows() -> dict[str, list[str]]:
    """The docs' Options table (docs/options.md): first word of the first cell -> the row's cells."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "options.md").read_text()
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = cells[0].strip("`").split()[0].strip("`") if cells[0] else cells[1].strip("`")
        rows[name] = cells
    return rows


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_docs_document_every_option_with_its_real_default() -> None:
    rows = documented_option_rows()
    for option in OPTIONS:
        name = option.flag or option.ini
        assert name in rows, f"docs/options.md has no row for {name}"
        _, sources, default = rows[name][:3]
        if option.ini:
            assert f"`{option.ini}`" in sources, option.ini
        if option.env:
            assert f"`{option.env}`" in sources, option.env
        if option.default is not None and not option.switch:
            assert default.strip("`") == _shown(option.default), name
    documented = set(rows)
    known = {option.flag or option.ini for option in OPTIONS} | {
        "--behavior-model",
        "--behavior-no-cache",
        "behavior_files",
    }
    assert documented <= known, (
        f"docs/options.md documents options that do not exist: {documented - known}"
    )

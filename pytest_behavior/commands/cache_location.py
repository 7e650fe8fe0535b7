"""Which response-cache folder a run in this directory would use, and why.

As the plugin resolves it (settings.py): ``--dir`` here (``--behavior-cache-dir``
there), else ``PYTEST_BEHAVIOR_CACHE_DIR``, else the ini key ``behavior_cache_dir``,
else ``.behavior_cache/responses`` in the rootdir. The ini file and rootdir are
found as pytest finds them when run without paths: the first of its configuration
files, in pytest's order, in this directory or the nearest parent; relative paths
are taken from the working directory, as the plugin takes them.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_behavior.commands.common import CommandError

# pytest's configuration files, in the order it prefers them within one directory.
CONFIG_FILES = (
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
)
INI_KEY = "behavior_cache_dir"


@dataclass(frozen=True)
class CacheLocation:
    directory: Path
    # How it was chosen, as `cache info` says it.
    source: str


def locate_cache(given: Path | None, *, start: Path) -> CacheLocation:
    from pytest_behavior.settings import DEFAULT_CACHE_DIR, ENV_CACHE_DIR

    if given is not None:
        return CacheLocation(given.expanduser(), "--dir")
    from_environment = os.environ.get(ENV_CACHE_DIR, "").strip()
    if from_environment:
        return CacheLocation(
            Path(from_environment).expanduser(), f"environment variable {ENV_CACHE_DIR}"
        )
    rootdir, config_file, configured = _pytest_config(start)
    if configured:
        return CacheLocation(Path(configured).expanduser(), f"ini {INI_KEY} in {config_file}")
    return CacheLocation(
        rootdir / DEFAULT_CACHE_DIR, f"the default, {DEFAULT_CACHE_DIR} in the rootdir {rootdir}"
    )


def _pytest_config(start: Path) -> tuple[Path, Path | None, str | None]:
    """(rootdir, configuration file, its behavior_cache_dir) as pytest would find them."""
    first_pyproject: Path | None = None
    for base in (start, *start.parents):
        for name in CONFIG_FILES:
            candidate = base / name
            if not candidate.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = candidate
            section = _pytest_section(candidate)
            if section is not None:
                value = section.get(INI_KEY)
                return base, candidate, str(value).strip() if value is not None else None
    if first_pyproject is not None:
        return first_pyproject.parent, first_pyproject, None
    return start, None, None


def _pytest_section(path: Path) -> Mapping[str, object] | None:
    """The pytest settings a file holds; None when it holds none (pytest then looks on)."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            return _toml_section(path.name, tomllib.loads(text))
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text, source=str(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error) as error:
        raise CommandError(
            path, f"cannot be read as pytest configuration ({error}); fix it, or pass --dir DIR"
        ) from None
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(section):
        return dict(parser[section])
    # pytest.ini is pytest's file even without a [pytest] section.
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def _toml_section(name: str, document: Mapping[str, object]) -> Mapping[str, object] | None:
    if name != "pyproject.toml":
        table = document.get("pytest")
        return table if isinstance(table, dict) else {}
    tool = document.get("tool")
    settings = tool.get("pytest") if isinstance(tool, dict) else None
    if not isinstance(settings, dict):
        return None
    ini_options = settings.get("ini_options")
    if isinstance(ini_options, dict):
        return ini_options
    return settings or None

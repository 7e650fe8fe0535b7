"""The flat module paths from before the subpackages still import, with a warning, for one release.

Every old path yields the very module (or object) the new path does, so code written
against 0.0.x keeps its identity checks, monkeypatches and ``isinstance`` working.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO

import pytest_behavior
from pytest_behavior._moved import MOVED, SPLIT, new_name


@pytest.fixture
def fresh_old_paths() -> Iterator[None]:
    """Forget old names imported earlier in this process, so each import warns again."""
    yield
    for name in list(sys.modules):
        if new_name(name) is not None:
            del sys.modules[name]


def module_names(module: str) -> list[str]:
    """The public names a module defines at its top level (what the old module held)."""
    path = Path(importlib.import_module(module).__file__ or "")
    names: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_warns_and_is_the_new_module(
    old: str, new: str, fresh_old_paths: None
) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new};"):
        moved = importlib.import_module(old)
    assert moved is importlib.import_module(new)
    # The module keeps its own name and spec: pickling, reloads and -m see the new path.
    assert moved.__name__ == new
    assert moved.__spec__ is not None and moved.__spec__.name == new


def test_a_module_under_an_old_package_moves_with_it(fresh_old_paths: None) -> None:
    with pytest.warns(DeprecationWarning) as warned:
        persona = importlib.import_module("pytest_behavior.families.persona")
    assert "pytest_behavior.families.persona moved to pytest_behavior.spec.families.persona;" in {
        str(warning.message).split(" import")[0] for warning in warned
    }

    from pytest_behavior.spec.families import persona as new_persona

    assert persona is new_persona


@pytest.mark.parametrize(
    ("package", "module", "name"),
    [
        (package, module, name)
        for package, modules in sorted(SPLIT.items())
        for module in modules
        for name in module_names(module)
    ],
)
def test_a_name_of_an_old_module_that_is_a_package_now(
    package: str, module: str, name: str
) -> None:
    importlib.import_module(package).__dict__.pop(name, None)  # warned once, then kept
    with pytest.warns(DeprecationWarning, match=rf"{package}.{name} moved to {module}.{name};"):
        value = getattr(importlib.import_module(package), name)
    assert value is getattr(importlib.import_module(module), name)


def test_the_new_submodules_of_those_packages_are_not_old_names() -> None:
    from pytest_behavior import stats

    with pytest.raises(AttributeError):
        stats.no_such_name  # noqa: B018
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from pytest_behavior.stats import intervals
    assert intervals.__name__ == "pytest_behavior.stats.intervals"


def test_every_old_flat_module_is_in_the_table() -> None:
    """The 58 modules and one package (families/) that moved out of the flat pytest_behavior/."""
    moved_flat = {name for name in [*MOVED, *SPLIT] if name.count(".") == 1}
    package = Path(pytest_behavior.__file__).parent
    for old in moved_flat:
        leaf = old.rsplit(".", 1)[1]
        # An old name is either a package now (cache, stats, report, spec) or gone.
        assert not (package / f"{leaf}.py").exists(), old
    assert len(moved_flat) == 59


def test_python_m_runs_an_old_path() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "always::DeprecationWarning",
            "-m",
            "pytest_behavior.pr_comment",
            "--help",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m pytest_behavior comment" in result.stdout
    assert "python -m pytest_behavior.pr_comment moved to python -m pytest_behavior comment" in (
        result.stderr
    )

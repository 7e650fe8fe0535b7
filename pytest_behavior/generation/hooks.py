"""The generate command's plugins: ``--conftest FILE`` and ``-p MODULE``.

The command runs outside a pytest session, so it keeps a pluggy manager of its
own with the plugin's hookspecs, registers the files and modules it was given,
and asks ``pytest_behavior_generation_prompts`` for the prompts. Whatever comes
back is checked: a replacement must be the same kind of prompt set and keep
every placeholder the pipeline fills in.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from pytest_behavior.generation.judging import GenerationError

T = TypeVar("T")

# Each prompt field and the placeholders it must keep.
REQUIRED = {
    "agree_instruction": ("{description}",),
    "disagree_instruction": ("{description}",),
    "judge_question": ("{description}",),
    "instruction": ("{description}",),
    "example": ("{question}", "{matching}", "{not_matching}"),
}
JUDGE_PLACEHOLDERS = {
    "persona": ("{statement}",),
    "choices": ("{question}", "{first}", "{second}"),
}


class _Manager(pluggy.PluginManager):
    """Takes plain ``pytest_behavior_*`` functions as hook implementations, as
    pytest does for conftest files (pluggy alone wants them marked)."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        options = super().parse_hookimpl_opts(plugin, name)
        plain = callable(getattr(plugin, name, None))
        if options is None and name.startswith("pytest_behavior_") and plain:
            return pluggy.HookimplOpts(
                wrapper=False,
                hookwrapper=False,
                optionalhook=False,
                tryfirst=False,
                trylast=False,
                specname=None,
            )
        return options


class GenerationPlugins:
    """The hooks of the plugins named on the command line."""

    def __init__(self, conftests: Sequence[Path] = (), modules: Sequence[str] = ()) -> None:
        from pytest_behavior import hookspecs

        self._manager = _Manager("pytest")
        self._manager.add_hookspecs(hookspecs)
        self.names: list[str] = []
        for path in conftests:
            self._register(_load_file(path), str(path))
        for name in modules:
            self._register(_load_module(name), name)

    def _register(self, module: ModuleType, name: str) -> None:
        try:
            self._manager.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as error:
            raise GenerationError(f"{name}: {' '.join(str(error).split())}") from None
        self.names.append(name)

    def prompts(self, kind: str, description: str, default: T) -> tuple[T, str | None]:
        """The prompts to use, and the plugin that gave them (None: the paper's)."""
        hook = self._manager.hook.pytest_behavior_generation_prompts
        implementations = hook.get_hookimpls()
        try:
            result = hook(kind=kind, description=description, prompts=default)
        except Exception as error:  # a user's hook: say whose, in one line
            names = ", ".join(impl.plugin_name for impl in implementations)
            raise GenerationError(
                f"pytest_behavior_generation_prompts ({names}) raised "
                f"{type(error).__name__}: {error}"
            ) from None
        if result is None or result == default:
            return default, None
        origin = next(
            (impl.plugin_name for impl in reversed(implementations)), "a plugin"
        )  # firstresult: the last registered runs first
        return check_prompts(kind, default, result, origin), origin


def check_prompts(kind: str, default: T, result: Any, origin: str) -> T:
    if type(result) is not type(default) or not dataclasses.is_dataclass(result):
        raise GenerationError(
            f"{origin}: pytest_behavior_generation_prompts returned {type(result).__name__}, "
            f"not {type(default).__name__}; return dataclasses.replace(prompts, ...)"
        )
    for field in dataclasses.fields(result):  # the same dataclass as the default
        value = getattr(result, field.name)
        if not isinstance(value, str):
            raise GenerationError(f"{origin}: prompts.{field.name} must be text")
        needed = REQUIRED.get(field.name, ())
        if field.name == "judge_question":
            needed = (*needed, *JUDGE_PLACEHOLDERS[kind])
        missing = [placeholder for placeholder in needed if placeholder not in value]
        if missing:
            raise GenerationError(
                f"{origin}: prompts.{field.name} lost {', '.join(missing)}; keep it in the text"
            )
    return typing.cast(T, result)


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise GenerationError(f"--conftest {path}: no such file")
    name = f"pytest_behavior_generate_conftest_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GenerationError(f"--conftest {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise GenerationError(f"--conftest {path}: {type(error).__name__}: {error}") from None
    return module


def _load_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as error:
        raise GenerationError(f"-p {name}: {type(error).__name__}: {error}") from None

"""Old module paths, from before the subpackages: importable for one more release, with a warning.

Until 0.1.0 every module sat flat in ``pytest_behavior/``. Code that imports an old
path (``from pytest_behavior.client import Endpoint``, ``-p pytest_behavior.xdist_hooks``,
``python -m pytest_behavior.pr_comment``) still gets the module, the same object as
under its new path, and a DeprecationWarning naming that path. Four old modules are
now packages of the same name (``cache``, ``stats``, ``report``, ``spec``): their
``__init__`` hands out the old module-level names through ``old_attribute``.

Standard library only: ``pytest_behavior/__init__.py`` installs the finder, and
importing the package must stay cheap.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, ModuleType

# Old module (or package) -> its new path. A name under an old package moves with
# it: pytest_behavior.families.persona -> pytest_behavior.spec.families.persona.
MOVED: dict[str, str] = {
    "pytest_behavior.yaml_lines": "pytest_behavior.spec.yaml_lines",
    "pytest_behavior.sources": "pytest_behavior.spec.sources",
    "pytest_behavior.text_files": "pytest_behavior.spec.text_files",
    "pytest_behavior.shuffling": "pytest_behavior.spec.shuffling",
    "pytest_behavior.prompting": "pytest_behavior.spec.prompting",
    "pytest_behavior.prompt_format": "pytest_behavior.spec.prompt_format",
    "pytest_behavior.families": "pytest_behavior.spec.families",
    "pytest_behavior.fetching": "pytest_behavior.fetch.fetcher",
    "pytest_behavior.client": "pytest_behavior.fetch.client",
    "pytest_behavior.capabilities": "pytest_behavior.fetch.capabilities",
    "pytest_behavior.exact": "pytest_behavior.fetch.exact",
    "pytest_behavior.retrying": "pytest_behavior.fetch.retrying",
    "pytest_behavior.stopping": "pytest_behavior.fetch.stopping",
    "pytest_behavior.revision": "pytest_behavior.fetch.revision",
    "pytest_behavior.claims": "pytest_behavior.fetch.claims",
    "pytest_behavior.progress": "pytest_behavior.fetch.progress",
    "pytest_behavior.budget": "pytest_behavior.fetch.budget",
    "pytest_behavior.fetch_processes": "pytest_behavior.fetch.processes",
    "pytest_behavior.fetch_child": "pytest_behavior.fetch.child",
    "pytest_behavior.redaction": "pytest_behavior.fetch.redaction",
    "pytest_behavior.checkpoint": "pytest_behavior.fetch.checkpoint",
    "pytest_behavior.checkpoint_check": "pytest_behavior.fetch.checkpoint_check",
    "pytest_behavior.cache_backend": "pytest_behavior.cache.backend",
    "pytest_behavior.cache_redis": "pytest_behavior.cache.redis_store",
    "pytest_behavior.scoring": "pytest_behavior.verdicts.scoring",
    "pytest_behavior.results": "pytest_behavior.verdicts.results",
    "pytest_behavior.integrity": "pytest_behavior.verdicts.integrity",
    "pytest_behavior.sampling": "pytest_behavior.verdicts.sampling",
    "pytest_behavior.adaptive": "pytest_behavior.verdicts.adaptive",
    "pytest_behavior.compare": "pytest_behavior.verdicts.compare",
    "pytest_behavior.baseline": "pytest_behavior.verdicts.baseline",
    "pytest_behavior.sequential": "pytest_behavior.stats.sequential",
    "pytest_behavior.clustered": "pytest_behavior.stats.clustered",
    "pytest_behavior.report_markdown": "pytest_behavior.report.markdown",
    "pytest_behavior.charts": "pytest_behavior.report.charts",
    "pytest_behavior.history": "pytest_behavior.report.history",
    "pytest_behavior.trend_chart": "pytest_behavior.report.trend",
    "pytest_behavior.pr_comment": "pytest_behavior.report.pr_comment",
    "pytest_behavior.report_html": "pytest_behavior.report.html.page",
    "pytest_behavior.report_html_assets": "pytest_behavior.report.html.assets",
    "pytest_behavior.report_html_cases": "pytest_behavior.report.html.cases",
    "pytest_behavior.report_html_comparisons": "pytest_behavior.report.html.comparisons",
    "pytest_behavior.report_html_details": "pytest_behavior.report.html.details",
    "pytest_behavior.report_html_measures": "pytest_behavior.report.html.measures",
    "pytest_behavior.collect": "pytest_behavior.session.collect",
    "pytest_behavior.run": "pytest_behavior.session.run",
    "pytest_behavior.finish": "pytest_behavior.session.finish",
    "pytest_behavior.xdist_hooks": "pytest_behavior.session.xdist_hooks",
    "pytest_behavior.signals": "pytest_behavior.session.signals",
    "pytest_behavior.preflight": "pytest_behavior.session.preflight",
    "pytest_behavior.notices": "pytest_behavior.session.notices",
    "pytest_behavior.partition": "pytest_behavior.shards.partition",
    "pytest_behavior.sharding": "pytest_behavior.shards.sharding",
    "pytest_behavior.shard_file": "pytest_behavior.shards.file",
    "pytest_behavior.shard_merge": "pytest_behavior.shards.merge",
    "pytest_behavior.commands.cache_command": "pytest_behavior.commands.cache",
    "pytest_behavior.commands.comment_command": "pytest_behavior.commands.comment",
    "pytest_behavior.commands.compare_command": "pytest_behavior.commands.compare",
    "pytest_behavior.commands.generate_command": "pytest_behavior.commands.generate",
    "pytest_behavior.commands.history_command": "pytest_behavior.commands.history",
    "pytest_behavior.commands.merge_command": "pytest_behavior.commands.merge",
    "pytest_behavior.commands.report_command": "pytest_behavior.commands.report",
}

# The old modules that are packages now -> the modules their names went to.
SPLIT: dict[str, tuple[str, ...]] = {
    "pytest_behavior.cache": (
        "pytest_behavior.cache.keys",
        "pytest_behavior.cache.disk",
        "pytest_behavior.cache.writer",
        "pytest_behavior.cache.reading",
    ),
    "pytest_behavior.report": ("pytest_behavior.report.document",),
    "pytest_behavior.spec": ("pytest_behavior.spec.loading",),
    "pytest_behavior.stats": ("pytest_behavior.stats.intervals",),
}


# Old ``python -m`` paths that were a shortcut for a command -> that command.
COMMANDS: dict[str, str] = {"pytest_behavior.pr_comment": "comment"}

_RUN_COMMAND = """\
import sys
from pytest_behavior.commands import main
raise SystemExit(main([{command!r}, *sys.argv[1:]]))
"""


def new_name(old: str) -> str | None:
    """The new path of a module imported by its old one; None when it did not move."""
    if old in MOVED:
        return MOVED[old]
    package, _, rest = old.rpartition(".")
    while package:
        if package in MOVED:
            return f"{MOVED[package]}.{rest}"
        package, _, tail = package.rpartition(".")
        rest = f"{tail}.{rest}"
    return None


def _warn(old: str, new: str, stacklevel: int = 3) -> None:
    warnings.warn(
        f"{old} moved to {new}; import it from there (the old path goes away in the next release)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def old_attribute(package: str, name: str) -> object:
    """``pytest_behavior.<package>.<name>`` as the old flat module had it, with a warning."""
    folder = Path(sys.modules[package].__file__ or "").parent
    if name.startswith("__") or (folder / f"{name}.py").exists() or (folder / name).is_dir():
        # Dunders and the package's own submodules are for the import system to find.
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    for module_name in SPLIT[package]:
        module = importlib.import_module(module_name)
        if name in vars(module):
            _warn(f"{package}.{name}", f"{module_name}.{name}", stacklevel=4)
            value = vars(module)[name]
            # Warned once: ``from package import name`` looks the name up twice.
            setattr(sys.modules[package], name, value)
            return value
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as its new module: the same module object under both names."""

    def __init__(self) -> None:
        # Old name -> the new module's own spec, while the import system loads the old name.
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        # First on sys.meta_path, so asked about every import of the session: others at once.
        if not fullname.startswith("pytest_behavior."):
            return None
        new = new_name(fullname)
        if new is None:
            return None
        spec = importlib.util.find_spec(new)
        if spec is None:
            return None
        # The old name is a package when the new one is (families -> spec/families/).
        moved = importlib.machinery.ModuleSpec(
            fullname,
            self,
            origin=spec.origin,  # python -m puts it in sys.argv[0]
            is_package=spec.submodule_search_locations is not None,
        )
        moved.loader_state = new
        return moved

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = str(spec.loader_state)
        _warn(spec.name, new)
        module = importlib.import_module(new)
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the old name's spec on the module; it keeps its own
        # (the module was run once already, under its new name).
        moved = module.__spec__
        if moved is not None and moved.name in self._specs:
            module.__spec__ = self._specs.pop(moved.name)

    def get_code(self, fullname: str) -> CodeType | None:
        """``python -m`` with an old path (runpy asks for the code, not the module)."""
        if fullname in COMMANDS:
            _warn(f"python -m {fullname}", f"python -m pytest_behavior {COMMANDS[fullname]}")
            return compile(_RUN_COMMAND.format(command=COMMANDS[fullname]), fullname, "exec")
        new = new_name(fullname)
        spec = importlib.util.find_spec(new) if new is not None else None
        if new is None or spec is None or not isinstance(spec.loader, importlib.abc.InspectLoader):
            return None
        _warn(fullname, new)
        return spec.loader.get_code(new)


def install() -> None:
    """Put the finder first, before the path finder would load a file twice under two names."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModules())

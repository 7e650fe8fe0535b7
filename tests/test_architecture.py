"""The package's import graph: data flows one way, so no module imports itself back.

Every import counts, at module level and inside functions (a lazy import defers a
cost; it does not remove the dependency), except those under ``if TYPE_CHECKING:``,
which never run. A cycle is a strongly connected component of the graph of modules
within pytest_behavior.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "pytest_behavior"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, leaving out ``if TYPE_CHECKING:`` bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                yield from imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from imports(node)


def imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, path) for name, path in MODULES.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_the_graph_sees_lazy_imports_and_leaves_out_type_checking() -> None:
    graph = import_graph()
    # plugin.py imports the run inside its hooks (pytest + stdlib only at module level).
    assert "pytest_behavior.session.run" in graph["pytest_behavior.plugin"]
    # cache/writer.py names AnswerCache for the type checker only.
    assert "pytest_behavior.cache.backend" not in graph["pytest_behavior.cache.writer"]


def test_no_import_cycle() -> None:
    """None at all: the last one (local/echo and local/continuations taking the client-error
    type and the top-logprobs cap from local/server) went when both moved to wire.py."""
    cycles = import_cycles(import_graph())
    assert cycles == [], "\n".join(" <-> ".join(cycle) for cycle in cycles)


def test_the_wire_protocol_is_shared_and_imports_nothing_of_the_package() -> None:
    """Both servers speak OpenAI's protocol through one module, which stays standard library
    only (the optional local server and the testing package both import it)."""
    graph = import_graph()
    assert graph["pytest_behavior.wire"] == set()
    assert "pytest_behavior.wire" in graph["pytest_behavior.local.server"]
    assert "pytest_behavior.wire" in graph["pytest_behavior.testing.protocol"]
    tree = ast.parse((PACKAGE / "wire.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in imports(tree)
        for alias in (node.names if isinstance(node, ast.Import) else [])
    } | {
        node.module.split(".")[0]
        for node in imports(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]

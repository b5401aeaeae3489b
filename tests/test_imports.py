"""The package's modules import one another without cycles (module-level imports)."""

from __future__ import annotations

import ast

from conftest import REPO

SRC = REPO / "src"


def _module(path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, modules: set[str]) -> set[str]:
    """The neurofusion modules a file imports at module level (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in SRC.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert "neurofusion.training.registry" in graph
    assert "neurofusion.training.deep" not in graph["neurofusion.training.registry"]

"""The package's shape: imports only go down (no cycle, lazy imports counted), no private name
crosses a module, and every exported name exists."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vkit"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imports(name: str, path: Path, is_package: bool, modules: dict) -> tuple[set[str], list[str]]:
    """Modules ``name`` imports (anywhere: lazy and TYPE_CHECKING imports count), and private names."""
    edges: set[str] = set()
    private: list[str] = []
    imported: set[str] = set()  # local names bound to something from another vkit module

    def add(target: str) -> None:
        parts = target.split(".")
        for k in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
            candidate = ".".join(parts[:k])
            if candidate in modules and candidate != name and not name.startswith(candidate + "."):
                edges.add(candidate)

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("vkit."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([node.module] if node.module else []))
            if base != "vkit" and not base.startswith("vkit."):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
                imported.add(alias.asname or alias.name)
                if alias.name.startswith("_") and not alias.name.endswith("_"):
                    private.append(f"{path.name}:{node.lineno} from {base} import {alias.name}")
    for node in ast.walk(ast.parse(path.read_text())):  # SileroModel._load is the same coupling
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                and node.attr.startswith("_") and not node.attr.endswith("_")):
            private.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    return edges, private


def test_no_import_cycle_and_no_private_name_across_modules() -> None:
    modules = _modules()
    graph, private = {}, []
    for name, (path, is_package) in modules.items():
        graph[name], found = _imports(name, path, is_package, modules)
        private += found
    assert private == []
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["vkit", "vkit.sources", "vkit.filters", "vkit.sinks", "vkit.realtime",
                                     "vkit.recording", "vkit.stage", "vkit.graph", "vkit.plan", "vkit.units",
                                     "vkit.session", "vkit.runtime", "vkit.scale"])
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} declares no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []

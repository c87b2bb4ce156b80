"""No import cycles anywhere in Ember: every module's imports, at module level and inside functions,
point one way.

The graph has one node per module of frontend/, compiler/, codegen/ and runtime/ (a package is its
`__init__`); `import a.b` is an edge to `a.b`, and `from pkg import name` an edge to `pkg.name` when
that is a module, else to `pkg` (which is how a module comes to depend on its own package).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

nx = pytest.importorskip(
    "networkx", reason="networkx (in the test extra: pip install '.[test]') is not installed"
)

REPO = Path(__file__).resolve().parent.parent
PACKAGE_OF_FOLDER = {
    "frontend": "ember", "compiler": "ember.compiler", "codegen": "ember.codegen", "runtime": "ember.runtime"
}  # fmt: skip


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four folders."""
    modules = {}
    for folder, package in PACKAGE_OF_FOLDER.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name of what `node` imports from (relative imports resolved against `module`)."""
    if not node.level:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _nearest_module(name: str, modules: dict) -> str | None:
    """`name` if it is one of ours, else its longest prefix that is (None outside Ember)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in modules:
            return prefix
    return None


def import_graph() -> nx.DiGraph:
    modules = module_files()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [_nearest_module(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, is_package, node)
                names = [f"{source}.{alias.name}" for alias in node.names]
                targets = [name if name in modules else _nearest_module(source, modules) for name in names]
            else:
                continue
            graph.add_edges_from((module, target) for target in targets if target is not None)
    return graph


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert graph.has_edge("ember.module.module", "ember.module.fused_step")  # module level, relative
    assert graph.has_edge("ember.module.module", "ember.optimizer")  # `from .. import optimizer as opt`
    assert graph.has_edge("ember.module.fused_step", "ember.ndarray")  # `from ..ndarray import NDArray`
    assert graph.has_edge("ember.ndarray.ndarray", "ember.runtime.cuda_driver")  # inside a function
    assert graph.has_edge("ember.compiler.lowering.lower", "ember.compiler.names")  # `from ..names import`


def test_there_is_no_import_cycle():
    cycles = sorted(" -> ".join([*cycle, cycle[0]]) for cycle in nx.simple_cycles(import_graph()))
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)

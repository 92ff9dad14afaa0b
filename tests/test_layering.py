"""The package's layers (docs/DESIGN.md, "Layers"): who may import whom.

Every module under ``asr/`` is parsed with ``ast``; every import counts,
at any depth (inside functions and ``if TYPE_CHECKING:`` blocks too), since a
lazy import is still a dependency, and so does an import through a third
module (``a`` imports ``b`` which imports ``c``: ``a`` depends on ``c``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx  # a dependency of torch
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asr"

#: (importing package, packages it must not import): the layers depend downward only.
FORBIDDEN = [
    ("asr.decoding", ("asr.training",)),
    ("asr.lang", ("asr.scoring", "asr.training", "asr.decoding")),
    ("asr.features", ("asr.lang", "asr.training", "asr.decoding")),
]


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (``__init__`` names its package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """``(dotted name, line)`` of everything the module imports, at any depth.

    ``from a.b import c`` gives ``a.b.c`` (a submodule, or a name the caller
    resolves to ``a.b``); relative imports are made absolute.
    """
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([node.module] if node.module else []))
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return out


def import_graph(modules: dict[str, Path]) -> nx.DiGraph:
    """Edges ``a -> b`` (attribute ``line``: where ``a`` imports ``b``) between modules of the package."""
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for name, line in imported_names(module, path):
            while name and name not in modules:  # a name inside a module -> the module
                name = name.rpartition(".")[0]
            if name and name != module:
                graph.add_edge(module, name, line=line)
    return graph


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    modules = module_files()
    assert {"asr.cli", "asr.decoding.decoder", "asr.training.run"} <= set(modules), f"no asr package at {PACKAGE}"
    return import_graph(modules)


@pytest.mark.parametrize("importer,forbidden", FORBIDDEN)
def test_layers_import_downward_only(graph, importer, forbidden):
    """Not even through a third module: each import chain from the layer to a forbidden one is reported."""
    wrong = []
    for module in (m for m in graph if in_package(m, importer)):
        for reached in nx.descendants(graph, module):
            if any(in_package(reached, f) for f in forbidden):
                chain = nx.shortest_path(graph, module, reached)
                wrong.append(" -> ".join(f"{a} (line {graph.edges[a, b]['line']})" for a, b in zip(chain, chain[1:]))
                             + f" -> {reached}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    detail = [
        f"{' <-> '.join(c)}: " + ", ".join(f"{a} -> {b} (line {d['line']})"
                                         for a, b, d in graph.subgraph(c).edges(data=True))
        for c in cycles
    ]
    assert not cycles, "\n".join(detail)


def test_the_checker_sees_lazy_relative_and_from_imports(tmp_path):
    """The graph builder itself: a function-level import, a relative one and ``from pkg import module``."""
    pkg = tmp_path / "asr"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from asr.sub.b import g\n    return g\n")
    (pkg / "sub" / "b.py").write_text("from .a import f\nimport asr.top\n")
    (pkg / "top.py").write_text("from asr.sub import a\n")
    g = import_graph(module_files(pkg))
    assert set(g.edges) == {
        ("asr.sub", "asr.sub.b"), ("asr.sub.a", "asr.sub.b"), ("asr.sub.b", "asr.sub.a"),
        ("asr.sub.b", "asr.top"), ("asr.top", "asr.sub.a"),
    }
    assert g.edges["asr.sub.a", "asr.sub.b"]["line"] == 2
    assert sorted(max(nx.strongly_connected_components(g), key=len)) == ["asr.sub.a", "asr.sub.b", "asr.top"]

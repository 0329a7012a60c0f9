"""The shape of src/matsense: no import cycles between its modules (asserted), and the longest
function and largest module (informational: ``pytest -s tests/test_structure.py`` prints them).

Imports are read with ``ast``, not by importing. An import at a module's top level is an edge
of the import graph; ``from pkg import name`` is an import of the submodule ``pkg.name`` when
there is one, else of ``pkg``. Imports inside functions run later, on first call, and cannot
deadlock an import: they are listed (with -s) but not asserted.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "matsense"
#: Written by a program (operators/kernels/_gen_tiles.py): left out of the size report.
GENERATED = {
    "matsense.operators.kernels._numba_tiles",
    "matsense.operators.kernels._numba_tiles_mapped",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node, module: str, is_package: bool, known) -> list[str]:
    """The matsense modules an import statement imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = _absolute(module, is_package, node)
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    whole = [base] if len(subs) < len(node.names) and base in known else []
    return subs + whole


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(top-level imports, imports inside functions): module -> modules it imports."""
    known = _modules()
    top: dict[str, set[str]] = {m: set() for m in known}
    deferred: dict[str, set[str]] = {m: set() for m in known}
    for module, (path, is_package) in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges = top if id(node) in top_level else deferred
                edges[module].update(
                    t for t in _targets(node, module, is_package, known) if t != module
                )
    return top, deferred


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_from_package_import_submodule_is_an_import_of_the_submodule():
    top, _ = import_graph()
    assert "matsense.backend" in top["matsense._validate"]  # from . import backend
    assert "matsense" not in top["matsense._validate"]
    assert "matsense.operators" in top["matsense.problems"]  # from .operators import Dense...


def test_no_import_cycles():
    top, deferred = import_graph()
    mutual = sorted(
        (a, b)
        for a in deferred
        for b in deferred[a] | top[a]
        if a < b and a in deferred[b] | top[b]
    )
    print(f"\nimports inside functions that go both ways (not asserted): {len(mutual)}")
    for a, b in mutual:
        print(f"  {a} <-> {b}")
    assert cycles(top) == []


def _function_lengths() -> list[tuple[int, str]]:
    """(lines, "module.function (line N)") of every function outside generated code."""
    found = []
    for module, (path, _) in _modules().items():
        if module in GENERATED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                found.append((length, f"{module}.{node.name} (line {node.lineno})"))
    return sorted(found)


def test_report_sizes():
    """Informational: the longest function and the largest module, generated code left out
    (target: 60 and 500 lines)."""
    functions = _function_lengths()
    sizes = sorted(
        (len(path.read_text(encoding="utf-8").splitlines()), module)
        for module, (path, _) in _modules().items()
        if module not in GENERATED
    )
    lines, where = functions[-1]
    print(f"\nlongest function: {where}, {lines} lines")
    print(f"functions over 60 lines: {sum(n > 60 for n, _ in functions)} of {len(functions)}")
    print(f"largest module: {sizes[-1][1]}, {sizes[-1][0]} lines")
    print(f"modules over 500 lines: {sum(n > 500 for n, _ in sizes)} of {len(sizes)}")
    assert lines > 0 and sizes[-1][0] > 0

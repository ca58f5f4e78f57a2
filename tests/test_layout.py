"""The shape of the package: imports flow one way (no module imports one that imports it back) and every
module stays small enough to read in one sitting."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import cpvt_lab

PACKAGE = Path(cpvt_lab.__file__).parent
MAX_MODULE_LINES = 250


def module_name(path: Path) -> str:
    parts = ("cpvt_lab",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at module level or inside functions (relative imports
    resolved; ``from package import name`` counts the submodule when ``name`` is one)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
                elif target in modules:
                    found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a list of modules (first repeated at the end), or [] when there is none
    (the standard library's graphlib finds it). A package's ``__init__`` importing its own submodules is how
    packages re-export, not a circle."""
    edges = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as circle:
        return list(reversed(circle.args[1]))  # graphlib lists it against the direction of the imports
    return []


def test_the_cycle_finder_sees_a_circle_and_a_clean_graph():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) == []  # a package re-exporting its submodule


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 50 and graph["cpvt_lab.run"]  # the graph was read
    assert find_cycle(graph) == []


def test_no_module_is_over_250_lines():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}

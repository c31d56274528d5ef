"""The package's shape: no import loops between the modules of ``w2s``, and no module over 450 lines.

The import graph is read from the source (``ast``), not from a running interpreter. An edge is an
import of another ``w2s`` module, relative or absolute, anywhere in a module: at module level, in a
class body and inside functions too, since a lazy import in a function is still a loop between the
two modules (the one this test was written against was such a lazy import). Imports under
``if TYPE_CHECKING:`` never run and are left out. Importing ``pkg.mod`` is an edge to ``pkg.mod``
alone: the parent package's ``__init__`` that Python also runs is not an edge, so a package that
re-exports its submodules is not a loop. Registries that import their built-ins by a module-name
string (:class:`w2s.registry.Registry`) add no edge either: that import runs at the first lookup,
after both modules finished loading.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "workflow" / "w2s"
MAX_LINES = 450


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``: dotted name (a package by its own name) -> file."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST):
    """Every import statement under ``node`` except those under ``if TYPE_CHECKING:``."""
    children = node.orelse if isinstance(node, ast.If) and _is_type_checking(node.test) else ast.iter_child_nodes(node)
    for child in children:
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        else:
            yield from _import_nodes(child)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        submodules = {f"{target}.{alias.name}" for alias in node.names} & set(modules)
        found.update(submodules if submodules or not node.module else {target})
    return {module for module in found if module in modules and module != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_package_has_no_import_loops():
    graph = import_graph(PACKAGE_ROOT)
    assert "w2s.labeled" in graph and "w2s.tasks" in graph["w2s.suite.loader"]
    assert find_cycles(graph) == []


def test_labeled_texts_sit_below_tasks_and_suite():
    graph = import_graph(PACKAGE_ROOT)
    assert graph["w2s.labeled"] == set()
    for module in ("w2s.tasks", "w2s.suite.base", "w2s.suite.loader", "w2s.data", "w2s.difficulty"):
        assert "w2s.labeled" in graph[module], module
    assert not any(module.startswith("w2s.suite") for module in graph["w2s.tasks"])


def test_no_module_is_over_the_line_limit():
    lengths = {name: len(path.read_text().splitlines()) for name, path in module_names(PACKAGE_ROOT).items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_checker_finds_a_loop_through_a_relative_import(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import A\n",
            "a.py": "from .sub.b import B\nA = 1\n",
            "sub/__init__.py": "",
            "sub/b.py": "from __future__ import annotations\ntry:\n    from ..a import A\nexcept ImportError:\n    pass\n",
            "c.py": "def late():\n    from .d import D\n",  # inside a function: an edge too
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\nelse:\n    import pkg.e\n",
            "e.py": "import pkg.d\nfrom . import a, sub\n",
        },
    )
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.a"},
        "pkg.c": {"pkg.d"},
        "pkg.d": {"pkg.e"},
        "pkg.e": {"pkg.d", "pkg.a", "pkg.sub"},
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b"], ["pkg.d", "pkg.e"]]
    graph["pkg.sub.b"], graph["pkg.e"] = set(), {"pkg.a"}
    assert find_cycles(graph) == []

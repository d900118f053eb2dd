"""The layout's rules, read from the source alone (no module under test is imported): no module in engine/ or ui/
over 400 lines, no import cycle among engine/ modules, engine/ never imports streamlit, ui/ or pages/, and pages/
holds only the pages dashboard.py's navigation lists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package`` (``pkg/__init__.py`` is ``pkg``)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import the module runs: at the top, in functions and
    classes, in try/if blocks, but not under ``if TYPE_CHECKING:`` (never executed)."""
    found: list[tuple[str, list[str], int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            found.append((base, [alias.name for alias in node.names], node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


ENGINE = _modules("engine")
TREES = {name: ast.parse(path.read_text(), filename=str(path)) for name, path in ENGINE.items()}


def _engine_edges(module: str) -> dict[str, int]:
    """The engine modules ``module`` imports, each with the first line importing it. ``from pkg import name`` goes to
    ``pkg.name`` where that is a module, else to ``pkg`` (whose ``__init__`` must provide the name)."""
    edges: dict[str, int] = {}
    is_package = ENGINE[module].name == "__init__.py"
    for target, names, line in _imports(TREES[module], module, is_package):
        if target != "engine" and not target.startswith("engine."):
            continue
        hits = [f"{target}.{name}" for name in names if f"{target}.{name}" in ENGINE]
        if len(hits) < len(names) or not names:
            hits.append(target)
        for hit in hits:
            if hit in ENGINE and hit != module:
                edges.setdefault(hit, line)
    return edges


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for component in components:
        members, start = set(component), min(component)
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats: that closes a cycle
            nxt = min(n for n in graph[path[-1]] if n in members)
            if nxt in seen:
                cycles.append([*path[path.index(nxt) :], nxt])
                break
            path.append(nxt)
            seen.add(nxt)
    return cycles


def test_no_module_in_engine_or_ui_is_over_400_lines():
    long = {
        f"{path.relative_to(ROOT)} ({n} lines)"
        for package in ("engine", "ui")
        for path in _modules(package).values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines (a module that long is usually two ideas: split it by idea): {long}"


def test_engine_modules_import_no_cycle():
    graph = {module: _engine_edges(module) for module in ENGINE}
    assert graph["engine.charts.layers"].keys() >= {"engine.charts.theme", "engine.charts.layer_tables"}
    cycles = _cycles(graph)
    described = [
        " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(c, c[1:], strict=False)) + f" -> {c[-1]}"
        for c in cycles
    ]
    assert not cycles, "import cycles among engine/ modules:\n" + "\n".join(described)


def test_the_cycle_finder_names_a_cycle_and_ignores_a_chain():
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) == []
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c", "a"]]


def test_function_level_and_relative_imports_are_edges():
    tree = ast.parse(
        "def f():\n    from .theme import rgba\n    import engine.result\n"
        "if TYPE_CHECKING:\n    from engine.store import RunStore\n"
    )
    found = [target for target, _, _ in _imports(tree, "engine.charts.batch", is_package=False)]
    assert found == ["engine.charts.theme", "engine.result"]


@pytest.mark.parametrize("forbidden", ["streamlit", "ui", "pages"])
def test_engine_never_imports_the_ui(forbidden):
    offenders = [
        f"{ENGINE[module].relative_to(ROOT)}:{line} imports {target}"
        for module, tree in TREES.items()
        for target, _, line in _imports(tree, module, ENGINE[module].name == "__init__.py")
        if target == forbidden or target.startswith(forbidden + ".")
    ]
    assert not offenders, offenders


def _navigation_pages() -> set[str]:
    """The scripts dashboard.py hands to ``st.Page``."""
    tree = ast.parse((ROOT / "dashboard.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "Page"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def test_pages_holds_only_the_pages_of_the_navigation():
    listed = _navigation_pages()
    assert "pages/profile.py" in listed
    present = {str(path.relative_to(ROOT)) for path in (ROOT / "pages").iterdir() if path.name != "__pycache__"}
    assert present == listed, (
        f"in pages/ but not a page of dashboard.py's navigation (shared UI lives in ui/): "
        f"{sorted(present - listed)}; in the navigation but missing: {sorted(listed - present)}"
    )


def test_the_profile_page_never_shadows_the_standard_librarys_profile_module():
    """With pages/ first on sys.path (a page run on its own), ``import cProfile`` (torch._dynamo does it) must load
    the standard library's ``profile``, not pages/profile.py."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'pages'); "
        "import ui, cProfile, profile; print(profile.__file__); assert hasattr(profile, 'Profile')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pages" not in done.stdout and done.stdout.strip().endswith("profile.py")

"""The house's plan, checked: no import circle, pytest only in the plugin, short modules.

Static where it can be (``ast``), so a check reports every offender at once.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_promptgate"
ROOT = PACKAGE.parent
LINE_LIMIT = 600
REASON_MARKER = "lines because"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = package_modules()


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports anywhere in its body (top level, functions,
    ``TYPE_CHECKING`` blocks): ``from pkg import mod`` counts ``pkg.mod`` when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            # The deepest package module the name reaches (``a.b.func`` -> ``a.b``).
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    known = set(MODULES)
    graph = {}
    for name, path in MODULES.items():
        edges = imported_modules(path, known) - {name}
        # A package's __init__ is imported on the way to any of its modules: that edge is
        # Python's, not a design decision, so only explicit imports count.
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                colour[node] = BLACK
                continue
            nxt = pending.pop()
            if colour.get(nxt, BLACK) == GREY:
                return path[path.index(nxt) :] + [nxt]
            if colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_scan_sees_function_level_and_from_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from pytest_promptgate import model\n"
        "def f():\n    from pytest_promptgate.report.json_report import read_report\n"
    )
    known = {"pytest_promptgate", "pytest_promptgate.model", "pytest_promptgate.report.json_report"}
    assert imported_modules(source, known) == {
        "pytest_promptgate",
        "pytest_promptgate.model",
        "pytest_promptgate.report.json_report",
    }


def test_no_import_cycle_among_the_package_modules() -> None:
    graph = import_graph()
    graph = {
        # ``from pytest_promptgate import x`` names the package; importing a package's own
        # __init__ from one of its modules is not a circle of ours.
        name: {dep for dep in deps if not name.startswith(dep + ".")}
        for name, deps in graph.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_plugin_is_the_only_package_that_imports_pytest() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name == "pytest_promptgate.plugin" or name.startswith("pytest_promptgate.plugin."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(
                a.name.split(".")[0] in ("pytest", "_pytest") for a in node.names
            ):
                offenders.append(f"{name}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "pytest",
                "_pytest",
            ):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_every_module_outside_the_plugin_imports_without_pytest() -> None:
    engine = sorted(
        name
        for name in MODULES
        if not (name == "pytest_promptgate.plugin" or name.startswith("pytest_promptgate.plugin."))
        and not name.endswith("__main__")
    )
    script = textwrap.dedent(
        """
        import importlib, sys, traceback

        class NoPytest:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest"):
                    raise ImportError(f"{name} is blocked: engine modules must not import pytest")
                return None

        sys.meta_path.insert(0, NoPytest())
        failed = []
        for name in sys.argv[1:]:
            try:
                importlib.import_module(name)
            except Exception:
                failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *engine],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(engine) > 20  # the scan really covered the package


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_long_module_says_why_at_its_top(name: str) -> None:
    path = MODULES[name]
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= LINE_LIMIT:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first_paragraph = docstring.split("\n\n")[0]
    assert f"Over {LINE_LIMIT} {REASON_MARKER}" in first_paragraph.replace("\n", " "), (
        f"{path.relative_to(ROOT)} has {lines} lines: split it by subject, or start its docstring "
        f"with a paragraph saying 'Over {LINE_LIMIT} lines because ...'"
    )

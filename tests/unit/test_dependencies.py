"""Imports point one way: the packages of ``app`` form no cycle, and no domain imports the event side.

A package here is ``app.<name>`` (``app.core``, ``app.db``, ``app.events``, …, or a top-level module such as
``app.main``), except that each domain (``app.domain.orders``, …) is one on its own. Every import counts, also those
inside functions and under ``TYPE_CHECKING``: a lazy import is a dependency all the same.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import app

APP_ROOT = Path(app.__file__).parent
#: What a permission name looks like (``orders:manage``); ``app/core/permissions.py`` is the one place to write one.
_PERMISSION = re.compile(r"[a-z_]+:[a-z_]+")


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3] if len(parts) >= 3 and parts[1] == "domain" else parts[:2])


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("app.")}


def _package_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in APP_ROOT.rglob("*.py"):
        module = _module_name(path)
        for imported in _imports(path):
            if _package(imported) != _package(module):
                graph[_package(module)][_package(imported)].add(module)
    return graph


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = _package_graph()

    cycles = sorted(
        f"{a} -> {b} ({', '.join(sorted(graph[a][b]))}) -> {a} ({', '.join(sorted(graph[b][a]))})"
        for a in graph
        for b in graph[a]
        if a in graph.get(b, {}) and a < b
    )

    assert cycles == []


def test_no_domain_imports_the_event_side() -> None:
    graph = _package_graph()

    offenders = sorted(
        module
        for package, imported in graph.items()
        if package.startswith("app.domain.")
        for module in imported.get("app.events", ())
    )

    assert offenders == []


def test_permissions_are_named_once() -> None:
    literals = sorted(
        str(path.relative_to(APP_ROOT))
        for path in APP_ROOT.rglob("*.py")
        if path.name != "permissions.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _PERMISSION.fullmatch(node.value)
    )

    assert literals == []

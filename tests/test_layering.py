"""The layers import downward only, and no module of the project is part of an import cycle.

Layers, top to bottom (docs/CONTRACTS.md "Layers"): ``scaleplan`` (CLI, demo) -> ``app``
(dashboard) -> ``proxy_train`` (torch, mup, optuna) -> ``planner`` (numpy/scipy/pandas/yaml).
Every import counts: module level, inside functions, and ``importlib.import_module("...")`` with a
literal name. A module's imports are read from its source with :mod:`ast`, nothing is executed.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planner", "proxy_train", "app", "scaleplan")
RANK = {"planner": 0, "proxy_train": 1, "app": 2, "scaleplan": 3}
PLANNER_FORBIDDEN = ("torch", "mup", "optuna", "streamlit", "tokenizers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imported_names(path: Path, module: str) -> set[str]:
    """Dotted names this file imports (relative imports resolved; import_module literals included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return names


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (``from pkg import name`` counts as pkg.name when that
    is a module, else as pkg)."""
    src = _sources()
    graph = {}
    for mod, path in src.items():
        deps = {n for n in _imported_names(path, mod) if n in src}
        graph[mod] = {d for d in deps if d != mod}
    return graph


def _package(mod: str) -> str:
    return mod.split(".")[0]


def test_planner_never_imports_torch_or_the_proxy_stack():
    offenders = []
    for mod, path in _sources().items():
        if _package(mod) != "planner":
            continue
        bad = sorted(n for n in _imported_names(path, mod) if n.split(".")[0] in PLANNER_FORBIDDEN)
        if bad:
            offenders.append(f"{mod}: {', '.join(bad)}")
    assert not offenders, "planner/ must stay pure math:\n" + "\n".join(offenders)


def test_layers_import_downward_only():
    src = _sources()
    offenders = []
    for mod, path in src.items():
        for name in _imported_names(path, mod):
            top = name.split(".")[0]
            if top in RANK and RANK[top] > RANK[_package(mod)]:
                offenders.append(f"{mod} imports {name}")
    assert not offenders, "an upward import (layers: planner < proxy_train < app < scaleplan):\n" + "\n".join(offenders)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (each is at least one cycle)."""
    reach = {m: _reachable(graph, m) for m in graph}
    groups = {tuple(sorted(m2 for m2 in reach[m] if m in reach[m2])) for m in graph if m in reach[m]}
    return sorted(list(g) for g in groups)


def test_no_import_cycles():
    cycles = import_cycles(_graph())
    assert not cycles, "modules that import each other (directly or through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_checks_catch_what_they_claim(tmp_path):
    """The reader sees function-level imports, relative imports and import_module literals."""
    f = tmp_path / "mod.py"
    f.write_text("import importlib\n"
                 "def f():\n    import torch\n    from . import sibling\n"
                 "    return importlib.import_module('scaleplan.cli')\n")
    names = _imported_names(f, "planner.pkg.mod")
    assert {"torch", "planner.pkg.sibling", "scaleplan.cli"} <= names
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []

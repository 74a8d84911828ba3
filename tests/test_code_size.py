"""Code a reader can take in at once: no function over 80 lines, no module over 450 lines.

Counted over planner/, proxy_train/, scaleplan/ (docs/CONTRACTS.md "Layers"); a function's length is
from its ``def`` line (decorators excluded) to its last line, docstring included.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planner", "proxy_train", "scaleplan")
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 450


def _files():
    return [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.name}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > limit]


def test_no_function_over_80_lines():
    found = [f for p in _files() for f in long_functions(p)]
    assert not found, "split these into named steps:\n" + "\n".join(found)


def test_no_module_over_450_lines():
    found = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _files()
             if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not found, "split these by concept:\n" + "\n".join(found)


def test_the_counter_counts(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def short():\n    return 1\n\n\ndef long():\n" + "    x = 1\n" * 80 + "    return x\n")
    assert [s.split()[1] for s in long_functions(f)] == ["long"]

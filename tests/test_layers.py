"""The two layers: the core library readers import, and the book's drivers beside it.

``import pncutils`` loads the core only (no pyplot, no ``pncutils.book``), and no core module
imports the book layer, at the top or inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pncutils"
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name != "reproduce.py")  # the CLI alias


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_import_pncutils_loads_neither_pyplot_nor_the_book_layer():
    code = ("import sys, pncutils\n"
            "print('matplotlib.pyplot' in sys.modules, "
            "any(m.startswith('pncutils.book') for m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert res.stdout.split() == ["False", "False"]


def test_the_book_layer_is_reachable_on_first_access():
    code = ("import sys, pncutils as pnc\n"
            "assert 'fig4' in pnc.book.reproduce.EXPERIMENTS\n"
            "print(sorted(m for m in sys.modules if m.startswith('pncutils.book.')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "pncutils.book.experiments" in res.stdout


def test_no_core_module_imports_the_book_layer():
    assert {p.name for p in CORE} >= {"metrics.py", "theory.py", "data.py", "models.py",
                                      "training.py", "analysis.py", "plotting.py"}
    for path in CORE:
        bad = sorted(m for m in _imported_modules(path) if m.startswith("pncutils.book")
                     or m in {f"pncutils.{n}" for n in ("book", "reproduce")})
        assert not bad, f"{path.name} imports the book layer: {bad}"


def test_the_cli_alias_still_runs():
    res = subprocess.run([sys.executable, "-m", "pncutils.reproduce", "--list"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "fig4" in res.stdout and "hybrid" in res.stdout
    assert "RuntimeWarning" not in res.stderr

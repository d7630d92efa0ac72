"""The tree is the map: the import contracts in pyproject.toml hold (layers one way,
the emulator apart, no circle among the emulator's modules). import-linter counts
TYPE_CHECKING imports too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def _imports(root: Path) -> dict[str, set[str]]:
    """Module → the mediasync modules it imports, TYPE_CHECKING imports included."""
    import ast

    mods = {}
    for p in (root / "mediasync").rglob("*.py"):
        parts = p.relative_to(root).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph: dict[str, set[str]] = {}
    for name, p in mods.items():
        pkg = name if p.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                for a in node.names:
                    full = f"{base}.{a.name}"
                    found |= {full} if full in mods else ({base} if base in mods else set())
        graph[name] = found - {name}
    return graph


def test_no_module_imports_itself_back() -> None:
    """Zero import circles among all modules (import-linter checks the packages named
    in its contracts; this checks every module)."""
    import graphlib

    graph = _imports(ROOT)
    assert len(graph) > 100
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        raise AssertionError(f"an import circle: {' -> '.join(e.args[1])}") from None

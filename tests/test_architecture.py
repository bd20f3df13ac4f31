"""The one-way flow of DESIGN.md: a lower layer never imports a higher one.

Also checks that ``import evmeta`` stays light (no PyMC, PyTensor, ArviZ or matplotlib).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "evmeta"

# Layer of each top-level module or subpackage; equal layers may import each other.
LAYERS = {
    "errors": 0,
    "data": 0,
    "_version": 0,
    "_paths": 0,
    "sheets": 1,
    "schema": 2,
    "harmonize": 3,
    "review": 3,
    "comparisons": 4,
    "models": 5,
    "results": 6,
    "plots": 7,
    "report": 8,
    "analysis": 9,
    "cli": 10,
    "__init__": 10,
    "__main__": 10,
}


def _layer(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "evmeta"
    if len(parts) == 1:
        return LAYERS["__init__"]
    key = parts[1]
    assert key in LAYERS, f"module evmeta.{key} has no layer in tests/test_architecture.py"
    return LAYERS[key]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("evmeta")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("evmeta"):
            found.append((node.lineno, node.module))
    return found


def test_no_back_edges():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        own = _layer(module) if module != "evmeta" else LAYERS["__init__"]
        for line, imported in _imports(path):
            if _layer(imported) > own:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert not bad, "back edges:\n" + "\n".join(bad)


def test_import_evmeta_is_light():
    code = (
        "import sys, evmeta; evmeta.read_extraction; "
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib', 'nutpie') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_resolve():
    import evmeta

    for name in evmeta.__all__:
        assert getattr(evmeta, name) is not None, name

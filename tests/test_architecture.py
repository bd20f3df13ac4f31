"""The one-way flow of DESIGN.md: a lower layer never imports a higher one.

Also: the model sub-packages keep their own order (base < priors < frequentist, bayes <
bias), no import cycle exists anywhere in evmeta (imports inside functions included), and
``import evmeta`` stays light (no PyMC, PyTensor, ArviZ or matplotlib).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "evmeta"

# Layer of each top-level module or subpackage; equal layers may import each other.
LAYERS = {
    "errors": 0,
    "data": 0,
    "_version": 0,
    "_paths": 0,
    "_extras": 0,
    "_lazy": 0,
    "formatting": 0,
    "_outputs": 0,
    "sheets": 1,
    "schema": 2,
    "harmonize": 3,
    "review": 3,
    "project": 3,  # the review project's database sits beside review/; its refit is analysis/living
    "comparisons": 4,
    "models": 5,
    "results": 6,
    "run_tables": 6,  # the derived tables of a run, beside its models (results)
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


# Layer of each part of evmeta.models; frequentist and bayes never import each other.
MODEL_LAYERS = {
    "base": 0,
    "priors": 1,
    "frequentist": 2,
    "bayes": 2,
    "bias": 3,
    "dose_response": 3,
    "isolation_evidence": 4,
    "__init__": 5,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        out[".".join(relative.parts).removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every evmeta import of a file, at any depth, as (line, module); ``from pkg import mod``
    counts as an import of ``pkg.mod`` when that is a module, and relative imports resolve."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(relative.parts[:-1])
    modules = _modules()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("evmeta")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if not base.startswith("evmeta"):
                continue
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if f"{base}.{a.name}" in modules]
    return found


def _model_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["evmeta", "models"]:
        return None
    key = parts[2] if len(parts) > 2 else "__init__"
    assert key in MODEL_LAYERS, (
        f"evmeta.models.{key} has no layer in MODEL_LAYERS (tests/test_architecture.py)"
    )
    return MODEL_LAYERS[key]


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


def test_model_subpackages_flow_one_way():
    """base < priors < frequentist, bayes < bias; frequentist and bayes never import each other."""
    bad = []
    for module, path in _modules().items():
        own = _model_layer(module)
        if own is None:
            continue
        for line, imported in _imports(path):
            other = _model_layer(imported)
            if other is None:
                continue
            same_part = imported.split(".")[2:3] == module.split(".")[2:3]
            if other > own or (other == own and not same_part):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert not bad, "model back edges:\n" + "\n".join(bad)
    assert {"base", "frequentist", "bayes", "bias"} <= {p.name for p in (PACKAGE / "models").iterdir()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for _, imported in _imports(path):
            # the deepest evmeta module named (``evmeta.models.frequentist.meta.MetaResult`` -> its module)
            while imported not in modules and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported in modules and imported != module:
                targets.add(imported)
        graph[module] = targets
    return graph


def test_no_import_cycle_anywhere():
    """No cycle among evmeta modules, counting imports inside functions too."""
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_detector_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_import_evmeta_is_light():
    code = (
        "import sys, evmeta; evmeta.read_extraction; "
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib', 'nutpie', 'sqlalchemy', 'alembic') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_resolve():
    import evmeta

    for name in evmeta.__all__:
        assert getattr(evmeta, name) is not None, name


def test_model_public_names_resolve():
    import evmeta.models

    for name in evmeta.models.__all__:
        assert getattr(evmeta.models, name) is not None, name


NAMESPACES = [
    "evmeta.models",
    "evmeta.harmonize",
    "evmeta.plots",
    "evmeta.review",
    "evmeta.schema",
    "evmeta.analysis",
]


def test_the_top_level_is_curated():
    import evmeta

    assert len(evmeta.__all__) <= 30
    assert len(set(evmeta.__all__)) == len(evmeta.__all__)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_namespace_lists_names_that_resolve(namespace):
    module = importlib.import_module(namespace)
    assert module.__all__, namespace
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{namespace}.{name}"
    with pytest.raises(AttributeError, match="has no attribute"):
        module.no_such_name  # noqa: B018


def test_types_that_public_functions_return_are_exported():
    import evmeta as em

    for name in (
        "EggerResult",
        "TrimFillResult",
        "PetPeeseResult",
        "SelectionResult",
        "BiasAveragingResult",
        "MetaResult",
        "MultilevelResult",
        "BayesResult",
        "SubgroupResult",
    ):
        assert isinstance(getattr(em.models, name), type), name
    for name in ("Reconciliation", "Deduplication", "Screening", "PrismaCounts", "LookupResult"):
        assert isinstance(getattr(em.review, name), type), name
    assert isinstance(em.schema.WideImport, type)
    assert isinstance(em.harmonize.Dose, type)


def test_every_error_raised_on_purpose_lives_in_evmeta_errors():
    """No module outside evmeta/errors.py defines an exception class (they import theirs)."""
    import ast

    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception")) for b in node.bases
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not offenders, f"move these to evmeta/errors.py: {offenders}"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_no_public_function_is_shadowed_by_its_module(namespace):
    """A function named like its module (review.reconcile, plots.bias_panel) stays the function
    after the module itself has been imported."""
    module = importlib.import_module(namespace)
    for name in module.__all__:
        try:
            importlib.import_module(f"{namespace}.{name}")
        except ModuleNotFoundError:
            continue
        assert not isinstance(getattr(module, name), type(module)), f"{namespace}.{name} is a module"


def test_no_private_module_is_imported_from_another_package():
    """A module whose name starts with '_' (plots._text, plots._style, ...) is its package's
    own: other packages use the package's public names (evmeta.formatting for numbers)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own_package = (
            ".".join(relative.parts[:-1]) if path.name != "__init__.py" else ".".join(relative.parts)
        )
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                private = [i for i, part in enumerate(parts) if part.startswith("_") and i > 0]
                if not private or parts[0] != "evmeta":
                    continue
                owner = ".".join(parts[: private[0]])
                if owner != "evmeta" and not own_package.startswith(owner):
                    offenders.append(f"{relative}: imports {name}")
    assert not offenders, offenders


#: Longest function body (statements, the docstring not counted: a numpydoc docstring with
#: its parameters and references is documentation, not logic) in lines (issue 21 item 7).
MAX_BODY_LINES = 80


def _function_bodies(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                body = body[1:]
            if body:
                yield node.name, node.lineno, body[-1].end_lineno - body[0].lineno + 1


def test_no_function_body_is_over_80_lines():
    long = [
        f"evmeta/{path.relative_to(PACKAGE).as_posix()}:{line} {name} ({lines} lines)"
        for path in PACKAGE.rglob("*.py")
        for name, line, lines in _function_bodies(path)
        if lines > MAX_BODY_LINES
    ]
    assert not long, "split these functions by what they do:\n" + "\n".join(long)


def test_body_length_counts_statements_and_not_the_docstring(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        'def f():\n    """Doc\n\n    more.\n    """\n    a = 1\n    return a\n', encoding="utf-8"
    )
    assert list(_function_bodies(source)) == [("f", 1, 2)]

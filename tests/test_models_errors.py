"""Errors raised on purpose are EvmetaError subclasses; programming errors are not swallowed.

The pipeline catches only EvmetaError, so a bug in a stage surfaces as a traceback instead
of becoming a "not fitted" note.
"""

from __future__ import annotations

import ast
import builtins
import types

import pytest

import evmeta as em
from evmeta import errors
from evmeta.analysis import stages
from tests.conftest import ROOT

PACKAGE = ROOT / "evmeta"
#: Raises that are deliberately not EvmetaError: programming errors (a schema bug, a
#: broken internal invariant) or Python protocol errors, each with the reason.
ALLOWED = {
    ("schema/cells.py", "ValueError"): "parse helpers whose ValueError is caught and turned into a Problem",
    (
        "harmonize/doses.py",
        "ValueError",
    ): "number parser whose ValueError is caught and turned into a DoseError",
    ("models/__init__.py", "AttributeError"): "module __getattr__ protocol",
    ("__init__.py", "AttributeError"): "module __getattr__ protocol",
    ("_lazy.py", "AttributeError"): "module __getattr__ protocol (the lazy namespaces)",
    ("_extras.py", "KeyError"): "a module evmeta never lists as optional (a programming error)",
    ("models/base/protocol.py", "AttributeError"): "__getattr__ protocol",
    ("models/bayes/quadrature.py", "ValueError"): "internal invariant (odd number of Simpson nodes)",
    ("models/base/frequentist_protocol.py", "NotImplementedError"): "abstract method",
    ("sheets/reader.py", "RuntimeError"): "a missing declared dependency (installation problem)",
    ("schema/cells.py", "TypeError"): "schema bug",
    ("results.py", "TypeError"): "a misspelt model family (a programming error, as dataclasses.replace)",
    ("results.py", "LookupError"): "the main model read before the stage that fits it (a programming error)",
    ("run_tables.py", "LookupError"): "the analysis table read before the pipeline set it (a programming error)",
    ("schema/records.py", "PydanticCustomError"): "pydantic validator protocol (collected into Problems)",
    ("schema/extraction.py", "AttributeError"): "__getattr__ protocol",
    (
        "analysis/spec.py",
        "ValueError",
    ): "pydantic validator protocol (turned into a SpecError naming the key)",
    ("analysis/certainty_spec.py", "ValueError"): "pydantic validator protocol ([certainty], as spec.py)",
    ("analysis/spec_correlation.py", "ValueError"): "pydantic validator protocol ([comparisons], as spec.py)",
    (
        "review/lookup.py",
        "ValueError",
    ): "JSON and year parsers whose ValueError is caught and reported per study",
}


def _raised_names() -> list[tuple[str, int, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                found.append((relative, node.lineno, name))
    return found


def _evmeta_error_classes() -> set[str]:
    """Names of evmeta.errors' classes and of every class defined in evmeta that derives
    from one of them (found in the source, transitively)."""
    ours = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    defined = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                defined.append((node.name, bases))
    grown = True
    while grown:
        grown = False
        for name, bases in defined:
            if name not in ours and bases & ours:
                ours.add(name)
                grown = True
    return ours


def test_every_error_raised_on_purpose_is_an_evmeta_error():
    ours = _evmeta_error_classes()
    builtin = set(dir(builtins))
    bad = []
    for relative, line, name in _raised_names():
        if name in ours:
            continue
        if name in {"Exit", "BadParameter"}:  # typer's own CLI exits
            continue
        if (relative, name) in ALLOWED:
            continue
        if name in builtin or name.endswith("Error"):
            bad.append(f"evmeta/{relative}:{line} raises {name}")
    assert not bad, "raise an EvmetaError subclass (or list the reason in ALLOWED):\n" + "\n".join(bad)


def test_familiar_types_are_kept():
    assert issubclass(em.ModelError, ValueError) and issubclass(em.ModelError, em.EvmetaError)
    assert issubclass(errors.InputError, ValueError) and issubclass(errors.PlotError, ValueError)
    assert issubclass(errors.UnknownNameError, KeyError)
    assert str(errors.UnknownNameError("no such column 'x'")) == "no such column 'x'"


def test_a_model_error_in_a_stage_becomes_a_note():
    run = types.SimpleNamespace(notes=[])

    def refuse():
        raise em.ModelError("one level only")

    assert stages._try(run, "subgroups by x", refuse) is None
    assert run.notes == ["subgroups by x: not fitted (one level only)"]


def test_a_programming_error_in_a_stage_surfaces_as_a_traceback(monkeypatch, tmp_path):
    def planted(*args, **kwargs):
        return 1 / 0  # a bug, not a modelling problem

    monkeypatch.setattr(stages, "subgroup_analysis", planted)
    with pytest.raises(ZeroDivisionError):
        em.run_analysis(ROOT / "analyses" / "example.toml", output=tmp_path, quiet=True)

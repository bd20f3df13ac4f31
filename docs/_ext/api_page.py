"""Write docs/api.md from the public namespaces' ``__all__`` (``make docs`` runs this first;
tests/test_docs_site.py checks that the committed page is current)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
SECTIONS = [
    ("evmeta", "The top level: read, validate, build, fit, draw, run"),
    ("evmeta.schema", "Extraction workbooks: sheets, columns, vocabularies"),
    ("evmeta.harmonize", "Doses, effect sizes, dispersion, quality"),
    ("evmeta.models", "Models and their results"),
    ("evmeta.plots", "Figures"),
    ("evmeta.review", "The review's chores"),
    ("evmeta.analysis", "Analysis specs, runs and the multiverse"),
]
HEAD = """# API reference

Generated from the docstrings (this page by `docs/_ext/api_page.py`). `import evmeta as em`
gives the top-level names; every other public name lives in a namespace with its own
`__all__` (`em.models.egger_test`, `em.review.prisma_counts`, ...). Names load lazily, so
`import evmeta` never imports matplotlib, PyMC or ArviZ.
"""


def page() -> str:
    sys.path.insert(0, str(DOCS.parent))
    import evmeta.errors

    errors = {n for n in dir(evmeta.errors) if n[0].isupper()}
    out, seen = [HEAD], set()
    for module, title in SECTIONS:
        names = [n for n in importlib.import_module(module).__all__ if not n.startswith("_")]
        names = [n for n in names if n not in seen and n not in errors and n.upper() != n]
        seen.update(names)
        out += [f"## {title} (`{module}`)", "", "```{eval-rst}", f".. currentmodule:: {module}", "",
                ".. autosummary::", "   :toctree: generated", ""]
        out += [f"   {n}" for n in names] + ["```", ""]
    out += ["## Errors (`evmeta.errors`)", "", "Every error evmeta raises on purpose is an `EvmetaError`; "
            "callers catch only those.", "", "```{eval-rst}", ".. automodule:: evmeta.errors", "   :members:",
            "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    (DOCS / "api.md").write_text(page(), encoding="utf-8")

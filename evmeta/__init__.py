"""evmeta: meta-analysis of preclinical studies of MSC-derived extracellular vesicles.

The top level holds the path most analyses take (read, validate, build comparisons, fit,
draw, run) and the errors; everything else lives in a namespace with its own ``__all__``:

=====================  ==========================================================
``evmeta.models``      every model, its result type, and the ``FitResult`` protocol
``evmeta.harmonize``   doses, effect sizes, dispersion conversions, quality scores
``evmeta.plots``       every figure and ``save_figure``
``evmeta.review``      look-up, reconciliation, de-duplication, screening, PRISMA, digitizing
``evmeta.schema``      the extraction workbook's sheets, columns and vocabularies
``evmeta.analysis``    analysis specs, ``evmeta run`` and the multiverse
``evmeta.errors``      every error evmeta raises on purpose (one base: ``EvmetaError``)
=====================  ==========================================================

Names load lazily, so ``import evmeta`` (and ``evmeta --help``) stays fast and never
imports PyMC, ArviZ or matplotlib. One meaning per argument word across the API:
``level`` is always a confidence or credible level in (0, 1) (95 is read as 0.95);
``method`` always names an estimator or engine of the function's own model; ``test``
always names the reference distribution of tests (``"z"`` or ``"knha"``/``"t"``);
``mods`` a moderator formula; ``random`` nesting levels; ``by`` a grouping column;
``output`` a path written to, refused when it exists unless ``overwrite=True``/``--force``.
"""

from __future__ import annotations

from evmeta._lazy import lazy_namespace
from evmeta._version import __version__
from evmeta.errors import (
    ConvergenceWarning,
    DoseError,
    EvmetaError,
    ExtractionError,
    ModelError,
    Problem,
    SpecError,
)

# Public name -> module that defines it (imported on first use).
_LAZY = {
    "Extraction": "evmeta.schema.extraction",
    "read_extraction": "evmeta.schema.validation.validate",
    "validate_extraction": "evmeta.schema.validation.validate",
    "write_template": "evmeta.schema.template",
    "import_wide": "evmeta.schema.wide_import",
    "parse_dose": "evmeta.harmonize.doses",
    "harmonize_dose": "evmeta.harmonize.doses",
    "effect_size": "evmeta.harmonize.effects",
    "Comparisons": "evmeta.comparisons",
    "build_comparisons": "evmeta.comparisons",
    "meta_analysis": "evmeta.models.frequentist.meta",
    "multilevel_meta_analysis": "evmeta.models.frequentist.multilevel",
    "subgroup_analysis": "evmeta.models.frequentist.subgroup",
    "bayesian_meta_analysis": "evmeta.models.bayes.fit",
    "forest_plot": "evmeta.plots.forest",
    "save_figure": "evmeta.plots",
    "load_spec": "evmeta.analysis.spec",
    "run_analysis": "evmeta.analysis.pipeline",
    "AnalysisRun": "evmeta.analysis.pipeline",
    "run_multiverse": "evmeta.analysis.multiverse",
}
_NAMESPACES = ("models", "harmonize", "plots", "review", "schema", "analysis", "errors")

__all__ = [
    "ConvergenceWarning",
    "DoseError",
    "EvmetaError",
    "ExtractionError",
    "ModelError",
    "Problem",
    "SpecError",
    "__version__",
    *_LAZY,
]

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY, _NAMESPACES)

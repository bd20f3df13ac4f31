"""evmeta: meta-analysis of preclinical studies of MSC-derived extracellular vesicles.

The public API is listed in ``__all__``; names load lazily so that ``import evmeta`` (and
``evmeta --help``) stays fast and never imports PyMC, ArviZ or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

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
from evmeta.models import _LAZY as _MODEL_NAMES

# Public name -> module that defines it (imported on first use).
_LAZY = {
    "Extraction": "evmeta.schema.extraction",
    "read_extraction": "evmeta.schema.validate",
    "validate_extraction": "evmeta.schema.validate",
    "write_template": "evmeta.schema.template",
    "import_wide": "evmeta.schema.wide_import",
    "Dose": "evmeta.harmonize.doses",
    "parse_dose": "evmeta.harmonize.doses",
    "harmonize_dose": "evmeta.harmonize.doses",
    "purity_class": "evmeta.harmonize.doses",
    "effect_size": "evmeta.harmonize.effects",
    "shared_control_covariance": "evmeta.harmonize.covariance",
    "Comparisons": "evmeta.comparisons",
    "build_comparisons": "evmeta.comparisons",
    "characterization_quality": "evmeta.harmonize.quality",
    **_MODEL_NAMES,  # every public model name, from the models namespace (one list, not two)
    "forest_plot": "evmeta.plots.forest",
    "funnel_plot": "evmeta.plots.funnel",
    "risk_of_bias_plot": "evmeta.plots.risk_of_bias",
    "dose_response_plot": "evmeta.plots.dose_response",
    "moderator_plot": "evmeta.plots.moderators",
    "posterior_plot": "evmeta.plots.posterior",
    "save_figure": "evmeta.plots._style",
    "FigurePages": "evmeta.plots._style",
    "FigureError": "evmeta.plots._style",
    "load_spec": "evmeta.analysis.spec",
    "AnalysisRun": "evmeta.analysis.pipeline",
    "run_analysis": "evmeta.analysis.pipeline",
    "MultiverseRun": "evmeta.analysis.multiverse",
    "run_multiverse": "evmeta.analysis.multiverse",
    "specification_curve_plot": "evmeta.plots.specification_curve",
    "LookupClient": "evmeta.review.lookup",
    "run_lookup": "evmeta.review.lookup",
    "reconcile": "evmeta.review.reconcile",
    "write_reconciliation": "evmeta.review.reconcile",
    "apply_decisions": "evmeta.review.reconcile",
    "cohen_kappa": "evmeta.review.reconcile",
    "deduplicate": "evmeta.review.dedupe",
    "read_search_export": "evmeta.review.dedupe",
    "risk_of_bias_summary": "evmeta.harmonize.quality",
    "sd_from_sem": "evmeta.harmonize.dispersion",
    "sd_from_ci": "evmeta.harmonize.dispersion",
    "mean_sd_from_quartiles": "evmeta.harmonize.dispersion",
    "mean_sd_from_range": "evmeta.harmonize.dispersion",
    "write_screening_sheet": "evmeta.review.screening",
    "read_screening": "evmeta.review.screening",
    "screening_agreement": "evmeta.review.screening",
    "PrismaCounts": "evmeta.review.prisma",
    "prisma_counts": "evmeta.review.prisma",
    "prisma_diagram": "evmeta.plots.prisma",
    "read_digitized": "evmeta.review.digitized",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evmeta' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""Publication figures. Every function takes a result, returns a matplotlib Figure,
accepts ``ax=``, computes no statistics of its own and never calls ``show()``."""

from __future__ import annotations

from evmeta._lazy import lazy_namespace

_LAZY = {
    "FigurePages": "evmeta.plots._style",
    "save_figure": "evmeta.plots._style",
    "forest_plot": "evmeta.plots.forest",
    "funnel_plot": "evmeta.plots.funnel",
    "risk_of_bias_plot": "evmeta.plots.risk_of_bias",
    "dose_response_plot": "evmeta.plots.dose_response",
    "moderator_plot": "evmeta.plots.moderators",
    "posterior_plot": "evmeta.plots.posterior",
    "bias_panel": "evmeta.plots.bias_panel",
    "isolation_evidence_plot": "evmeta.plots.isolation_evidence",
    "specification_curve_plot": "evmeta.plots.specification_curve",
    "prisma_diagram": "evmeta.plots.prisma",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)

# The function shares its name with its module: bound now, so that an import of the module
# evmeta.plots.bias_panel (which sets the package attribute) cannot shadow the function.
from evmeta.plots.bias_panel import bias_panel  # noqa: E402, F401

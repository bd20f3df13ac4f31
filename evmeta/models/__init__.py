"""Models: ``base`` (design, nesting, inference, provenance), ``frequentist``, ``bayes`` and
``bias``.

The public model functions load lazily from here (``from evmeta.models import meta_analysis``),
so code above this layer does not depend on which sub-module defines them and importing it
never pulls in PyMC or ArviZ.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FitResult": "evmeta.models.base.protocol",
    "Summary": "evmeta.models.base.protocol",
    "EggerResult": "evmeta.models.bias.small_study",
    "TrimFillResult": "evmeta.models.bias.small_study",
    "PetPeeseResult": "evmeta.models.bias.small_study",
    "MetaResult": "evmeta.models.frequentist.meta",
    "meta_analysis": "evmeta.models.frequentist.meta",
    "SubgroupResult": "evmeta.models.frequentist.subgroup",
    "subgroup_analysis": "evmeta.models.frequentist.subgroup",
    "adjust_pvalues": "evmeta.models.frequentist.subgroup",
    "MultilevelResult": "evmeta.models.frequentist.multilevel",
    "multilevel_meta_analysis": "evmeta.models.frequentist.multilevel",
    "egger_test": "evmeta.models.bias.small_study",
    "trim_and_fill": "evmeta.models.bias.small_study",
    "pet_peese": "evmeta.models.bias.small_study",
    "cumulative_meta_analysis": "evmeta.models.bias.small_study",
    "SelectionResult": "evmeta.models.bias.selection",
    "selection_model": "evmeta.models.bias.selection",
    "BiasAveragingResult": "evmeta.models.bias.averaging",
    "bias_model_averaging": "evmeta.models.bias.averaging",
    "isolation_method_evidence": "evmeta.models.isolation_evidence",
    "BayesResult": "evmeta.models.bayes.result",
    "bayesian_meta_analysis": "evmeta.models.bayes.fit",
    "compare_models": "evmeta.models.bayes.arviz_io",
    "Prior": "evmeta.models.priors",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evmeta.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

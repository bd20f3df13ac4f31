"""Models: ``base`` (design, nesting, inference, provenance), ``frequentist``, ``bayes`` and
``bias``.

The public model functions load lazily from here (``from evmeta.models import meta_analysis``),
so code above this layer does not depend on which sub-module defines them and importing it
never pulls in PyMC or ArviZ.
"""

from __future__ import annotations

from evmeta._lazy import lazy_namespace

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
    "LocationScaleResult": "evmeta.models.frequentist.location_scale",
    "heterogeneity_test": "evmeta.models.frequentist.heterogeneity_test",
    "MultilevelResult": "evmeta.models.frequentist.multilevel",
    "multilevel_i2": "evmeta.models.frequentist.multilevel_heterogeneity",
    "multilevel_r2": "evmeta.models.frequentist.multilevel_heterogeneity",
    "multilevel_weights": "evmeta.models.frequentist.multilevel_weights",
    "multilevel_meta_analysis": "evmeta.models.frequentist.multilevel",
    "egger_test": "evmeta.models.bias.small_study",
    "trim_and_fill": "evmeta.models.bias.small_study",
    "pet_peese": "evmeta.models.bias.small_study",
    "cumulative_meta_analysis": "evmeta.models.bias.small_study",
    "multilevel_small_study": "evmeta.models.bias.multilevel_small_study",
    "SelectionResult": "evmeta.models.bias.selection",
    "selection_model": "evmeta.models.bias.selection",
    "BiasAveragingResult": "evmeta.models.bias.averaging",
    "bias_model_averaging": "evmeta.models.bias.averaging",
    "isolation_method_evidence": "evmeta.models.isolation_evidence",
    "BayesResult": "evmeta.models.bayes.result",
    "bayesian_meta_analysis": "evmeta.models.bayes.fit",
    "bayesian_location_scale": "evmeta.models.bayes.location_scale",
    "compare_models": "evmeta.models.bayes.arviz_io",
    "Prior": "evmeta.models.priors",
    "DoseResponseResult": "evmeta.models.dose_response.result",
    "dose_response_meta_analysis": "evmeta.models.dose_response.fit",
    "BayesDoseResponseResult": "evmeta.models.dose_response.bayes",
    "bayesian_dose_response": "evmeta.models.dose_response.bayes",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)

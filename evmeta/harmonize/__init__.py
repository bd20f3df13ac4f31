"""Harmonizing what papers report: doses to canonical units (per animal, per kg,
human-equivalent), effect sizes and their variances, dispersion conversions, the
characterization quality score and risk-of-bias summaries, shared control arms, assumed
correlations of effects on the same animals and nested comparisons combined per cohort."""

from __future__ import annotations

from evmeta._lazy import lazy_namespace

_LAZY = {
    "Dose": "evmeta.harmonize.doses",
    "parse_dose": "evmeta.harmonize.doses",
    "harmonize_dose": "evmeta.harmonize.doses",
    "purity_class": "evmeta.harmonize.doses",
    "from_reference_weight": "evmeta.harmonize.arm_doses",
    "effect_size": "evmeta.harmonize.effects",
    "EffectOptions": "evmeta.harmonize.effect_options",
    "log_odds_ratio_to_smd": "evmeta.harmonize.or_to_smd",
    "smd_to_log_odds_ratio": "evmeta.harmonize.or_to_smd",
    "sd_from_sem": "evmeta.harmonize.dispersion",
    "sd_from_ci": "evmeta.harmonize.dispersion",
    "mean_sd_from_quartiles": "evmeta.harmonize.dispersion",
    "mean_sd_from_range": "evmeta.harmonize.dispersion",
    "characterization_quality": "evmeta.harmonize.quality",
    "risk_of_bias_summary": "evmeta.harmonize.quality",
    "shared_control_covariance": "evmeta.harmonize.covariance",
    "resplit_shared_controls": "evmeta.harmonize.control_split",
    "sampling_covariance": "evmeta.harmonize.assumed_covariance",
    "aggregate_comparisons": "evmeta.harmonize.aggregate",
    "AggregatedComparisons": "evmeta.harmonize.aggregate",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)

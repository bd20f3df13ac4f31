""":func:`build_comparisons`: the steps in order, select -> pair -> size -> sign -> annotate,
with the arguments checked and recorded for provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evmeta.comparisons.annotate import _annotate
from evmeta.comparisons.exclusions import _Log, _log_unused
from evmeta.comparisons.result import Comparisons
from evmeta.comparisons.select import _select
from evmeta.comparisons.sign import _signed_table
from evmeta.comparisons.size import _choose_measure, _size
from evmeta.errors import ExtractionError, InputError, Problem
from evmeta.harmonize.effect_options import EffectOptions
from evmeta.harmonize.effects import MEASURES
from evmeta.harmonize.pairing import pair_with_controls
from evmeta.schema.extraction import Extraction

#: One outcome at one time point in one experiment (``_time_key``: days, -inf when not given:
#: time points may be negative, before time zero, so no finite number can stand for "none").
_GROUP = ["experiment_id", "outcome", "_time_key"]


def build_comparisons(
    extraction: Extraction,
    measure: str = "SMD",
    *,
    outcome: str | Sequence[str] | None = None,
    timepoint: str | float = "last",
    shared_control: str = "split",
    reference_weights: Mapping[str, float] | None = None,
    km: Mapping[str, float] | None = None,
    quartile_method: str = "wan",
    effect_options: EffectOptions | None = None,
) -> Comparisons:
    """Build the comparison table from a validated extraction.

    Parameters
    ----------
    extraction : Extraction
        From :func:`evmeta.read_extraction`.
    measure : {"SMD", "MD", "ROM", "NMD", "OR", "RR", "RD", "NMD_or_SMD"}
        Effect measure. ``NMD_or_SMD`` uses NMD when at least 70% of comparisons have a
        sham arm on the same outcome and time (Vesterinen et al. 2014), else SMD.
    outcome : str or list of str, optional
        Outcome name(s) to keep (case-insensitive); all when None.
    timepoint : {"last", "first", "all"} or float
        Which time point per experiment and outcome: the last, the first, all, or the one
        closest to this many days.
    shared_control : {"split", "keep"}
        When k EV arms share one control row: ``split`` divides the control n (events and
        total for binary measures) by k, the number of comparisons in the returned table
        that use it (CAMARADES; as metafor users split a shared group among the comparisons
        they analyse): arms left out for any reason do not count, so their share goes to the
        others. Validity checks use the reported n; an arm whose effect size fails only
        with the split n (SMD's n1 + n2 - 2 > 1) is logged, and the control is split again
        among the arms left. ``keep`` leaves n, and the
        comparisons sharing a control are correlated: pass
        :func:`evmeta.harmonize.shared_control_covariance` of the table as ``V`` to
        ``multilevel_meta_analysis`` or ``bayesian_meta_analysis``.
    reference_weights, km : mapping, optional
        Per-species overrides of the reference body weight (kg) and FDA Km.
    quartile_method : {"wan", "luo"}
        Mean estimate from medians (SD always by Wan et al. 2014).
    effect_options : EffectOptions, optional
        SMD variant (exact or RevMan), ROM bias correction, conversion of binary
        comparisons to SMD (docs/effect_sizes.md); default: :class:`EffectOptions`.

    Returns
    -------
    Comparisons
        ``.table`` columns include ``comparison_id``, ``study_id``, ``experiment_id``,
        ``outcome``, ``timepoint`` (days), ``timepoint_label``, ``label``, ``measure``,
        ``yi``, ``vi``, ``sei``, ``n_treat``, ``n_control`` (after splitting),
        ``n_control_reported``, ``control_group_id``, ``mean_treat``, ``sd_treat``,
        ``mean_control``, ``sd_control``, ``events_treat``, ``total_treat``,
        ``events_control``, ``total_control`` (arm statistics as used, control unsplit),
        ``direction_flipped``, ``effect_conversion`` (empty, or the conversion a binary
        comparison went through under ``binary_to_smd``),
        ``isolation_method``, ``isolation_family``, ``isolation_gmp_scalable``,
        ``msc_tissue_source``, ``species``, ``disease_model``, ``route``, ``dose_*``
        (per administration, and cumulative ``dose_total_ug_protein_per_kg``,
        ``dose_total_particles_per_kg``, ``dose_total_cell_equivalents_per_kg`` with
        ``dose_provenance_total_*``: see :func:`harmonize_arm_doses`),
        ``log10_dose_ug_protein_per_kg``, ``quality_score``, the MISEV item columns,
        ``evmetric_like``, ``isct_count``, ``purity_class``, the SYRCLE item columns,
        ``rob_low_count``, ``rob_low_randomization_blinding``, and provenance:
        ``source_file``, ``treat_outcome_row``, ``control_outcome_row``,
        ``sham_outcome_row``, ``treat_outcome_id``, ``control_outcome_id``.
    """
    requested = _check_arguments(measure, shared_control)
    options = effect_options or EffectOptions()
    settings = _settings(measure, outcome, timepoint, shared_control, reference_weights, km, quartile_method)
    settings["effect_options"] = options.as_dict()
    _require_outcomes(extraction)
    log = _Log()
    rows = _select(extraction, outcome, timepoint, quartile_method, log)
    pairing = pair_with_controls(rows, _GROUP)
    for dropped, reason in pairing.dropped:
        log.add(dropped, reason)
    used_measure = _choose_measure(requested, pairing.pairs, settings)
    pairs, es, k_sharing = _size(pairing.pairs, used_measure, shared_control, log, options)
    table = _signed_table(pairs, es, used_measure, k_sharing)
    table = _annotate(table, pairs, extraction, reference_weights, km)
    _log_unused(pairing, table, used_measure, log)
    return Comparisons(table, log.frame(), used_measure, settings, extraction.notes_frame())


def _check_arguments(measure: str, shared_control: str) -> str:
    """The requested measure, upper-cased; refuse unknown measures and control rules."""
    requested = str(measure).upper() if measure != "NMD_or_SMD" else measure
    if requested not in (*MEASURES, "NMD_or_SMD"):
        raise InputError(
            f"unknown measure {measure!r}; valid measures: {', '.join((*MEASURES, 'NMD_or_SMD'))}"
        )
    if shared_control not in {"split", "keep"}:
        raise InputError(f"shared_control must be 'split' or 'keep', got {shared_control!r}")
    return requested


def _settings(
    measure: str,
    outcome: str | Sequence[str] | None,
    timepoint: str | float,
    shared_control: str,
    reference_weights: Mapping[str, float] | None,
    km: Mapping[str, float] | None,
    quartile_method: str,
) -> dict[str, Any]:
    """The arguments of a build, for provenance."""
    return dict(
        measure=measure,
        outcome=outcome,
        timepoint=timepoint,
        shared_control=shared_control,
        reference_weights=dict(reference_weights or {}),
        km=dict(km or {}),
        quartile_method=quartile_method,
    )


def _require_outcomes(extraction: Extraction) -> None:
    if len(extraction.outcomes) == 0:
        raise ExtractionError(
            [
                Problem(
                    "outcomes",
                    None,
                    None,
                    None,
                    "the extraction has no valid outcome rows, so there is nothing to compare; "
                    "fill in the studies, experiments, arms and outcomes sheets (evmeta validate checks them)",
                )
            ]
        )

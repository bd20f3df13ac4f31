"""Comparisons: one row per (experiment, outcome, time point, EV arm vs its control arm).

:func:`build_comparisons` turns the ``outcomes`` sheet into the table the models use: an
effect size ``yi`` with variance ``vi`` per comparison, the moderators (isolation method,
characterization quality, dose, risk of bias, ...) and the provenance of both rows. Every
outcome row that is not used appears in ``Comparisons.exclusions`` with its reason.

Steps: select (outcomes, time points) -> pair (each EV row with the control row its arm
names in ``arms.control_arm_id``, else the only vehicle_control row of its experiment,
outcome and time point: :mod:`evmeta.harmonize.pairing`) -> size (effect sizes, shared
controls split) -> sign -> annotate (moderators, labels, provenance).

Sign convention: ``yi`` is EV minus control (metafor's group 1 minus group 2), multiplied
by -1 where lower values are better, so that **positive always means benefit of EVs**;
``direction_flipped`` records where that happened. NMD is oriented by construction and is
never flipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import ExtractionError, InputError, Problem
from evmeta.harmonize.arm_doses import harmonize_arm_doses
from evmeta.harmonize.control_split import pair_effects
from evmeta.harmonize.dispersion import mean_sd_from_quartiles, mean_sd_from_range, sd_from_ci, sd_from_sem
from evmeta.harmonize.effect_options import EffectOptions
from evmeta.harmonize.effects import MEASURES
from evmeta.harmonize.pairing import Pairing, pair_with_controls
from evmeta.harmonize.quality import (
    characterization_quality,
    misev_columns,
    risk_of_bias_summary,
    syrcle_columns,
)
from evmeta.schema.cells import parse_number
from evmeta.schema.columns import column_map
from evmeta.schema.extraction import NOTE_COLUMNS, Extraction
from evmeta.schema.preparation_kind import EV_ONLY_COLUMNS, NON_EV, ev_preparation_mask

#: Share of comparisons with a sham arm needed for NMD under ``measure="NMD_or_SMD"``.
NMD_SHARE = 0.70
_TIME_TO_DAYS = {"hours": 1 / 24, "days": 1.0, "weeks": 7.0}
_TIME_ABBREVIATION = {"hours": "h", "days": "d", "weeks": "wk"}
#: One outcome at one time point in one experiment (``_time_key``: days, -inf when not given:
#: time points may be negative, before time zero, so no finite number can stand for "none").
_GROUP = ["experiment_id", "outcome", "_time_key"]
EXCLUSION_COLUMNS = ["sheet", "row", "outcome_id", "arm_id", "experiment_id", "outcome", "reason"]


@dataclass
class Comparisons:
    """The comparison table and the log of outcome rows not used.

    Attributes
    ----------
    table : DataFrame
        One row per comparison (see :func:`build_comparisons` for the columns).
    exclusions : DataFrame
        ``sheet``, ``row`` (Excel row on the outcomes sheet), ``outcome_id``, ``arm_id``,
        ``experiment_id``, ``outcome``, ``reason``.
    measure : str
        Effect measure used (after the NMD/SMD rule).
    settings : dict
        Arguments of the build, for provenance.
    validation_notes : DataFrame
        The extraction's validation notes (:meth:`evmeta.schema.extraction.Extraction.notes_frame`:
        ``sheet, row, cell, column, value, check, message``), what ``validation_notes.csv``
        holds: rows analysed with a remark (SD-or-SEM signs, unreadable dose texts, ...).
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame
    measure: str
    settings: dict = field(default_factory=dict)
    validation_notes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NOTE_COLUMNS))

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        """The comparison table (a copy)."""
        return self.table.copy()

    def summary(self) -> str:
        """Counts of comparisons, studies and exclusions by reason."""
        t = self.table
        lines = [
            f"{len(t)} comparisons ({self.measure}) from {t['study_id'].nunique() if len(t) else 0} studies, "
            f"{t['experiment_id'].nunique() if len(t) else 0} experiments; {len(self.exclusions)} outcome rows excluded"
        ]
        if len(self.exclusions):
            for reason, count in self.exclusions["reason"].str.split(":").str[0].value_counts().items():
                lines.append(f"  {count:>5}  {reason}")
        return "\n".join(lines)


def _arm_statistics(rows: pd.DataFrame, quartile_method: str) -> pd.DataFrame:
    """Mean, SD and where they came from, for each outcome row."""
    n = rows["n"].astype(float).to_numpy()
    mean = rows["mean"].astype(float).to_numpy()
    sd = rows["sd"].astype(float).to_numpy()
    source = np.where(~np.isnan(sd), "sd", "")

    def column(name: str) -> pd.Series:
        return rows[name].astype(float)

    def fill(label: str, new_sd: np.ndarray, new_mean: np.ndarray | None = None) -> None:
        # Use a conversion where the row has no SD yet (or, for median-based ones, no mean).
        nonlocal mean, sd, source
        missing = source == ""
        if new_mean is not None:
            missing = missing | np.isnan(mean)
            mean = np.where(missing & ~np.isnan(new_sd), new_mean, mean)
        use = missing & ~np.isnan(new_sd)
        sd = np.where(use, new_sd, sd)
        source = np.where(use, label, source)

    fill("sem", sd_from_sem(column("sem"), n))
    fill("ci", sd_from_ci(column("ci_lower"), column("ci_upper"), n))
    q_mean, q_sd = mean_sd_from_quartiles(
        column("q1"), column("median"), column("q3"), n, method=quartile_method
    )
    fill("iqr", q_sd, q_mean)
    r_mean, r_sd = mean_sd_from_range(
        column("min"), column("median"), column("max"), n, method=quartile_method
    )
    fill("range", r_sd, r_mean)
    binary = rows["events"].notna() & rows["total"].notna()
    source = np.where((source == "") & binary.to_numpy(), "events", source)
    return pd.DataFrame({"mean_est": mean, "sd_est": sd, "dispersion_source": source}, index=rows.index)


def _outcome_rows(extraction: Extraction, quartile_method: str) -> pd.DataFrame:
    outcomes = extraction.outcomes.copy()
    arms = extraction.arms.reindex(
        columns=[
            "arm_id",
            "role",
            "prep_id",
            "arm_label",
            "route",
            "n_doses",
            "timing_hours",
            "experiment_id",
            "control_arm_id",
        ]
    )
    arms = arms.assign(control_arm_id=arms["control_arm_id"].where(arms["control_arm_id"].notna(), None))
    experiments = extraction.experiments[
        ["experiment_id", "study_id", "species", "strain", "sex", "disease_model", "body_weight_kg"]
    ]
    studies = extraction.studies[["study_id", "first_author", "year"]]
    rows = outcomes.merge(arms.drop(columns="experiment_id"), on="arm_id", how="left", validate="many_to_one")
    rows = rows.merge(experiments, on="experiment_id", how="left", validate="many_to_one")
    rows = rows.merge(studies, on="study_id", how="left", validate="many_to_one")
    rows.index = outcomes.index
    unit = rows["timepoint_unit"].fillna("days").map(_TIME_TO_DAYS)
    rows["timepoint_days"] = rows["timepoint"].astype(float) * unit.astype(float)
    rows["timepoint_label"] = [
        "" if pd.isna(t) else f"{t:g} {_TIME_ABBREVIATION.get(u if isinstance(u, str) else 'days', 'd')}"
        for t, u in zip(rows["timepoint"], rows["timepoint_unit"], strict=True)
    ]
    stats = _arm_statistics(rows, quartile_method)
    return pd.concat([rows, stats], axis=1)


class _Log:
    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []

    def add(self, rows: pd.DataFrame, reason: str | pd.Series | np.ndarray) -> None:
        if len(rows) == 0:
            return
        part = pd.DataFrame(
            {
                "sheet": "outcomes",
                "row": rows["_row"].to_numpy(),
                "outcome_id": rows["outcome_id"].to_numpy(),
                "arm_id": rows["arm_id"].to_numpy(),
                "experiment_id": rows["experiment_id"].to_numpy(),
                "outcome": rows["outcome"].to_numpy(),
                "reason": reason if isinstance(reason, str) else np.asarray(reason, dtype=object),
            }
        )
        self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=EXCLUSION_COLUMNS)
        return (
            pd.concat(self.parts, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
        )


def _select_outcomes(rows: pd.DataFrame, outcome: str | Sequence[str] | None, log: _Log) -> pd.DataFrame:
    if outcome is None:
        return rows
    wanted = [outcome] if isinstance(outcome, str) else list(outcome)
    folded = {w.casefold().strip() for w in wanted}
    keep = rows["outcome"].str.casefold().str.strip().isin(folded)
    log.add(rows[~keep], f"outcome not selected (analysis uses: {', '.join(wanted)})")
    return rows[keep]


def _select_timepoints(rows: pd.DataFrame, timepoint: str | float, log: _Log) -> pd.DataFrame:
    if timepoint == "all":
        return rows
    key = ["experiment_id", "outcome"]
    days = rows["timepoint_days"]
    has_time = days.notna()
    group_has_time = has_time.groupby([rows[k] for k in key]).transform("any")
    missing = ~has_time & group_has_time
    log.add(rows[missing], "time point missing while other rows of this outcome have one")
    rows = rows[~missing]
    days = rows["timepoint_days"]
    grouped = days.groupby([rows[k] for k in key])
    if timepoint == "last":
        target = grouped.transform("max")
        label = "not the last time point"
    elif timepoint == "first":
        target = grouped.transform("min")
        label = "not the first time point"
    elif isinstance(timepoint, (int, float)) and not isinstance(timepoint, bool):
        distance = (days - float(timepoint)).abs()
        best = distance.groupby([rows[k] for k in key]).transform("min")
        # Ties: the later time point.
        candidates = days.where(distance == best)
        target = candidates.groupby([rows[k] for k in key]).transform("max")
        label = f"not the time point closest to {timepoint:g} days"
    else:
        raise InputError(f"timepoint must be 'last', 'first', 'all' or a number of days, got {timepoint!r}")
    keep = (days == target) | (days.isna() & target.isna())
    log.add(rows[~keep], f"time point rule '{timepoint}': {label}")
    return rows[keep]


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


def _select(
    extraction: Extraction,
    outcome: str | Sequence[str] | None,
    timepoint: str | float,
    quartile_method: str,
    log: _Log,
) -> pd.DataFrame:
    """Step 1, select: the outcome rows of the chosen outcomes and time points, with arm statistics."""
    rows = _outcome_rows(extraction, quartile_method)
    rows = _select_outcomes(rows, outcome, log)
    positive = rows["role"] == "positive_control"
    log.add(rows[positive], "positive_control arm: not compared with EVs")
    rows = _select_timepoints(rows[~positive], timepoint, log)
    return rows.assign(_time_key=rows["timepoint_days"].fillna(-np.inf))


def _choose_measure(requested: str, pairs: pd.DataFrame, settings: dict) -> str:
    """The measure, after the NMD/SMD rule (NMD when enough comparisons have a sham row)."""
    if requested != "NMD_or_SMD":
        return requested
    share = pairs["mean_est_s"].notna().mean() if len(pairs) else 0.0
    settings["nmd_share"] = float(share)
    return "NMD" if share >= NMD_SHARE else "SMD"


def _size(
    pairs: pd.DataFrame, measure: str, shared_control: str, log: _Log, options: EffectOptions
) -> tuple[pd.DataFrame, pd.DataFrame, float | pd.Series]:
    """Step 3, size: effect sizes, the shared control split among the comparisons that use it.

    Returns the pairs kept, their effect sizes and the number of comparisons each control is
    divided among (1.0 when not split).
    """
    binary = measure in {"OR", "RR", "RD"}
    mismatch = pairs["higher_is_better"] != pairs["higher_is_better_c"]
    log.add(pairs[mismatch], "higher_is_better differs between the EV row and its control row")
    pairs = pairs[~mismatch]
    if not binary:
        # Validity rules apply to the reported group sizes; a split n only scales the variance.
        too_small = (pairs["n"].astype(float) < 2) | (pairs["n_c"].astype(float) < 2)
        log.add(pairs[too_small], "effect size not computable: n must be >= 2 in each arm (as reported)")
        pairs = pairs[~too_small]
    # What cannot be computed even with the control unsplit is dropped first, so that a split
    # control is divided only among the comparisons that use it (metafor practice: the shared
    # group is split among the comparisons in the analysis).
    es = pair_effects(pairs, measure, 1.0, options)
    bad = es["reason"] != ""
    log.add(pairs[bad], "effect size not computable: " + es.loc[bad, "reason"].astype(str))
    pairs, es = pairs[~bad], es[~bad]
    if shared_control != "split":
        return pairs, es, 1.0
    # Bounded: every pass that does not break drops at least one pair.
    while len(pairs):
        k_sharing = _sharing(pairs)
        es = pair_effects(pairs, measure, k_sharing, options)
        bad = es["reason"] != ""
        if not bad.any():
            break
        # Only a split n can fail here (SMD's n1 + n2 - 2 > 1, a binary arm below one animal);
        # the control is split again among the arms left.
        split_n = pairs["total_c" if binary else "n_c"].astype(float) / k_sharing
        log.add(
            pairs[bad],
            "effect size not computable: "
            + es.loc[bad, "reason"].astype(str)
            + " (control n split among "
            + k_sharing[bad].map("{:g}".format)
            + " arms: "
            + split_n[bad].map("{:.3g}".format)
            + ")",
        )
        pairs, es = pairs[~bad], es[~bad]
    return pairs, es, _sharing(pairs)


def _sharing(pairs: pd.DataFrame) -> pd.Series:
    """Number of comparisons that use each pair's control row."""
    return pairs.groupby("outcome_id_c")["outcome_id"].transform("count").astype(float)


#: Comparison column -> pairs column copied as float (arm statistics as used, control unsplit).
_ARM_STATISTICS = {
    "mean_treat": "mean_est",
    "sd_treat": "sd_est",
    "mean_control": "mean_est_c",
    "sd_control": "sd_est_c",
    "events_treat": "events",
    "total_treat": "total",
    "events_control": "events_c",
    "total_control": "total_c",
    "mean_sham": "mean_est_s",
}
_CARRIED = ["species", "strain", "sex", "disease_model", "route", "timing_hours", "first_author", "year"]


def _signed_table(
    pairs: pd.DataFrame, es: pd.DataFrame, measure: str, k_sharing: float | pd.Series
) -> pd.DataFrame:
    """Step 4, sign: yi oriented so that positive means benefit of EVs, with the arm statistics."""
    n_control_reported = pairs["n_c"].astype(float)
    flip = (pairs["higher_is_better"] == "no") & (measure != "NMD")
    table = pd.DataFrame(index=pairs.index)
    table["comparison_id"] = pairs["outcome_id"]
    for column in ["study_id", "experiment_id", "outcome"]:
        table[column] = pairs[column]
    table["timepoint"] = pairs["timepoint_days"]
    table["timepoint_label"] = pairs["timepoint_label"]
    table["measure"] = measure
    table["yi"] = es["yi"].to_numpy() * np.where(flip, -1.0, 1.0)
    table["vi"] = es["vi"].to_numpy()
    table["sei"] = np.sqrt(table["vi"])
    table["n_treat"] = pairs["n"].astype(float)
    table["n_control"] = (n_control_reported / k_sharing).to_numpy()
    table["n_control_reported"] = n_control_reported.to_numpy()
    # How many comparisons the control was divided among (1: not split).
    table["control_split_among"] = np.broadcast_to(np.asarray(k_sharing, dtype=float), len(pairs)).copy()
    table["control_group_id"] = pairs["outcome_id_c"]
    for column, source in _ARM_STATISTICS.items():
        table[column] = pairs[source].astype(float).to_numpy()
    table["direction_flipped"] = flip.to_numpy()
    table["effect_conversion"] = es["effect_conversion"].to_numpy() if "effect_conversion" in es else ""
    table["higher_is_better"] = pairs["higher_is_better"] == "yes"
    table["dispersion_source_treat"] = pairs["dispersion_source"]
    table["dispersion_source_control"] = pairs["dispersion_source_c"]
    table["data_source"] = pairs["data_source"]
    table["arm_id"] = pairs["arm_id"]
    table["control_arm_id"] = pairs["arm_id_c"]
    table["prep_id"] = pairs["prep_id"]
    for column in [*_CARRIED, "unit", "domain"]:
        table[column] = pairs[column]
    return table


def _annotate(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    extraction: Extraction,
    reference_weights: Mapping[str, float] | None,
    km: Mapping[str, float] | None,
) -> pd.DataFrame:
    """Step 5, annotate: moderators, labels and the provenance of every row used."""
    table = _add_moderators(table, extraction, reference_weights, km)
    table = _add_labels(table, pairs)
    table["source_file"] = pairs["_file"]
    table["treat_outcome_row"] = pairs["_row"].astype(int)
    table["control_outcome_row"] = pairs["_row_c"].astype(int)
    table["sham_outcome_row"] = pairs["_row_s"].astype("Int64")
    table["treat_outcome_id"] = pairs["outcome_id"]
    table["control_outcome_id"] = pairs["outcome_id_c"]
    table = table.join(arm_moderators(extraction.arms, set(table.columns)), on="arm_id")
    return table.sort_values(
        ["study_id", "experiment_id", "outcome", "timepoint", "treat_outcome_row"], kind="stable"
    ).reset_index(drop=True)


def _log_unused(pairing: Pairing, table: pd.DataFrame, measure: str, log: _Log) -> None:
    """Control and sham rows that ended up in no comparison are logged too."""
    used = set(table["treat_outcome_row"]) | set(table["control_outcome_row"])
    if measure == "NMD":
        used |= set(table["sham_outcome_row"].dropna().astype(int))
    log.add(
        pairing.controls[~pairing.controls["_row"].isin(used)],
        "control row used in no comparison (no valid EV row on this outcome and time point)",
    )
    leftover_shams = pairing.shams[~pairing.shams["_row"].isin(used)]
    log.add(
        leftover_shams,
        "sham arm: used only for NMD" if measure != "NMD" else "sham row used in no comparison",
    )


def _add_moderators(
    table: pd.DataFrame,
    extraction: Extraction,
    reference_weights: Mapping[str, float] | None,
    km: Mapping[str, float] | None,
) -> pd.DataFrame:
    preparations = extraction.preparations
    prep_columns = [
        "prep_id",
        "isolation_method",
        "isolation_family",
        "isolation_gmp_scalable",
        "msc_tissue_source",
        "msc_species",
        "donor_match",
        "culture_system",
        "medium",
        "preconditioning",
        "particles_per_ug_protein",
    ]
    prep_info = preparations[[c for c in prep_columns if c in preparations.columns]].set_index("prep_id")
    quality = characterization_quality(preparations)
    quality_columns = [
        "quality_score",
        *misev_columns(),
        "misev_items_reported",
        "evmetric_like",
        "isct_count",
        "purity_class",
    ]
    prep_table = prep_info.join(quality[quality_columns])
    prep_table = _blank_non_ev(prep_table, preparations)
    table = table.join(prep_table, on="prep_id")
    doses = harmonize_arm_doses(
        extraction.arms, extraction.experiments, preparations, reference_weights=reference_weights, km=km
    )
    table = table.join(doses, on="arm_id")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["log10_dose_ug_protein_per_kg"] = np.log10(table["dose_ug_protein_per_kg"].astype(float))
    rob = risk_of_bias_summary(extraction.risk_of_bias, extraction.experiments)
    table = table.join(
        rob[[*syrcle_columns(), "rob_low_count", "rob_low_randomization_blinding"]], on="experiment_id"
    )
    return table


def _blank_non_ev(prep_table: pd.DataFrame, preparations: pd.DataFrame) -> pd.DataFrame:
    """``preparation_kind`` per preparation (blank -> msc_ev); the EV-only columns (MISEV items
    among them) blank for a non-EV preparation: its placeholders and unscored items are no
    data, never a quality score of 0 or an isolation method."""
    is_ev = ev_preparation_mask(preparations).to_numpy()
    out = prep_table.copy()
    out["preparation_kind"] = np.where(is_ev, "msc_ev", NON_EV)
    if is_ev.all():
        return out
    non_ev = out.index.isin(preparations["prep_id"].to_numpy()[~is_ev])
    for column in [*EV_ONLY_COLUMNS, *misev_columns()]:
        if column not in out.columns:
            continue
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = out[column].astype(float).where(~non_ev, np.nan)
        else:
            out[column] = out[column].astype(object).where(~non_ev, None)
    return out


def arm_moderators(arms: pd.DataFrame, taken: set[str]) -> pd.DataFrame:
    """The arms sheet's extra columns (the reviewer's own moderators, e.g. written by
    ``import-wide [moderators]``), indexed by ``arm_id``: each comparison takes its EV arm's
    values. A column whose every value reads as a number is numeric (float), else
    categorical (text, whitespace cleaned). Columns named like a column of the comparison
    table (``taken``) are left out: evmeta's own column wins.
    """
    schema = set(column_map("arms"))
    names = [c for c in arms.columns if c not in schema and not str(c).startswith("_") and c not in taken]
    out = pd.DataFrame(index=pd.Index(arms["arm_id"], name="arm_id"))
    for name in names:
        out[name] = _typed(arms[name]).to_numpy()
    return out[~out.index.duplicated()]


def _typed(values: pd.Series) -> pd.Series:
    """Numbers as float when every value reads as one, else text (None where empty)."""

    def number(value: object) -> float | None:
        if isinstance(value, bool):
            return None  # a truth value is a category, not a number
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_number(str(value))
        except ValueError:
            return None

    def text(value: object) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return " ".join(str(value).split()) or None

    cleaned = values.map(text)
    numbers = [number(v) for v in values[cleaned.notna()]]
    if not numbers or any(n is None for n in numbers):
        return cleaned.astype(object)
    out = pd.Series(np.nan, index=values.index, dtype=float)
    out[cleaned.notna()] = np.asarray(numbers, dtype=float)
    return out


def _add_labels(table: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    base = pairs["first_author"].astype(str) + " " + pairs["year"].astype("Int64").astype(str)
    arms_per_study = pairs.groupby("study_id")["arm_id"].transform("nunique")
    experiments_per_study = pairs.groupby("study_id")["experiment_id"].transform("nunique")
    arm_name = pairs["arm_label"].where(pairs["arm_label"].notna(), pairs["arm_id"]).astype(str)
    label = base.where(arms_per_study <= experiments_per_study, base + ", " + arm_name)
    suffix = pairs["experiment_id"].astype(str).str.replace(r"^.*-", "", regex=True)
    label = label.where(experiments_per_study <= 1, label + " (" + suffix + ")")
    table["label"] = label.to_numpy()
    columns = list(table.columns)
    columns.insert(columns.index("timepoint_label") + 1, columns.pop(columns.index("label")))
    return table[columns]

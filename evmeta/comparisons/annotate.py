"""Step 5, annotate: the moderators of each comparison (preparation, characterization
quality, dose, risk of bias, the reviewer's arm columns), its label and its provenance.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from evmeta.comparisons.reviewer_moderators import arm_moderators
from evmeta.harmonize.arm_doses import harmonize_arm_doses
from evmeta.harmonize.quality import (
    characterization_quality,
    misev_columns,
    risk_of_bias_summary,
    syrcle_columns,
)
from evmeta.schema.extraction import Extraction
from evmeta.schema.preparation_kind import EV_ONLY_COLUMNS, NON_EV, ev_preparation_mask


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

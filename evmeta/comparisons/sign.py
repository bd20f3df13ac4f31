"""Step 4, sign: the comparison table's effect columns, ``yi`` oriented so that positive means
benefit of EVs, with the arm statistics as used and the control n as split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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

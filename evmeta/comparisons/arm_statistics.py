"""An arm's mean and SD as used, and where the SD came from: reported, or derived from an
SEM, a confidence interval, quartiles or a range (:mod:`evmeta.harmonize.dispersion`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.harmonize.dispersion import mean_sd_from_quartiles, mean_sd_from_range, sd_from_ci, sd_from_sem


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
